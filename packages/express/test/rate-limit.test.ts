import { afterEach, beforeEach, describe, expect, it, jest } from '@jest/globals';
import type { Request, Response } from 'express';
import request from 'supertest';
import { isConfigError, RateLimiter } from '@breakwater/core';
import { rateLimit } from '../src';
import { expressVersions, FailingStore, ManualClock } from './helpers';

const ok = (_req: Request, res: Response): void => {
  res.json({ ok: true });
};

describe.each(expressVersions)('rateLimit on %s', (_label, _major, createApp) => {
  let warning: jest.SpiedFunction<typeof process.emitWarning>;
  beforeEach(() => {
    warning = jest.spyOn(process, 'emitWarning').mockImplementation(() => undefined);
  });
  afterEach(() => warning.mockRestore());

  it('sets the draft-11 RateLimit-Policy and RateLimit headers on every response', async () => {
    const clock = new ManualClock(0);
    const app = createApp();
    app.use(rateLimit({ name: 'name', limit: 100, window: '1m', clock }));
    app.get('/', ok);
    app.get('/boom', () => {
      throw new Error('boom');
    });

    const first = await request(app).get('/').expect(200);
    expect(first.headers['ratelimit-policy']).toBe('"name";q=100;w=60');
    expect(first.headers.ratelimit).toBe('"name";r=99;t=60');
    expect(first.headers['x-ratelimit-limit']).toBeUndefined();
    expect(first.headers['retry-after']).toBeUndefined();

    clock.advance(17_000);
    const second = await request(app).get('/boom').expect(500);
    expect(second.headers.ratelimit).toBe('"name";r=98;t=43');
  });

  it('answers 429 problem+json with Retry-After once the limit is reached', async () => {
    const clock = new ManualClock(0);
    const app = createApp();
    app.use(rateLimit({ name: 'api', limit: 2, window: '1m', clock }));
    app.get('/', ok);

    await request(app).get('/').expect(200);
    clock.advance(10_500);
    await request(app).get('/').expect(200);
    const refused = await request(app).get('/').expect(429);

    expect(refused.headers['retry-after']).toBe('50');
    expect(refused.headers['ratelimit-policy']).toBe('"api";q=2;w=60');
    expect(refused.headers.ratelimit).toBe('"api";r=0;t=50');
    expect(refused.headers['content-type']).toBe('application/problem+json');
    expect(JSON.parse(refused.text)).toMatchObject({
      status: 429,
      title: 'Too Many Requests',
      limiter: 'api',
      retryAfter: 50,
    });
  });

  it('sends the legacy X-RateLimit-* headers when asked, and can leave the standard ones out', async () => {
    const app = createApp();
    app.use(
      rateLimit({
        name: 'legacy',
        clock: new ManualClock(0),
        limit: 10,
        window: '1m',
        headers: { legacy: true, standard: false },
      }),
    );
    app.get('/', ok);

    const before = Math.floor(Date.now() / 1000);
    const res = await request(app).get('/').expect(200);
    expect(res.headers['x-ratelimit-limit']).toBe('10');
    expect(res.headers['x-ratelimit-remaining']).toBe('9');
    const after = Math.ceil(Date.now() / 1000);
    // Epoch seconds of the window end: wall time now plus the 60 s left in the window.
    const reset = Number(res.headers['x-ratelimit-reset']);
    expect(reset).toBeGreaterThanOrEqual(before + 60);
    expect(reset).toBeLessThanOrEqual(after + 60);
    expect(res.headers['ratelimit-policy']).toBeUndefined();
    expect(res.headers.ratelimit).toBeUndefined();
  });

  it('ignores a forged X-Forwarded-For while trust proxy is off', async () => {
    const app = createApp();
    app.use(rateLimit({ name: 'ip', limit: 1, window: '1m', clock: new ManualClock(0) }));
    app.get('/', ok);

    await request(app).get('/').set('X-Forwarded-For', '203.0.113.1').expect(200);
    await request(app).get('/').set('X-Forwarded-For', '203.0.113.2').expect(429);
  });

  it("keys on the forwarded address when 'trust proxy' is on", async () => {
    const app = createApp();
    app.set('trust proxy', true);
    app.use(rateLimit({ name: 'ip', limit: 1, window: '1m', clock: new ManualClock(0) }));
    app.get('/', ok);

    await request(app).get('/').set('X-Forwarded-For', '203.0.113.1').expect(200);
    await request(app).get('/').set('X-Forwarded-For', '203.0.113.2').expect(200);
    await request(app).get('/').set('X-Forwarded-For', '203.0.113.1').expect(429);
  });

  it('honours key, skip and cost', async () => {
    const clock = new ManualClock(0);
    const app = createApp();
    app.use(
      rateLimit({
        name: 'tenant',
        limit: 100,
        window: '1m',
        clock,
        key: (req) => req.get('x-tenant') ?? 'anonymous',
        skip: (req) => req.path === '/free',
        cost: async (req) => Promise.resolve(req.path === '/expensive' ? 40 : 1),
      }),
    );
    app.get('/free', ok);
    app.get('/expensive', ok);
    app.get('/', ok);

    const free = await request(app).get('/free').set('x-tenant', 'a').expect(200);
    expect(free.headers.ratelimit).toBeUndefined();

    let res = await request(app).get('/expensive').set('x-tenant', 'a').expect(200);
    expect(res.headers.ratelimit).toBe('"tenant";r=60;t=60');
    res = await request(app).get('/expensive').set('x-tenant', 'a').expect(200);
    expect(res.headers.ratelimit).toBe('"tenant";r=20;t=60');
    await request(app).get('/expensive').set('x-tenant', 'a').expect(429);
    res = await request(app).get('/').set('x-tenant', 'a').expect(200);
    expect(res.headers.ratelimit).toBe('"tenant";r=19;t=60');

    res = await request(app).get('/expensive').set('x-tenant', 'b').expect(200);
    expect(res.headers.ratelimit).toBe('"tenant";r=60;t=60');
  });

  it('lets the request through when a hook throws', async () => {
    const app = createApp();
    app.use(
      rateLimit({
        name: 'hooks',
        clock: new ManualClock(0),
        limit: 1,
        window: '1m',
        key: () => {
          throw new Error('no key');
        },
      }),
    );
    app.get('/', ok);

    const res = await request(app).get('/').expect(200);
    await request(app).get('/').expect(200);
    expect(res.headers.ratelimit).toBeUndefined();
    expect(warning).toHaveBeenCalledTimes(1);
  });

  it('keeps answering from the fallback store while a shared store fails', async () => {
    const store = new FailingStore();
    const limit = rateLimit({
      name: 'shared',
      limit: 3,
      window: '1m',
      store,
      clock: new ManualClock(0),
    });
    const app = createApp();
    app.use(limit);
    app.get('/', ok);

    for (let i = 0; i < 3; i++) {
      const res = await request(app).get('/').expect(200);
      expect(res.headers.ratelimit).toMatch(new RegExp(`^"shared";r=${2 - i};t=\\d+$`));
    }
    await request(app).get('/').expect(429);
    expect(store.calls).toBeGreaterThan(0);
    expect(limit.limiter.health()).toMatchObject({ status: 'warn', store: 'fallback' });
  });

  it("fails open with onStoreFailure 'allow'", async () => {
    const app = createApp();
    app.use(
      rateLimit({
        name: 'open',
        clock: new ManualClock(0),
        limit: 1,
        window: '1m',
        store: new FailingStore(),
        onStoreFailure: 'allow',
      }),
    );
    app.get('/', ok);

    for (let i = 0; i < 3; i++) await request(app).get('/').expect(200);
  });

  it('accepts a limiter built elsewhere', async () => {
    const limiter = new RateLimiter({
      name: 'shared-limiter',
      rate: '1/h',
      clock: new ManualClock(0),
    });
    const limit = rateLimit(limiter);
    expect(limit.limiter).toBe(limiter);
    const app = createApp();
    app.get('/a', limit, ok);
    app.get('/b', limit, ok);

    const res = await request(app).get('/a').expect(200);
    expect(res.headers['ratelimit-policy']).toBe('"shared-limiter";q=1;w=3600');
    await request(app).get('/b').expect(429);
  });

  it('rejects invalid options with a ConfigError naming the option', () => {
    for (const [options, path] of [
      [{ name: 'x', limit: 0, window: '1m' }, 'limit'],
      [{ name: 'x', rate: '10/m', key: 'ip' }, 'key'],
      [{ name: 'x', rate: '10/m', headers: { legacy: 'yes' } }, 'headers.legacy'],
    ] as const) {
      let caught: unknown;
      try {
        rateLimit(options as never);
      } catch (error) {
        caught = error;
      }
      expect(isConfigError(caught)).toBe(true);
      expect((caught as { path: string }).path).toBe(path);
    }
  });
});
