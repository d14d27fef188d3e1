import { afterEach, describe, expect, it } from '@jest/globals';
import type { Express, Request, Response } from 'express';
import request from 'supertest';
import { ManualPressureMonitor } from '@breakwater/core/testing';
import { loadShed, type LoadShedMiddleware } from '../src';
import { close, expressVersions, listen, ManualClock, openRequest } from './helpers';

const fixed = (n: number) => ({
  algorithm: 'aimd' as const,
  initialLimit: n,
  minLimit: n,
  maxLimit: n,
});

/** An app whose `/hold` requests stay open until `release()`; every other route answers at once. */
async function start(createApp: () => Express, shed: LoadShedMiddleware) {
  const app = createApp();
  const waiting: (() => void)[] = [];
  let handled = 0;
  app.use(shed);
  app.get('/hold', (_req: Request, res: Response) => {
    handled++;
    waiting.push(() => res.json({ ok: true }));
  });
  app.get(['/now', '/health/live', '/metrics', '/pay'], (_req, res) => {
    handled++;
    res.json({ ok: true });
  });
  app.get('/boom', () => {
    throw new Error('boom');
  });
  const { server, url } = await listen(app);
  const held: ReturnType<typeof openRequest>[] = [];
  return {
    server,
    handled: () => handled,
    async hold(n: number, path = '/hold'): Promise<void> {
      const before = waiting.length;
      for (let i = 0; i < n; i++) held.push(openRequest(`${url}${path}`));
      while (waiting.length < before + n) await new Promise((resolve) => setTimeout(resolve, 5));
    },
    async release(): Promise<void> {
      waiting.splice(0).forEach((reply) => reply());
      await Promise.all(held.splice(0).map((h) => h.response));
    },
    dropAll(): void {
      held.splice(0).forEach((h) => {
        h.response.catch(() => undefined);
        h.request.destroy();
      });
    },
    async close(): Promise<void> {
      waiting.splice(0).forEach((reply) => reply());
      await close(server);
      shed.shedder.close();
    },
  };
}

const started: { close(): Promise<void> }[] = [];
afterEach(async () => {
  for (const app of started.splice(0)) await app.close();
});

describe.each(expressVersions)('loadShed on %s', (_label, _major, createApp) => {
  const run = async (shed: LoadShedMiddleware) => {
    const app = await start(createApp, shed);
    started.push(app);
    return app;
  };

  it('answers 503 problem+json with Retry-After at once over the limit; no handler runs', async () => {
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
      priority: (req) => {
        const p = req.query.p;
        if (p === 'boom') throw new Error('hook');
        return p === 'low' || p === 'critical' ? p : 'normal';
      },
    });
    const app = await run(shed);
    await app.hold(1);
    await request(app.server).get('/now?p=low').expect(503); // low: half of 2
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
      priority: (req) => (req.path === '/pay' ? 'critical' : 'normal'),
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
    const app = createApp();
    app.use(shed);
    app.get('/slow', (_req, res) => {
      clock.advance(500);
      res.json({ ok: true });
    });
    const { server } = await listen(app);
    started.push({ close: () => close(server) });
    await request(server).get('/slow').expect(200);
    await request(server).get('/slow').expect(200);
    expect(shed.shedder.limit).toBe(8); // floor(10 * 0.9) = 9, floor(9 * 0.9) = 8
  });

  it('frees the slot when a handler throws or the client goes away', async () => {
    const shed = loadShed({ limit: fixed(1) });
    const app = await run(shed);
    await request(app.server).get('/boom').expect(500);
    expect(shed.shedder.inFlight).toBe(0);
    await app.hold(1);
    expect(shed.shedder.inFlight).toBe(1);
    app.dropAll();
    while (shed.shedder.inFlight > 0) await new Promise((resolve) => setTimeout(resolve, 5));
    await request(app.server).get('/now').expect(200);
  });

  it('accepts an existing LoadShedder', async () => {
    const first = loadShed({ name: 'shared', limit: fixed(1) });
    const again = loadShed(first.shedder);
    expect(again.shedder).toBe(first.shedder);
  });
});
