import { afterEach, describe, expect, it, jest } from '@jest/globals';
import Router from '@koa/router';
import request from 'supertest';
import { RateLimiter, isConfigError } from '@breakwater/core';
import { rateLimit } from '../src';
import { FailingStore, ManualClock, koaVersions } from './helpers';

/** A time on a window boundary: fixed windows are aligned to the clock. */
const ALIGNED = 36_000_000;

afterEach(() => {
  jest.restoreAllMocks();
});

describe.each(koaVersions)('rateLimit on %s', (_label, createApp) => {
  it('sets the exact draft-11 RateLimit-Policy and RateLimit headers', async () => {
    const clock = new ManualClock(ALIGNED);
    const app = createApp();
    app.use(rateLimit({ name: 'name', limit: 100, window: '1m', clock }));
    app.use((ctx) => {
      ctx.body = 'hello';
    });
    const first = await request(app.callback()).get('/').expect(200, 'hello');
    expect(first.headers['ratelimit-policy']).toBe('"name";q=100;w=60');
    expect(first.headers.ratelimit).toBe('"name";r=99;t=60');
    expect(first.headers['x-ratelimit-limit']).toBeUndefined();
    expect(first.headers['retry-after']).toBeUndefined();

    clock.advance(17_400);
    const second = await request(app.callback()).get('/').expect(200);
    expect(second.headers.ratelimit).toBe('"name";r=98;t=43');
  });

  it('answers 429 with Retry-After and problem+json once the limit is reached', async () => {
    const clock = new ManualClock(0);
    const app = createApp();
    let handled = 0;
    app.use(rateLimit({ name: 'api', limit: 2, window: '1m', clock }));
    app.use((ctx) => {
      handled++;
      ctx.body = 'ok';
    });
    await request(app.callback()).get('/').expect(200);
    await request(app.callback()).get('/').expect(200);
    clock.advance(15_000);
    const res = await request(app.callback()).get('/').expect(429);
    expect(handled).toBe(2);
    expect(res.headers['retry-after']).toBe('45');
    expect(res.headers['ratelimit-policy']).toBe('"api";q=2;w=60');
    expect(res.headers.ratelimit).toBe('"api";r=0;t=45');
    expect(res.headers['content-type']).toBe('application/problem+json');
    expect(JSON.parse(res.text)).toEqual({
      type: 'about:blank',
      title: 'Too Many Requests',
      status: 429,
      detail: 'Rate limit "api" exceeded',
      limiter: 'api',
      retryAfter: 45,
    });

    clock.advance(45_000);
    await request(app.callback()).get('/').expect(200);
  });

  it('sends the legacy X-RateLimit-* headers on request, and can leave out the standard ones', async () => {
    const app = createApp();
    app.use(
      rateLimit({
        name: 'legacy',
        limit: 100,
        window: '1m',
        headers: { legacy: true },
        clock: new ManualClock(ALIGNED),
      }),
    );
    app.use((ctx) => {
      ctx.body = 'ok';
    });
    const before = Math.floor(Date.now() / 1000);
    const res = await request(app.callback()).get('/').expect(200);
    expect(res.headers['x-ratelimit-limit']).toBe('100');
    expect(res.headers['x-ratelimit-remaining']).toBe('99');
    const reset = Number(res.headers['x-ratelimit-reset']);
    expect(reset).toBeGreaterThanOrEqual(before + 59);
    expect(reset).toBeLessThanOrEqual(before + 62);
    expect(res.headers['ratelimit-policy']).toBe('"legacy";q=100;w=60');

    const quiet = createApp();
    quiet.use(
      rateLimit({
        name: 'quiet',
        limit: 100,
        window: '1m',
        headers: { standard: false, legacy: true },
        clock: new ManualClock(ALIGNED),
      }),
    );
    quiet.use((ctx) => {
      ctx.body = 'ok';
    });
    const bare = await request(quiet.callback()).get('/').expect(200);
    expect(bare.headers['ratelimit-policy']).toBeUndefined();
    expect(bare.headers.ratelimit).toBeUndefined();
    expect(bare.headers['x-ratelimit-remaining']).toBe('99');
  });

  it('ignores a forged X-Forwarded-For while app.proxy is off', async () => {
    const app = createApp();
    app.use(rateLimit({ name: 'ip', limit: 1, window: '1m' }));
    app.use((ctx) => {
      ctx.body = ctx.ip;
    });
    await request(app.callback()).get('/').set('X-Forwarded-For', '203.0.113.1').expect(200);
    await request(app.callback()).get('/').set('X-Forwarded-For', '203.0.113.2').expect(429);
  });

  it('counts per forwarded client address when app.proxy is on', async () => {
    const app = createApp();
    app.proxy = true;
    app.use(rateLimit({ name: 'ip', limit: 1, window: '1m' }));
    app.use((ctx) => {
      ctx.body = ctx.ip;
    });
    await request(app.callback()).get('/').set('X-Forwarded-For', '203.0.113.1').expect(200);
    await request(app.callback())
      .get('/')
      .set('X-Forwarded-For', '203.0.113.2')
      .expect(200, '203.0.113.2');
    await request(app.callback()).get('/').set('X-Forwarded-For', '203.0.113.1').expect(429);
  });

  it('uses key, skip and cost', async () => {
    const app = createApp();
    app.use(
      rateLimit({
        name: 'keyed',
        limit: 10,
        window: '1m',
        key: (ctx) => ctx.get('x-api-key') || 'anonymous',
        skip: (ctx) => ctx.path === '/free',
        cost: async (ctx) => (ctx.method === 'POST' ? 4 : 1),
        clock: new ManualClock(ALIGNED),
      }),
    );
    app.use((ctx) => {
      ctx.body = 'ok';
    });
    const server = app.callback();
    const a1 = await request(server).get('/').set('x-api-key', 'a').expect(200);
    expect(a1.headers.ratelimit).toBe('"keyed";r=9;t=60');
    const a2 = await request(server).post('/').set('x-api-key', 'a').expect(200);
    expect(a2.headers.ratelimit).toBe('"keyed";r=5;t=60');
    const b1 = await request(server).get('/').set('x-api-key', 'b').expect(200);
    expect(b1.headers.ratelimit).toBe('"keyed";r=9;t=60');
    for (let i = 0; i < 5; i++) {
      const free = await request(server).get('/free').set('x-api-key', 'a').expect(200);
      expect(free.headers.ratelimit).toBeUndefined();
    }
    await request(server).post('/').set('x-api-key', 'a').expect(200);
    await request(server).post('/').set('x-api-key', 'a').expect(429);
  });

  it('answers 200 from the fallback store when a non-local store fails', async () => {
    const store = new FailingStore();
    const limiter = new RateLimiter({
      name: 'shared',
      limit: 2,
      window: '1m',
      store,
      clock: new ManualClock(ALIGNED),
    });
    const app = createApp();
    const middleware = rateLimit(limiter);
    expect(middleware.limiter).toBe(limiter);
    app.use(middleware);
    app.use((ctx) => {
      ctx.body = 'served';
    });
    const first = await request(app.callback()).get('/').expect(200, 'served');
    expect(first.headers.ratelimit).toBe('"shared";r=1;t=60');
    await request(app.callback()).get('/').expect(200, 'served');
    await request(app.callback()).get('/').expect(429);
    expect(store.calls).toBeGreaterThan(0);
    expect(limiter.health().status).toBe('warn');
  });

  it('lets the request through without headers when a hook fails', async () => {
    const warn = jest.spyOn(process, 'emitWarning').mockImplementation(() => {});
    const app = createApp();
    app.use(
      rateLimit({
        name: 'hook',
        limit: 1,
        window: '1m',
        key: () => {
          throw new Error('no key');
        },
      }),
    );
    app.use((ctx) => {
      ctx.body = 'through';
    });
    for (let i = 0; i < 3; i++) {
      const res = await request(app.callback()).get('/').expect(200, 'through');
      expect(res.headers.ratelimit).toBeUndefined();
    }
    expect(warn).toHaveBeenCalledTimes(1);
  });

  it('limits one @koa/router route on its own', async () => {
    const app = createApp();
    const router = new Router();
    const limited = rateLimit({
      name: 'identify',
      limit: 1,
      window: '1h',
      clock: new ManualClock(ALIGNED),
    });
    router.post('/identify', limited, (ctx) => {
      ctx.body = 'identified';
    });
    router.get('/open', (ctx) => {
      ctx.body = 'open';
    });
    app.use(router.routes());
    const identified = await request(app.callback()).post('/identify').expect(200, 'identified');
    expect(identified.headers['ratelimit-policy']).toBe('"identify";q=1;w=3600');
    await request(app.callback()).post('/identify').expect(429).expect('retry-after', '3600');
    const open = await request(app.callback()).get('/open').expect(200, 'open');
    expect(open.headers.ratelimit).toBeUndefined();
  });

  it('validates its options', () => {
    const pathOf = (fn: () => unknown): string | undefined => {
      try {
        fn();
      } catch (error) {
        if (isConfigError(error)) return error.path;
        throw error;
      }
      return undefined;
    };
    expect(pathOf(() => rateLimit({ limit: 0, window: '1m' }))).toBe('limit');
    expect(pathOf(() => rateLimit({ rate: '100/m', headers: { standard: 'yes' as never } }))).toBe(
      'headers.standard',
    );
    expect(pathOf(() => rateLimit({ rate: '100/m', key: 'ip' as never }))).toBe('key');
    expect(pathOf(() => rateLimit({ rate: '100/m', skip: true as never }))).toBe('skip');
  });
});
