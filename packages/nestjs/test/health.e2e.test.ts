import 'reflect-metadata';
import { afterEach, describe, expect, it } from '@jest/globals';
import { Controller, Get, type INestApplication } from '@nestjs/common';
import { APP_GUARD } from '@nestjs/core';
import { CircuitBreakerRegistry } from '@breakwater/core';
import { get, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import request from 'supertest';
import { BreakwaterModule, RateLimitGuard, type BreakwaterModuleOptions } from '../src';
import { ManualClock, createApp, platforms, type PlatformName, httpServer } from './helpers';

@Controller('api')
class ApiController {
  @Get('ping')
  ping(): string {
    return 'pong';
  }
}

const authorize = (req: { headers: Record<string, string | string[] | undefined> }) => {
  const token = req.headers.authorization;
  if (token === undefined) return 'unauthenticated' as const;
  return token === 'Bearer admin';
};

async function start(
  platform: PlatformName,
  options: BreakwaterModuleOptions,
  prefix?: string,
): Promise<INestApplication> {
  const clock = new ManualClock(0);
  return createApp(
    platform,
    {
      imports: [
        BreakwaterModule.forRoot({
          breakers: { clock },
          limiters: { api: { rate: '1/m', clock } },
          defaultLimiter: 'api',
          ...options,
        }),
      ],
      controllers: [ApiController],
      providers: [{ provide: APP_GUARD, useClass: RateLimitGuard }],
    },
    prefix === undefined ? undefined : (app) => app.setGlobalPrefix(prefix),
  );
}

describe.each(platforms)('health routes on %s', (platform) => {
  let app: INestApplication | undefined;
  afterEach(async () => {
    await app?.close();
    app = undefined;
  });

  it('serves live, ready and the health report, failing on a critical open breaker', async () => {
    app = await start(platform, { health: { critical: ['payments'] } });
    const server = httpServer(app);
    const registry = app.get(CircuitBreakerRegistry);
    registry.get('payments');
    registry.get('search').open();

    const report = await request(server).get('/health').expect(200);
    expect(report.headers['content-type']).toMatch(/^application\/health\+json/);
    expect(report.body).toMatchObject({
      status: 'warn',
      checks: {
        'payments:circuit': [{ status: 'pass', critical: true }],
        'search:circuit': [{ status: 'warn', observedValue: 'forced_open' }],
        'api:rate-limit-store': [{ status: 'pass' }],
      },
    });
    await request(server).get('/health/ready').expect(200);

    registry.get('payments').open();
    await request(server).get('/health').expect(503);
    await request(server).get('/health/ready').expect(503);
    await request(server).get('/health/live').expect(200, { status: 'pass' });
    // Never rate limited, although the default limiter allows one request a minute.
    for (let i = 0; i < 3; i++) await request(server).get('/health/live').expect(200);
  });

  it('lists breakers, shows one by name and serves the dashboard', async () => {
    app = await start(platform, { health: { path: 'status/' } });
    const server = httpServer(app);
    app.get(CircuitBreakerRegistry).get('GET /plants/:id');
    const list = await request(server).get('/status/circuit-breakers').expect(200);
    expect(list.body).toEqual([
      expect.objectContaining({ name: 'GET /plants/:id', state: 'closed' }),
    ]);
    const one = await request(server)
      .get(`/status/circuit-breakers/${encodeURIComponent('GET /plants/:id')}`)
      .expect(200);
    expect(one.body).toMatchObject({ name: 'GET /plants/:id' });
    const missing = await request(server).get('/status/circuit-breakers/nope').expect(404);
    expect(missing.headers['content-type']).toMatch(/^application\/problem\+json/);
    const page = await request(server).get('/status/dashboard').expect(200);
    expect(page.headers['content-type']).toMatch(/^text\/html/);
    expect(page.headers['content-security-policy']).toBeDefined();
    await request(server).head('/status/live').expect(200);
    await request(server).get('/health').expect(404);
  });

  it('resets a breaker only through the authorize hook', async () => {
    app = await start(platform, { health: { admin: { authorize } } });
    const server = httpServer(app);
    const breaker = app.get(CircuitBreakerRegistry).get('search');
    breaker.open();
    await request(server).post('/health/circuit-breakers/search/reset').expect(401);
    await request(server)
      .post('/health/circuit-breakers/search/reset')
      .set('authorization', 'Bearer guest')
      .expect(403);
    expect(breaker.state).toBe('forced_open');
    const reset = await request(server)
      .post('/health/circuit-breakers/search/reset')
      .set('authorization', 'Bearer admin')
      .expect(200);
    expect(reset.body).toMatchObject({ name: 'search', state: 'closed' });
    expect(breaker.state).toBe('closed');
  });

  it('has no reset route without an authorize hook, and lives under a global prefix', async () => {
    app = await start(platform, { health: {} }, 'v1');
    const server = httpServer(app);
    app.get(CircuitBreakerRegistry).get('search').open();
    await request(server).post('/v1/health/circuit-breakers/search/reset').expect(404);
    expect(app.get(CircuitBreakerRegistry).get('search').state).toBe('forced_open');
    await request(server).get('/v1/health/live').expect(200);
    await request(server).get('/v1/api/ping').expect(200, 'pong');
  });

  it('streams breaker changes as server-sent events and ends streams on close', async () => {
    app = await start(platform, { health: {} });
    await app.listen(0, '127.0.0.1');
    const { port } = (httpServer(app) as { address(): AddressInfo }).address();
    const registry = app.get(CircuitBreakerRegistry);
    registry.get('search');
    const response = await new Promise<IncomingMessage>((resolve, reject) => {
      get(`http://127.0.0.1:${port}/health/circuit-breakers/stream`, resolve).on('error', reject);
    });
    try {
      expect(response.statusCode).toBe(200);
      expect(response.headers['content-type']).toMatch(/^text\/event-stream/);
      response.setEncoding('utf8');
      let text = '';
      const until = (needle: string): Promise<void> =>
        new Promise((resolve, reject) => {
          const check = (): void => {
            if (text.includes(needle)) {
              response.off('data', onData);
              resolve();
            }
          };
          const onData = (chunk: string): void => {
            text += chunk;
            check();
          };
          response.on('data', onData);
          response.once('error', reject);
          check();
        });
      await until('event: snapshot');
      expect(text).toContain('"name":"search"');
      registry.get('search').open();
      await until('event: state');
      expect(text).toContain('"state":"forced_open"');
      // Closing the application ends open streams instead of waiting for the clients.
      const ended = new Promise((resolve) => response.once('end', resolve));
      await app.close();
      app = undefined;
      await ended;
    } finally {
      response.destroy();
    }
  });
});
