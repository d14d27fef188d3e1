import { afterEach, describe, expect, it } from '@jest/globals';
import type Koa from 'koa';
import request from 'supertest';
import { ManualPressureMonitor } from '@breakwater/core/testing';
import { loadShed, type LoadShedMiddleware } from '../src';
import { close, koaVersions, listen, ManualClock, openRequest } from './helpers';

const fixed = (n: number) => ({
  algorithm: 'aimd' as const,
  initialLimit: n,
  minLimit: n,
  maxLimit: n,
});

/** An app whose `/hold` requests stay open until `release()`; other paths answer at once. */
async function start(createApp: () => Koa, shed: LoadShedMiddleware, clock?: ManualClock) {
  const app = createApp();
  const waiting: (() => void)[] = [];
  let handled = 0;
  app.use(shed);
  app.use(async (ctx) => {
    handled++;
    if (ctx.path === '/hold') await new Promise<void>((resolve) => waiting.push(resolve));
    if (ctx.path === '/boom') throw new Error('boom');
    if (ctx.path === '/missing') ctx.throw(404);
    if (ctx.path === '/slow') clock?.advance(500);
    ctx.body = { ok: true };
  });
  const { server, url } = await listen(app);
  const held: ReturnType<typeof openRequest>[] = [];
  return {
    server,
    handled: () => handled,
    async hold(n: number): Promise<void> {
      const before = waiting.length;
      for (let i = 0; i < n; i++) held.push(openRequest(`${url}/hold`));
      while (waiting.length < before + n) await new Promise((resolve) => setTimeout(resolve, 5));
    },
    async release(): Promise<void> {
      waiting.splice(0).forEach((resume) => resume());
      await Promise.all(held.splice(0).map((h) => h.response));
    },
    async close(): Promise<void> {
      held.splice(0).forEach((h) => void h.response.catch(() => undefined));
      waiting.splice(0).forEach((resume) => resume());
      await close(server);
      shed.shedder.close();
    },
  };
}

const started: { close(): Promise<void> }[] = [];
afterEach(async () => {
  for (const app of started.splice(0)) await app.close();
});

describe.each(koaVersions)('loadShed on %s', (_label, createApp) => {
  const run = async (shed: LoadShedMiddleware, clock?: ManualClock) => {
    const app = await start(createApp, shed, clock);
    started.push(app);
    return app;
  };

  it('answers 503 problem+json with Retry-After at once over the limit; nothing else runs', async () => {
    const shed = loadShed({ name: 'web', limit: fixed(2), retryAfterMs: 2_000 });
    const app = await run(shed);
    await app.hold(2);
    const refused = await request(app.server).get('/now?x=1').expect(503);
    expect(refused.headers['retry-after']).toBe('2');
    expect(refused.headers['content-type']).toBe('application/problem+json');
    expect(JSON.parse(refused.text)).toMatchObject({
      status: 503,
      loadShedder: 'web',
      reason: 'limit',
      retryAfter: 2,
    });
    expect(app.handled()).toBe(2);
    expect(shed.shedder.snapshot()).toMatchObject({ inFlight: 2, rejected: 1, shedding: true });
    await app.release();
    await request(app.server).get('/now').expect(200);
    expect(shed.shedder.inFlight).toBe(0);
  });

  it('never sheds health and metrics routes', async () => {
    const app = await run(loadShed({ limit: fixed(1) }));
    await app.hold(1);
    await request(app.server).get('/health/live').expect(200);
    await request(app.server).get('/metrics').expect(200);
    await request(app.server).get('/now').expect(503);
  });

  it('sheds low priority before normal and normal before critical; a throwing hook is normal', async () => {
    const shed = loadShed({
      limit: fixed(2),
      priority: (ctx) => {
        const p = ctx.query.p;
        if (p === 'boom') throw new Error('hook');
        return p === 'low' || p === 'critical' ? p : 'normal';
      },
    });
    const app = await run(shed);
    await app.hold(1);
    await request(app.server).get('/now?p=low').expect(503);
    await request(app.server).get('/now?p=boom').expect(200);
    await app.hold(1);
    await request(app.server).get('/now?p=critical').expect(503);
    expect(shed.shedder.inFlight).toBe(2);
  });

  it('sheds non-critical requests while the event loop is delayed', async () => {
    const monitor = new ManualPressureMonitor();
    const shed = loadShed({
      limit: false,
      maxEventLoopDelayMs: 100,
      monitor,
      priority: (ctx) => (ctx.path === '/pay' ? 'critical' : 'normal'),
    });
    const app = await run(shed);
    monitor.set({ eventLoopDelayMs: 250 });
    const refused = await request(app.server).get('/now').expect(503);
    expect(JSON.parse(refused.text)).toMatchObject({ reason: 'eventLoopDelay' });
    await request(app.server).get('/pay').expect(200);
    monitor.set({ eventLoopDelayMs: 1 });
    await request(app.server).get('/now').expect(200);
  });

  it('samples each response: slow responses lower the limit (aimd, injected clock)', async () => {
    const clock = new ManualClock();
    const shed = loadShed({
      limit: { algorithm: 'aimd', initialLimit: 10, maxLimit: 10, aimd: { timeoutMs: 100 } },
      clock,
    });
    const app = await run(shed, clock);
    await request(app.server).get('/slow').expect(200);
    await request(app.server).get('/slow').expect(200);
    expect(shed.shedder.limit).toBe(8); // floor(10 * 0.9) = 9, floor(9 * 0.9) = 8
  });

  it('frees the slot when a later middleware throws, by the status Koa answers', async () => {
    const shed = loadShed({
      limit: { algorithm: 'aimd', initialLimit: 5, maxLimit: 5 },
    });
    const app = await run(shed);
    await request(app.server).get('/missing').expect(404);
    expect(shed.shedder.limit).toBe(5); // a 404 is a success sample
    await request(app.server).get('/boom').expect(500);
    expect(shed.shedder.inFlight).toBe(0);
    expect(shed.shedder.limit).toBe(5); // a 500 is ignored
  });

  it('accepts an existing LoadShedder', () => {
    const first = loadShed({ name: 'shared', limit: fixed(1) });
    expect(loadShed(first.shedder).shedder).toBe(first.shedder);
  });
});
