import 'reflect-metadata';
import { afterEach, describe, expect, it } from '@jest/globals';
import { Controller, Get, type INestApplication } from '@nestjs/common';
import { HealthCheck, HealthCheckService, TerminusModule } from '@nestjs/terminus';
import { CircuitBreakerRegistry, type RateLimitStore } from '@breakwater/core';
import request from 'supertest';
import { BreakwaterModule, RateLimiters } from '../src';
import { BreakwaterHealthIndicator } from '../src/terminus';
import { ManualClock, createApp, platforms, type PlatformName, httpServer } from './helpers';

@Controller('status')
class StatusController {
  constructor(
    private readonly health: HealthCheckService,
    private readonly breakwater: BreakwaterHealthIndicator,
  ) {}

  @Get()
  @HealthCheck()
  check() {
    return this.health.check([
      () => this.breakwater.breakers(),
      () => this.breakwater.rateLimiters(),
    ]);
  }

  @Get('payments')
  @HealthCheck()
  payments() {
    return this.health.check([
      () => this.breakwater.breakers('payments', { critical: ['search'] }),
    ]);
  }
}

const failing: RateLimitStore = {
  consume: () => Promise.reject(new Error('ECONNREFUSED')),
  reset: () => Promise.resolve(),
};

async function start(platform: PlatformName): Promise<INestApplication> {
  const clock = new ManualClock(0);
  return createApp(platform, {
    imports: [
      TerminusModule.forRoot({ logger: false }),
      BreakwaterModule.forRoot({
        breakers: { clock },
        limiters: { api: { rate: '5/m', clock }, remote: { rate: '5/m', clock, store: failing } },
        health: { critical: ['payments'] },
      }),
    ],
    controllers: [StatusController],
    providers: [BreakwaterHealthIndicator],
  });
}

describe.each(platforms)('BreakwaterHealthIndicator in a terminus check (%s)', (platform) => {
  let app: INestApplication | undefined;
  afterEach(async () => {
    await app?.close();
    app = undefined;
  });

  it('is up while breakers are closed and stores answer', async () => {
    app = await start(platform);
    app.get(CircuitBreakerRegistry).get('payments');
    const res = await request(httpServer(app)).get('/status').expect(200);
    expect(res.body).toMatchObject({
      status: 'ok',
      info: {
        'circuit-breakers': { status: 'up', breakers: { payments: 'closed' } },
        'rate-limit-stores': { status: 'up', limiters: { api: 'primary', remote: 'primary' } },
      },
    });
  });

  it('is degraded while a store fails or a non-critical breaker is open', async () => {
    app = await start(platform);
    const registry = app.get(CircuitBreakerRegistry);
    registry.get('payments');
    registry.get('search').open();
    const remote = app.get<RateLimiters>(RateLimiters).get('remote')!;
    for (let i = 0; i < 3; i++) await remote.consume('k');
    const res = await request(httpServer(app)).get('/status').expect(200);
    expect(res.body).toMatchObject({
      status: 'degraded',
      info: {
        'circuit-breakers': { status: 'degraded', breakers: { search: 'forced_open' } },
        'rate-limit-stores': { status: 'degraded', limiters: { remote: 'fallback' } },
      },
    });
  });

  it('is down (503) while a critical breaker is open', async () => {
    app = await start(platform);
    app.get(CircuitBreakerRegistry).get('payments').open();
    const res = await request(httpServer(app)).get('/status').expect(503);
    expect(res.body).toMatchObject({
      status: 'error',
      error: { 'circuit-breakers': { status: 'down', breakers: { payments: 'forced_open' } } },
    });
    // The critical set can be given per check.
    await request(httpServer(app)).get('/status/payments').expect(200);
  });
});
