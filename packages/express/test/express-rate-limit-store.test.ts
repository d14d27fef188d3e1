import { afterEach, beforeEach, describe, expect, it, jest } from '@jest/globals';
import type { Request, Response } from 'express';
import { rateLimit as expressRateLimit, type Store } from 'express-rate-limit';
import request from 'supertest';
import { isConfigError, MemoryRateLimitStore, type RateLimitStore } from '@breakwater/core';
import { expressRateLimitStore } from '../src';
import { expressVersions, FailingStore } from './helpers';

/** Long windows: windows are aligned to multiples of windowMs, so no test straddles an edge. */
const HOUR = 3_600_000;

const ok = (_req: Request, res: Response): void => {
  res.json({ ok: true });
};

/** A shared (non-local) store that works, as a healthy Redis would. */
function sharedMemoryStore(): RateLimitStore {
  const memory = new MemoryRateLimitStore();
  return {
    local: false,
    consume: (key, cost, rule) => memory.consume(key, cost, rule),
    refund: (key, cost, rule) => memory.refund(key, cost, rule),
    reset: (key, rule) => memory.reset(key, rule),
    close: () => memory.close(),
  };
}

describe.each(expressVersions)('expressRateLimitStore on %s', (_label, _major, createApp) => {
  let warning: jest.SpiedFunction<typeof process.emitWarning>;
  beforeEach(() => {
    warning = jest.spyOn(process, 'emitWarning').mockImplementation(() => undefined);
  });
  afterEach(() => warning.mockRestore());

  it('lets express-rate-limit enforce its limit and send its own headers', async () => {
    const store = expressRateLimitStore(sharedMemoryStore());
    const typed: Store = store;
    const app = createApp();
    app.use(
      expressRateLimit({
        windowMs: HOUR,
        limit: 3,
        standardHeaders: 'draft-7',
        legacyHeaders: false,
        store: typed,
      }),
    );
    app.get('/', ok);

    for (let remaining = 2; remaining >= 0; remaining--) {
      const res = await request(app).get('/').expect(200);
      expect(res.headers.ratelimit).toMatch(
        new RegExp(`^limit=3, remaining=${remaining}, reset=\\d+$`),
      );
      expect(res.headers['ratelimit-policy']).toBe('3;w=3600');
    }
    const refused = await request(app).get('/').expect(429);
    expect(refused.headers['retry-after']).toMatch(/^\d+$/);
    expect(store.limiter.rule.windowMs).toBe(HOUR);
  });

  it('adopts windowMs from init() and counts under its prefix', async () => {
    const backend = sharedMemoryStore();
    const consume = jest.spyOn(backend, 'consume');
    const store = expressRateLimitStore({ store: backend, prefix: 'login:' });
    expect(store.localKeys).toBe(false);
    expect(store.prefix).toBe('login:');
    const app = createApp();
    app.use(expressRateLimit({ windowMs: 15 * 60_000, limit: 5, store }));
    app.get('/', ok);

    await request(app).get('/').expect(200);
    expect(store.limiter.rule).toMatchObject({
      name: 'login:',
      algorithm: 'fixed-window',
      windowMs: 900_000,
    });
    expect(consume).toHaveBeenCalledWith(expect.any(String), 1, store.limiter.rule);
  });

  it('keeps enforcing the limit from the fallback while the backend is down', async () => {
    const backend = new FailingStore();
    const store = expressRateLimitStore(backend);
    const app = createApp();
    app.use(expressRateLimit({ windowMs: HOUR, limit: 2, store }));
    app.get('/', ok);

    await request(app).get('/').expect(200);
    await request(app).get('/').expect(200);
    await request(app).get('/').expect(429);
    expect(backend.calls).toBeGreaterThan(0);
    expect(store.health()).toMatchObject({ name: 'rl:', status: 'warn', store: 'fallback' });
  });

  it("lets requests through with onStoreFailure 'allow' (never a 500)", async () => {
    const store = expressRateLimitStore({ store: new FailingStore(), onStoreFailure: 'allow' });
    const app = createApp();
    app.use(expressRateLimit({ windowMs: HOUR, limit: 1, store }));
    app.get('/', ok);

    for (let i = 0; i < 3; i++) await request(app).get('/').expect(200);
  });

  it('resets a key and reads a count through the express-rate-limit handle', async () => {
    const store = expressRateLimitStore(sharedMemoryStore());
    const limiter = expressRateLimit({
      windowMs: HOUR,
      limit: 1,
      store,
      keyGenerator: () => 'client',
    });
    const app = createApp();
    app.use(limiter);
    app.get('/', ok);

    expect(await Promise.resolve(limiter.getKey('client'))).toBeUndefined();
    await request(app).get('/').expect(200);
    expect(await Promise.resolve(limiter.getKey('client'))).toMatchObject({ totalHits: 1 });
    await request(app).get('/').expect(429);
    await Promise.resolve(limiter.resetKey('client'));
    await request(app).get('/').expect(200);
  });

  it('uncounts with decrement(): skipFailedRequests works', async () => {
    const store = expressRateLimitStore(sharedMemoryStore());
    const app = createApp();
    app.use(
      expressRateLimit({
        windowMs: HOUR,
        limit: 2,
        store,
        skipFailedRequests: true,
        keyGenerator: () => 'client',
      }),
    );
    app.get('/', (req, res) => {
      res.status(req.query.fail === '1' ? 500 : 200).end();
    });

    for (let i = 0; i < 4; i++) await request(app).get('/?fail=1').expect(500);
    // The failures were given back: two successes still fit, the third is refused.
    await request(app).get('/').expect(200);
    await request(app).get('/').expect(200);
    await request(app).get('/').expect(429);
    expect(warning).not.toHaveBeenCalled();
  });

  it('decrement() never rejects, with a store that cannot refund or is down', async () => {
    const { refund: _refund, ...inner } = sharedMemoryStore();
    const noRefund = expressRateLimitStore({ store: inner });
    await noRefund.increment('client');
    await expect(noRefund.decrement('client')).resolves.toBeUndefined();
    expect(await noRefund.get('client')).toMatchObject({ totalHits: 1 });
    const down = expressRateLimitStore(new FailingStore());
    await expect(down.decrement('client')).resolves.toBeUndefined();
  });

  it('never rejects resetKey() while the backend is down', async () => {
    const store = expressRateLimitStore(new FailingStore());
    await expect(store.resetKey('client')).resolves.toBeUndefined();
    await expect(store.resetKey('client')).resolves.toBeUndefined();
    expect(warning).toHaveBeenCalledTimes(1);
  });

  it('rejects invalid options with a ConfigError naming the option', () => {
    for (const [options, path] of [
      [42, 'options'],
      [{ store: new FailingStore(), prefix: '' }, 'prefix'],
      [{ store: new FailingStore(), limit: 5 }, 'limit'],
      [{ store: {} }, 'store'],
    ] as const) {
      let caught: unknown;
      try {
        expressRateLimitStore(options as never);
      } catch (error) {
        caught = error;
      }
      expect(isConfigError(caught)).toBe(true);
      expect((caught as { path: string }).path).toBe(path);
    }
  });
});
