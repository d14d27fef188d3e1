import 'reflect-metadata';
import { afterEach, describe, expect, it } from '@jest/globals';
import { Controller, Get, HttpException, type INestApplication } from '@nestjs/common';
import { APP_GUARD } from '@nestjs/core';
import { LoadShedder, type LoadShedOptions } from '@breakwater/core';
import { ManualPressureMonitor } from '@breakwater/core/testing';
import request from 'supertest';
import { LoadShed, LoadShedGuard, type HttpRequestLike } from '../src';
import { createApp, httpServer, platforms, type PlatformName } from './helpers';

const waiting: (() => void)[] = [];

@Controller()
class WorkController {
  @Get('hold')
  hold(): Promise<string> {
    return new Promise((resolve) => waiting.push(() => resolve('held')));
  }

  @Get('now')
  now(): string {
    return 'now';
  }

  @LoadShed('critical')
  @Get('pay')
  pay(): string {
    return 'pay';
  }

  @LoadShed(false)
  @Get('status')
  status(): string {
    return 'status';
  }

  @Get('health/live')
  live(): string {
    return 'live';
  }

  @Get('missing')
  missing(): never {
    throw new HttpException('gone', 404);
  }
}

@LoadShed({ priority: 'low' })
@Controller('reports')
class ReportController {
  @Get()
  list(): string {
    return 'reports';
  }
}

const fixed = (n: number) => ({
  algorithm: 'aimd' as const,
  initialLimit: n,
  minLimit: n,
  maxLimit: n,
});

const apps: INestApplication[] = [];
const shedders: LoadShedder<HttpRequestLike>[] = [];
afterEach(async () => {
  waiting.splice(0).forEach((release) => release());
  for (const app of apps.splice(0)) await app.close();
  for (const shedder of shedders.splice(0)) shedder.close();
});

describe.each(platforms)('LoadShedGuard on %s', (platform: PlatformName) => {
  async function start(options: LoadShedOptions<HttpRequestLike>) {
    const shedder = new LoadShedder<HttpRequestLike>(options);
    shedders.push(shedder);
    const app = await createApp(platform, {
      controllers: [WorkController, ReportController],
      providers: [
        { provide: LoadShedder, useValue: shedder },
        { provide: APP_GUARD, useClass: LoadShedGuard },
      ],
    });
    apps.push(app);
    await app.listen(0, '127.0.0.1');
    const url = await app.getUrl();
    const held: Promise<unknown>[] = [];
    return {
      shedder,
      server: httpServer(app),
      async hold(n: number): Promise<void> {
        const before = waiting.length;
        for (let i = 0; i < n; i++)
          held.push(fetch(`${url.replace('[::1]', '127.0.0.1')}/hold`).then((r) => r.text()));
        while (waiting.length < before + n) await new Promise((resolve) => setTimeout(resolve, 5));
      },
      async release(): Promise<void> {
        waiting.splice(0).forEach((release) => release());
        await Promise.all(held.splice(0));
      },
    };
  }

  it('answers 503 problem+json with Retry-After over the limit, before the handler', async () => {
    const app = await start({ name: 'api', limit: fixed(2), retryAfterMs: 2_000 });
    await app.hold(2);
    const refused = await request(app.server).get('/now').expect(503);
    expect(refused.headers['retry-after']).toBe('2');
    expect(refused.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(refused.body).toMatchObject({ status: 503, loadShedder: 'api', reason: 'limit' });
    expect(app.shedder.snapshot()).toMatchObject({ inFlight: 2, rejected: 1 });
    await app.release();
    while (app.shedder.inFlight > 0) await new Promise((resolve) => setTimeout(resolve, 5));
    await request(app.server).get('/now').expect(200);
  });

  it('@LoadShed sets priorities and exemptions; health paths are never shed', async () => {
    const app = await start({ limit: fixed(2) });
    await app.hold(1);
    await request(app.server).get('/reports').expect(503); // low: shed from half the limit
    await app.hold(1);
    await request(app.server).get('/pay').expect(503); // critical, but the limit is reached
    await request(app.server).get('/status').expect(200);
    await request(app.server).get('/health/live').expect(200);
    await app.release();
  });

  it('sheds non-critical routes while the event loop is delayed', async () => {
    const monitor = new ManualPressureMonitor();
    const app = await start({ limit: false, maxEventLoopDelayMs: 100, monitor });
    monitor.set({ eventLoopDelayMs: 500 });
    const refused = await request(app.server).get('/now').expect(503);
    expect(refused.body).toMatchObject({ reason: 'eventLoopDelay' });
    await request(app.server).get('/pay').expect(200);
    monitor.set({ eventLoopDelayMs: 0 });
    await request(app.server).get('/now').expect(200);
  });

  it('frees the slot after every response, errors included; a throwing priority hook is normal', async () => {
    const app = await start({
      limit: fixed(1),
      priority: () => {
        throw new Error('hook');
      },
    });
    await request(app.server).get('/missing').expect(404);
    await request(app.server).get('/now').expect(200);
    while (app.shedder.inFlight > 0) await new Promise((resolve) => setTimeout(resolve, 5));
    await request(app.server).get('/now').expect(200);
  });
});
