import http from 'node:http';
import { describe, expect, it } from '@jest/globals';
import Router from '@koa/router';
import request from 'supertest';
import {
  CircuitBreaker,
  CircuitBreakerRegistry,
  isConfigError,
  type CircuitBreakerSnapshot,
} from '@breakwater/core';
import { circuitBreaker } from '../src';
import { ManualClock, close, deferred, koaVersions, listen } from './helpers';

describe.each(koaVersions)('circuitBreaker on %s', (_label, createApp) => {
  it('opens after failing responses and answers 503 with Retry-After and problem+json', async () => {
    const clock = new ManualClock(1_000_000);
    const app = createApp();
    let calls = 0;
    app.use(circuitBreaker({ name: 'orders', failureThreshold: 3, openDurationMs: '30s', clock }));
    app.use((ctx) => {
      calls++;
      ctx.status = 500;
      ctx.body = 'upstream broke';
    });
    const server = app.callback();
    for (let i = 0; i < 3; i++) await request(server).get('/orders').expect(500);
    clock.advance(1_500);

    const res = await request(server).get('/orders').expect(503);
    expect(calls).toBe(3);
    expect(res.headers['retry-after']).toBe('29');
    expect(res.headers['content-type']).toBe('application/problem+json');
    expect(res.headers['cache-control']).toBe('no-store');
    expect(JSON.parse(res.text)).toEqual({
      type: 'about:blank',
      title: 'Service Unavailable',
      status: 503,
      detail: 'Circuit breaker "orders" is open',
      breaker: 'orders',
      retryAfter: 29,
    });
  });

  it('counts a thrown error as a failure and rethrows it unchanged', async () => {
    const app = createApp();
    const thrown = new Error('database down');
    const caught: unknown[] = [];
    app.use(async (ctx, next) => {
      try {
        await next();
      } catch (error) {
        caught.push(error);
        ctx.status = 500;
        ctx.body = 'caught';
      }
    });
    app.use(circuitBreaker({ name: 'db', failureThreshold: 2 }));
    app.use(() => {
      throw thrown;
    });
    const server = app.callback();
    await request(server).get('/').expect(500, 'caught');
    await request(server).get('/').expect(500, 'caught');
    expect(caught).toEqual([thrown, thrown]);
    expect(caught[0]).toBe(thrown);

    const res = await request(server).get('/').expect(503);
    expect(JSON.parse(res.text)).toMatchObject({ breaker: 'db' });
    expect(caught).toHaveLength(2);
  });

  it('lets Koa answer 500 for a thrown error and opens on it', async () => {
    const app = createApp();
    app.use(circuitBreaker({ name: 'thrower', failureThreshold: 1 }));
    app.use(() => {
      throw new Error('boom');
    });
    await request(app.callback()).get('/').expect(500);
    await request(app.callback()).get('/').expect(503);
  });

  it('counts a thrown error that names its status by that status, as Koa answers it', async () => {
    const app = createApp();
    const breaker = new CircuitBreaker({ name: 'thrown-status', failureThreshold: 2 });
    let status = 404;
    app.use(circuitBreaker(breaker));
    app.use((ctx) => {
      ctx.throw(status, 'nope');
    });
    for (let i = 0; i < 4; i++) await request(app.callback()).get('/').expect(404);
    expect(breaker.snapshot()).toMatchObject({ state: 'closed', failures: 0 });
    status = 502;
    await request(app.callback()).get('/').expect(502);
    await request(app.callback()).get('/').expect(502);
    await request(app.callback()).get('/').expect(503);
  });

  it("leaves out thrown errors a given breaker's isFailure rejects", async () => {
    class ValidationError extends Error {}
    const breaker = new CircuitBreaker({
      name: 'validated',
      failureThreshold: 1,
      isFailure: (error) => !(error instanceof ValidationError),
    });
    const app = createApp();
    app.use(circuitBreaker(breaker));
    app.use((ctx) => {
      if (ctx.path === '/invalid') throw new ValidationError('bad input');
      throw new Error('dependency down');
    });
    for (let i = 0; i < 3; i++) await request(app.callback()).get('/invalid').expect(500);
    expect(breaker.state).toBe('closed');
    await request(app.callback()).get('/broken').expect(500);
    await request(app.callback()).get('/invalid').expect(503);
  });

  it('does not count 4xx answers by default, and counts what isFailureStatus says', async () => {
    const app = createApp();
    app.use(circuitBreaker({ name: 'default-rule', failureThreshold: 1 }));
    app.use((ctx) => {
      ctx.status = 404;
    });
    for (let i = 0; i < 3; i++) await request(app.callback()).get('/').expect(404);

    const strict = createApp();
    strict.use(
      circuitBreaker({ name: 'strict', failureThreshold: 2, isFailureStatus: (s) => s >= 400 }),
    );
    strict.use((ctx) => {
      ctx.status = 429;
    });
    await request(strict.callback()).get('/').expect(429);
    await request(strict.callback()).get('/').expect(429);
    await request(strict.callback()).get('/').expect(503);
  });

  it('admits a probe after the open time and closes on its success', async () => {
    const clock = new ManualClock();
    const app = createApp();
    let status = 500;
    const breaker = new CircuitBreaker({
      name: 'probe',
      failureThreshold: 1,
      openDurationMs: 10_000,
      clock,
    });
    app.use(circuitBreaker(breaker));
    app.use((ctx) => {
      ctx.status = status;
      ctx.body = 'answer';
    });
    await request(app.callback()).get('/').expect(500);
    await request(app.callback()).get('/').expect(503).expect('retry-after', '10');
    clock.advance(9_001);
    await request(app.callback()).get('/').expect(503).expect('retry-after', '1');
    clock.advance(1_000);
    status = 200;
    await request(app.callback()).get('/').expect(200);
    expect(breaker.state).toBe('closed');
  });

  it('calls the fallback while the circuit is open', async () => {
    const app = createApp();
    const breaker = new CircuitBreaker({ name: 'recs', failureThreshold: 1 });
    const registry = new CircuitBreakerRegistry();
    registry.add(breaker);
    let handled = 0;
    app.use(
      circuitBreaker({
        registry,
        name: 'recs',
        fallback: (ctx) => {
          ctx.set('x-fallback', 'yes');
          ctx.body = { items: [], degraded: true };
        },
      }),
    );
    app.use((ctx) => {
      handled++;
      ctx.body = { items: [1, 2, 3] };
    });
    await request(app.callback())
      .get('/')
      .expect(200, { items: [1, 2, 3] });
    breaker.open();
    const res = await request(app.callback()).get('/').expect(200);
    expect(res.body).toEqual({ items: [], degraded: true });
    expect(res.headers['x-fallback']).toBe('yes');
    expect(res.headers['retry-after']).toBeUndefined();
    expect(handled).toBe(1);
  });

  it('lets an async fallback call next() to serve a degraded route', async () => {
    const breaker = new CircuitBreaker({ name: 'degraded', failureThreshold: 1 });
    const registry = new CircuitBreakerRegistry();
    registry.add(breaker);
    const app = createApp();
    app.use(
      circuitBreaker({
        registry,
        name: 'degraded',
        fallback: async (ctx, next) => {
          ctx.state.degraded = true;
          await next();
          ctx.set('x-degraded', '1');
        },
      }),
    );
    app.use((ctx) => {
      ctx.body = { degraded: ctx.state.degraded === true };
    });
    const healthy = await request(app.callback()).get('/').expect(200);
    expect(healthy.body).toEqual({ degraded: false });
    expect(healthy.headers['x-degraded']).toBeUndefined();

    breaker.open();
    const degraded = await request(app.callback()).get('/').expect(200);
    expect(degraded.body).toEqual({ degraded: true });
    expect(degraded.headers['x-degraded']).toBe('1');
  });

  it('names per-route breakers after the @koa/router pattern', async () => {
    const registry = new CircuitBreakerRegistry();
    const app = createApp();
    const router = new Router();
    router.get('/users/:id', circuitBreaker({ registry, failureThreshold: 2 }), (ctx) => {
      ctx.status = ctx.params.id === 'bad' ? 500 : 200;
      ctx.body = { id: ctx.params.id };
    });
    router.post('/users', circuitBreaker({ registry }), (ctx) => {
      ctx.status = 201;
    });
    app.use(router.routes());
    const server = app.callback();
    await request(server).get('/users/1').expect(200);
    await request(server).get('/users/2').expect(200);
    await request(server).post('/users').expect(201);
    expect(
      registry
        .list()
        .map((b) => b.name)
        .sort(),
    ).toEqual(['GET /users/:id', 'POST /users']);

    await request(server).get('/users/bad').expect(500);
    await request(server).get('/users/bad').expect(500);
    const res = await request(server).get('/users/3').expect(503);
    expect(JSON.parse(res.text)).toMatchObject({ breaker: 'GET /users/:id' });
    await request(server).post('/users').expect(201);
  });

  it('names breakers after the route when added with router.use(), with a prefix', async () => {
    const registry = new CircuitBreakerRegistry();
    const app = createApp();
    const router = new Router({ prefix: '/api' });
    router.use(circuitBreaker({ registry }));
    router.get('/users/:id', (ctx) => {
      ctx.body = 'user';
    });
    router.delete('/orders/:orderId/items/:item', (ctx) => {
      ctx.status = 204;
    });
    app.use(router.routes());
    await request(app.callback()).get('/api/users/7').expect(200);
    await request(app.callback()).delete('/api/orders/1/items/2').expect(204);
    expect(
      registry
        .list()
        .map((b) => b.name)
        .sort(),
    ).toEqual(['DELETE /api/orders/:orderId/items/:item', 'GET /api/users/:id']);
  });

  it('bounds per-path breakers by maxRoutes under a flood of distinct paths', async () => {
    const registry = new CircuitBreakerRegistry();
    const app = createApp();
    app.use(circuitBreaker({ registry, maxRoutes: 5 }));
    app.use((ctx) => {
      ctx.body = 'ok';
    });
    const server = app.callback();
    for (let i = 0; i < 40; i++) await request(server).get(`/item/${i}`).expect(200);
    await request(server).post('/item/x').expect(200);
    const names = registry.list().map((b) => b.name);
    expect(names.sort()).toEqual([
      'GET *',
      'GET /item/0',
      'GET /item/1',
      'GET /item/2',
      'GET /item/3',
      'GET /item/4',
      'POST *',
    ]);
    expect(registry.find('GET *')!.snapshot().calls).toBe(35);
  });

  it('counts a slow response as slow', async () => {
    const clock = new ManualClock();
    const registry = new CircuitBreakerRegistry({ clock });
    const app = createApp();
    app.use(
      circuitBreaker({
        registry,
        name: 'slow',
        failureThreshold: false,
        slowCallDurationMs: 100,
        slowCallRateThreshold: 50,
        minimumCalls: 2,
      }),
    );
    app.use(async (ctx) => {
      await Promise.resolve();
      clock.advance(250);
      ctx.body = 'late but fine';
    });
    const breaker = registry.find('slow')!;
    const slow: number[] = [];
    breaker.on('slowCall', ({ durationMs }) => slow.push(durationMs));
    await request(app.callback()).get('/').expect(200);
    await request(app.callback()).get('/').expect(200);
    expect(slow).toEqual([250, 250]);
    const snapshot: CircuitBreakerSnapshot = breaker.snapshot();
    expect(snapshot.state).toBe('open');
    await request(app.callback()).get('/').expect(503);
  });

  it('releases the permit without recording when the client disconnects', async () => {
    const app = createApp();
    const breaker = new CircuitBreaker({
      name: 'gone',
      failureThreshold: 1,
      halfOpen: { maxConcurrent: 1 },
    });
    const entered = deferred();
    const closed = deferred();
    const release = deferred();
    const finished = deferred();
    app.use(async (_ctx, next) => {
      try {
        await next();
      } finally {
        finished.resolve();
      }
    });
    app.use(circuitBreaker(breaker));
    app.use(async (ctx) => {
      if (ctx.path === '/hang') {
        // Registered after the middleware's own listener, so it runs after it.
        ctx.req.once('close', () => closed.resolve());
        entered.resolve();
        await release.promise;
        ctx.status = 500;
        return;
      }
      ctx.body = 'fine';
    });
    let ignored = 0;
    breaker.on('ignored', () => ignored++);
    const { server, url } = await listen(app);
    try {
      const req = http.get(`${url}/hang`);
      req.on('error', () => {});
      await entered.promise;
      req.destroy();
      await closed.promise;
      release.resolve();
      await finished.promise;
      expect(ignored).toBe(1);
      const snapshot = breaker.snapshot();
      expect(snapshot.state).toBe('closed');
      expect(snapshot.calls).toBe(0);
      expect(snapshot.failures).toBe(0);
      await request(server).get('/').expect(200, 'fine');
    } finally {
      release.resolve();
      await close(server);
    }
  });

  it('validates its options', () => {
    const expectConfigError = (fn: () => unknown, path: string): void => {
      let error: unknown;
      try {
        fn();
      } catch (e) {
        error = e;
      }
      expect(isConfigError(error)).toBe(true);
      expect((error as { path: string }).path).toBe(path);
    };
    expectConfigError(() => circuitBreaker({ fallback: 'cached' as never }), 'fallback');
    expectConfigError(() => circuitBreaker(null as never), 'options');
    expectConfigError(() => circuitBreaker({ maxRoutes: 0 }), 'maxRoutes');
    expectConfigError(() => circuitBreaker({ failureThreshold: -1 }), 'failureThreshold');
    expectConfigError(() => circuitBreaker({ isFailureStatus: 500 as never }), 'isFailureStatus');
    expectConfigError(() => circuitBreaker({ timeoutMs: -1 }), 'timeoutMs');
    expectConfigError(() => circuitBreaker({ maxConcurrent: 0 }), 'maxConcurrent');
  });
});
