import { afterEach, beforeEach, describe, expect, it, jest } from '@jest/globals';
import Router from '@koa/router';
import type { Context } from 'koa';
import request from 'supertest';
import type { RateLimitInfo } from '@breakwater/core';
import { rateLimit } from '../src';
import { koaVersions, ManualClock, memoryLogger } from './helpers';

const ok = (ctx: Context): void => {
  ctx.body = 'ok';
};

describe.each(koaVersions)('rateLimit parity with express-rate-limit on %s', (_l, createApp) => {
  let warning: jest.SpiedFunction<typeof process.emitWarning>;
  beforeEach(() => {
    warning = jest.spyOn(process, 'emitWarning').mockImplementation(() => undefined);
  });
  afterEach(() => warning.mockRestore());

  /** An app with each middleware on its own path. */
  function appWith(routes: Record<string, ReturnType<typeof rateLimit>>) {
    const app = createApp();
    const router = new Router();
    for (const [path, middleware] of Object.entries(routes)) router.get(path, middleware, ok);
    app.use(router.routes());
    return app.callback();
  }

  it('answers with message and statusCode, or a handler; a throwing handler gets the default', async () => {
    const logger = memoryLogger();
    const app = appWith({
      '/text': rateLimit({
        name: 't',
        limit: 1,
        window: '1h',
        message: 'Slow down',
        statusCode: 503,
      }),
      '/json': rateLimit({
        name: 'j',
        limit: 1,
        window: '1h',
        message: () => ({ error: 'quota' }),
      }),
      '/custom': rateLimit({
        name: 'c',
        limit: 1,
        window: '1h',
        handler: (ctx, _next, info) => {
          ctx.status = 429;
          ctx.body = { limiter: info.limiter };
        },
      }),
      '/broken': rateLimit({
        name: 'b',
        limit: 1,
        window: '1h',
        logger,
        handler: async () => Promise.reject(new Error('handler broke')),
      }),
    });
    for (const path of ['/text', '/json', '/custom', '/broken'])
      await request(app).get(path).expect(200);
    const text = await request(app).get('/text').expect(503, 'Slow down');
    expect(text.headers['content-type']).toBe('text/plain; charset=utf-8');
    expect(text.headers.ratelimit).toMatch(/^"t";r=0;t=\d+$/);
    expect(JSON.parse((await request(app).get('/json').expect(429)).text)).toEqual({
      error: 'quota',
    });
    expect((await request(app).get('/custom').expect(429)).body).toEqual({ limiter: 'c' });
    const broken = await request(app).get('/broken').expect(429);
    expect(broken.headers['content-type']).toBe('application/problem+json');
    expect(logger.lines.some((l) => l.includes('handler failed (Error: handler broke)'))).toBe(
      true,
    );
  });

  it('takes limit(ctx), and lets the request through when a hook fails', async () => {
    const logger = memoryLogger();
    const app = appWith({
      '/plan': rateLimit({
        name: 'plan',
        window: '1h',
        key: (ctx) => ctx.get('x-user'),
        limit: (ctx) => (ctx.get('x-plan') === 'pro' ? 2 : 1),
      }),
      '/broken': rateLimit({
        name: 'broken',
        window: '1h',
        logger,
        limit: async () => Promise.reject(new Error('plan lookup failed')),
      }),
    });
    const pro = { 'x-user': 'p', 'x-plan': 'pro' };
    await request(app).get('/plan').set(pro).expect(200);
    await request(app).get('/plan').set(pro).expect(200);
    await request(app).get('/plan').set(pro).expect(429);
    await request(app).get('/plan').set({ 'x-user': 'f' }).expect(200);
    await request(app).get('/plan').set({ 'x-user': 'f' }).expect(429);
    for (let i = 0; i < 3; i++) await request(app).get('/broken').expect(200);
    expect(logger.lines.some((l) => l.includes('limit failed'))).toBe(true);
  });

  it('puts the decision on ctx.state.rateLimit', async () => {
    const app = createApp();
    let seen: RateLimitInfo | undefined;
    app.use(rateLimit({ name: 'api', limit: 5, window: '1h', clock: new ManualClock(7_200_000) }));
    app.use((ctx) => {
      seen = (ctx.state as { rateLimit?: RateLimitInfo }).rateLimit;
      ctx.body = 'ok';
    });
    await request(app.callback()).get('/').expect(200);
    expect(seen).toMatchObject({
      limiter: 'api',
      limit: 5,
      used: 1,
      remaining: 4,
      key: '127.0.0.1',
    });
  });

  it('puts the decision on ctx.state[requestPropertyName], or nowhere with false', async () => {
    for (const [requestPropertyName, expected] of [
      ['quota', { quota: 'q', rateLimit: undefined }],
      [false, { quota: undefined, rateLimit: undefined }],
    ] as const) {
      const app = createApp();
      let seen: Record<string, unknown> = {};
      app.use(rateLimit({ name: 'q', limit: 5, window: '1h', requestPropertyName }));
      app.use((ctx) => {
        const state = ctx.state as Record<string, RateLimitInfo | undefined>;
        seen = { quota: state.quota?.limiter, rateLimit: state.rateLimit };
        ctx.body = 'ok';
      });
      await request(app.callback()).get('/').expect(200);
      expect(seen).toEqual(expected);
    }
  });

  it('gives back failed and successful requests with skipFailedRequests / skipSuccessfulRequests', async () => {
    const app = createApp();
    const router = new Router();
    const failed = rateLimit({ name: 'f', limit: 2, window: '1h', skipFailedRequests: true });
    router.get('/fail', failed, (ctx) => {
      ctx.status = 404;
    });
    router.get('/throw', failed, () => {
      throw new Error('boom');
    });
    router.get('/ok', failed, ok);
    const succeeded = rateLimit({
      name: 's',
      limit: 1,
      window: '1h',
      skipSuccessfulRequests: true,
      requestWasSuccessful: (ctx) => ctx.status !== 418,
    });
    router.get('/s', succeeded, ok);
    router.get('/teapot', succeeded, (ctx) => {
      ctx.status = 418;
    });
    app.use(router.routes());
    const call = app.callback();
    for (let i = 0; i < 3; i++) await request(call).get('/fail').expect(404);
    await request(call).get('/throw').expect(500);
    await request(call).get('/ok').expect(200);
    await request(call).get('/ok').expect(200);
    await request(call).get('/ok').expect(429);
    for (let i = 0; i < 3; i++) await request(call).get('/s').expect(200);
    await request(call).get('/teapot').expect(418);
    await request(call).get('/s').expect(429);
  });

  it('keeps the RateLimit headers of stacked limiters on a thrown 500', async () => {
    const app = createApp();
    app.use(rateLimit({ name: 'global', limit: 100, window: '1m' }));
    app.use(rateLimit({ name: 'route', limit: 10, window: '1h' }));
    app.use((ctx) => {
      if (ctx.path === '/boom') throw new Error('boom');
      if (ctx.path === '/teapot')
        ctx.throw(418, 'short and stout', { headers: { 'x-kettle': 'on' } });
      ctx.body = 'ok';
    });
    const res = await request(app.callback()).get('/').expect(200);
    expect(res.headers['ratelimit-policy']).toBe('"global";q=100;w=60, "route";q=10;w=3600');
    const boom = await request(app.callback()).get('/boom').expect(500);
    expect(boom.headers['ratelimit-policy']).toBe('"global";q=100;w=60, "route";q=10;w=3600');
    expect(boom.headers.ratelimit).toMatch(/^"global";r=98;t=\d+, "route";r=8;t=\d+$/);
    const teapot = await request(app.callback()).get('/teapot').expect(418);
    expect(teapot.headers['x-kettle']).toBe('on');
    expect(teapot.headers.ratelimit).toMatch(/^"global";r=97;t=\d+, "route";r=7;t=\d+$/);
  });

  it('groups IPv6 clients by /56, and cannot be spoofed behind a proxy with maxIpsCount', async () => {
    const app = createApp();
    app.proxy = true;
    app.maxIpsCount = 1; // one proxy in front: only the entry it appended is trusted
    app.use(rateLimit({ name: 'v6', limit: 1, window: '1h' }));
    app.use(ok);
    const call = app.callback();
    const from = (value: string) => ({ 'x-forwarded-for': value });
    await request(call).get('/').set(from('2001:db8:1:ff01::1')).expect(200);
    await request(call).get('/').set(from('2001:db8:1:ff99::7')).expect(429);
    await request(call).get('/').set(from('::ffff:10.0.0.9')).expect(200);
    await request(call).get('/').set(from('10.0.0.9')).expect(429);
    // A client prepending addresses of its own choosing still counts as what the proxy saw.
    await request(call).get('/').set(from('203.0.113.5')).expect(200);
    await request(call).get('/').set(from('198.51.100.1, 203.0.113.5')).expect(429);
  });

  it('warns once when X-Forwarded-For arrives while app.proxy is off', async () => {
    const app = createApp();
    app.use(rateLimit({ name: 'xff', limit: 100, window: '1h' }));
    app.use(ok);
    await request(app.callback()).get('/').set('x-forwarded-for', '1.2.3.4').expect(200);
    await request(app.callback()).get('/').set('x-forwarded-for', '1.2.3.5').expect(200);
    expect(warning).toHaveBeenCalledTimes(1);
    expect(String(warning.mock.calls[0]?.[0])).toContain('X-Forwarded-For');
  });

  it('sends older header drafts on request', async () => {
    const clock = new ManualClock(7_200_000);
    const app = appWith({
      '/7': rateLimit({ name: 'a', limit: 5, window: '1m', clock, headers: 'draft-7' }),
      '/6': rateLimit({
        name: 'b',
        limit: 5,
        window: '1m',
        clock,
        headers: { standard: 'draft-6', legacy: true },
      }),
    });
    const seven = await request(app).get('/7').expect(200);
    expect(seven.headers.ratelimit).toBe('limit=5, remaining=4, reset=60');
    const six = await request(app).get('/6').expect(200);
    expect(six.headers).toMatchObject({
      'ratelimit-policy': '5;w=60',
      'ratelimit-limit': '5',
      'ratelimit-remaining': '4',
      'ratelimit-reset': '60',
      'x-ratelimit-remaining': '4',
    });
  });
});
