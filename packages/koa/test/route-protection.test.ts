import { describe, expect, it } from '@jest/globals';
import { bodyParser } from '@koa/bodyparser';
import Router from '@koa/router';
import request from 'supertest';
import { CircuitBreakerRegistry, isTimeoutError } from '@breakwater/core';
import { circuitBreaker } from '../src';
import { close, deferred, koaVersions, listen, memoryLogger, openRequest } from './helpers';

class NotFound extends Error {}

describe.each(koaVersions)('route protection on %s', (_label, createApp) => {
  it('opens the breaker of a route that reads its body (settles on the response)', async () => {
    const registry = new CircuitBreakerRegistry();
    const app = createApp();
    const router = new Router();
    router.post(
      '/orders',
      circuitBreaker({ registry, failureThreshold: 3 }),
      bodyParser(),
      (ctx) => {
        ctx.status = 500;
        ctx.body = { received: ctx.request.body };
      },
    );
    router.put('/upload', circuitBreaker({ registry, failureThreshold: 3 }), async (ctx) => {
      // A handler that streams the request body, as proxies and uploads do.
      for await (const _chunk of ctx.req) void _chunk;
      ctx.status = 502;
    });
    app.use(router.routes());
    for (let i = 0; i < 3; i++) {
      await request(app.callback()).post('/orders').send({ plant: 'fern' }).expect(500);
      await request(app.callback()).put('/upload').send('x'.repeat(10_000)).expect(502);
    }
    expect(registry.find('POST /orders')?.snapshot()).toMatchObject({ state: 'open', calls: 3 });
    expect(registry.find('PUT /upload')?.state).toBe('open');
    await request(app.callback()).post('/orders').send({}).expect(503);
  });

  it('honours the breaker isFailure for thrown errors', async () => {
    const registry = new CircuitBreakerRegistry();
    const app = createApp();
    const router = new Router();
    router.get(
      '/items/:id',
      circuitBreaker({ registry, failureThreshold: 2, isFailure: (e) => !(e instanceof NotFound) }),
      (ctx) => {
        throw ctx.params.id === 'missing' ? new NotFound('none') : new Error('db down');
      },
    );
    app.use(router.routes());
    for (let i = 0; i < 3; i++) await request(app.callback()).get('/items/missing').expect(500);
    expect(registry.find('GET /items/:id')?.snapshot().failures).toBe(0);
    await request(app.callback()).get('/items/1').expect(500);
    await request(app.callback()).get('/items/1').expect(500);
    await request(app.callback()).get('/items/1').expect(503);
  });

  it('sends a path too long for a breaker name to the overflow breaker, never a 500', async () => {
    const registry = new CircuitBreakerRegistry();
    const app = createApp();
    app.use(circuitBreaker({ registry }));
    app.use((ctx) => {
      ctx.body = 'fine';
    });
    await request(app.callback())
      .get(`/${'a'.repeat(300)}`)
      .expect(200, 'fine');
    expect(registry.find('GET *')?.snapshot().calls).toBe(1);
  });

  it('survives throwing isFailureStatus and fallback hooks, and logs them', async () => {
    const logger = memoryLogger();
    const app = createApp();
    app.use(
      circuitBreaker({
        name: 'hooks',
        logger,
        failureThreshold: 2,
        isFailureStatus: () => {
          throw new Error('status hook broke');
        },
        fallback: async () => Promise.reject(new Error('fallback broke')),
      }),
    );
    app.use((ctx) => {
      ctx.status = 502;
    });
    await request(app.callback()).get('/').expect(502);
    await request(app.callback()).get('/').expect(502);
    const res = await request(app.callback()).get('/').expect(503);
    expect(res.headers['content-type']).toBe('application/problem+json');
    expect(res.text).not.toContain('broke');
    expect(logger.lines.some((l) => l.includes('isFailureStatus failed'))).toBe(true);
    expect(logger.lines.some((l) => l.includes('fallback failed (Error: fallback broke)'))).toBe(
      true,
    );
  });

  it('times a slow route out: 504 problem+json, an aborted ctx.state.signal and a failure', async () => {
    const registry = new CircuitBreakerRegistry();
    const app = createApp();
    const router = new Router();
    let aborted: unknown;
    router.get('/slow', circuitBreaker({ registry, timeoutMs: 50 }), async (ctx) => {
      const signal = (ctx.state as { signal: AbortSignal }).signal;
      await new Promise<void>((resolve) =>
        signal.addEventListener('abort', () => {
          aborted = signal.reason;
          resolve();
        }),
      );
      ctx.body = 'late';
      throw new Error('late failure after the answer');
    });
    app.use(router.routes());
    const res = await request(app.callback()).get('/slow').expect(504);
    expect(JSON.parse(res.text)).toMatchObject({ status: 504, title: 'Gateway Timeout' });
    expect(isTimeoutError(aborted)).toBe(true);
    expect(registry.find('GET /slow')?.snapshot().failures).toBe(1);
  });

  it('answers 503 at once beyond maxConcurrent, without counting a failure', async () => {
    const registry = new CircuitBreakerRegistry();
    const app = createApp();
    const router = new Router();
    const release = deferred();
    router.get('/x', circuitBreaker({ registry, maxConcurrent: 1 }), async (ctx) => {
      await release.promise;
      ctx.body = 'done';
    });
    app.use(router.routes());
    const { server, url } = await listen(app);
    try {
      const first = openRequest(`${url}/x`);
      await new Promise((resolve) => setTimeout(resolve, 50));
      const busy = await request(server).get('/x').expect(503);
      expect(busy.headers['retry-after']).toBe('1');
      release.resolve();
      expect((await first.response).statusCode).toBe(200);
      first.request.destroy();
      await request(server).get('/x').expect(200);
      expect(registry.find('GET /x')?.snapshot().failures).toBe(0);
    } finally {
      release.resolve();
      await close(server);
    }
  });

  it('answers a forced-open circuit with Retry-After: 60', async () => {
    const registry = new CircuitBreakerRegistry();
    const app = createApp();
    app.use(circuitBreaker({ name: 'forced', registry }));
    app.use((ctx) => {
      ctx.body = 'ok';
    });
    registry.find('forced')!.open();
    const res = await request(app.callback()).get('/').expect(503);
    expect(res.headers['retry-after']).toBe('60');
  });
});
