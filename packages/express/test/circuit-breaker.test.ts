import { describe, expect, it } from '@jest/globals';
import type { NextFunction, Request, Response } from 'express';
import express5 from 'express5';
import request from 'supertest';
import { CircuitBreaker, CircuitBreakerRegistry, isConfigError } from '@breakwater/core';
import { circuitBreaker } from '../src';
import { close, expressVersions, listen, ManualClock, openRequest } from './helpers';

const fail500 = (_req: Request, res: Response): void => {
  res.status(500).json({ error: 'upstream failed' });
};
const ok = (_req: Request, res: Response): void => {
  res.json({ ok: true });
};

describe.each(expressVersions)('circuitBreaker on %s', (_label, _major, createApp) => {
  it('opens after failing responses and answers 503 problem+json with Retry-After in whole seconds', async () => {
    const clock = new ManualClock(1_000);
    const app = createApp();
    app.get(
      '/plants',
      circuitBreaker({ name: 'plant-id', failureThreshold: 2, openDurationMs: 30_500, clock }),
      fail500,
    );

    await request(app).get('/plants').expect(500);
    await request(app).get('/plants').expect(500);
    const open = await request(app).get('/plants').expect(503);

    expect(open.headers['retry-after']).toBe('31');
    expect(open.headers['content-type']).toBe('application/problem+json');
    expect(JSON.parse(open.text)).toEqual({
      type: 'about:blank',
      title: 'Service Unavailable',
      status: 503,
      detail: 'Circuit breaker "plant-id" is open',
      breaker: 'plant-id',
      retryAfter: 31,
    });

    clock.advance(30_000);
    const later = await request(app).get('/plants').expect(503);
    expect(later.headers['retry-after']).toBe('1');
  });

  it('admits a probe after the open time and closes again when it succeeds', async () => {
    const clock = new ManualClock();
    const breaker = new CircuitBreaker({
      name: 'flaky',
      failureThreshold: 1,
      openDurationMs: 10_000,
      clock,
    });
    let healthy = false;
    const app = createApp();
    app.get('/flaky', circuitBreaker(breaker), (req, res) => {
      if (healthy) ok(req, res);
      else fail500(req, res);
    });

    await request(app).get('/flaky').expect(500);
    await request(app).get('/flaky').expect(503);
    expect(breaker.state).toBe('open');
    clock.advance(10_000);
    healthy = true;
    await request(app).get('/flaky').expect(200);
    expect(breaker.state).toBe('closed');
  });

  it('counts an error thrown by a later handler', async () => {
    const breaker = new CircuitBreaker({ name: 'thrower', failureThreshold: 2 });
    const app = createApp();
    app.get('/throw', circuitBreaker(breaker), () => {
      throw new Error('boom');
    });

    await request(app).get('/throw').expect(500);
    await request(app).get('/throw').expect(500);
    await request(app).get('/throw').expect(503);
    expect(breaker.snapshot().failures).toBe(2);
  });

  it('counts next(err), which Express answers with 500', async () => {
    const breaker = new CircuitBreaker({ name: 'next-error', failureThreshold: 2 });
    const app = createApp();
    app.get('/next', circuitBreaker(breaker), (_req: Request, _res: Response, next: NextFunction) =>
      setImmediate(() => next(new Error('later'))),
    );

    await request(app).get('/next').expect(500);
    await request(app).get('/next').expect(500);
    await request(app).get('/next').expect(503);
  });

  it('does not count 4xx answers, and counts what isFailureStatus says', async () => {
    const registry = new CircuitBreakerRegistry();
    const app = createApp();
    app.get('/missing', circuitBreaker({ registry, failureThreshold: 1 }), (_req, res) => {
      res.status(404).end();
    });
    app.get(
      '/throttled',
      circuitBreaker({
        registry,
        failureThreshold: 1,
        isFailureStatus: (status) => status === 429 || status >= 500,
      }),
      (_req, res) => {
        res.status(429).end();
      },
    );

    await request(app).get('/missing').expect(404);
    await request(app).get('/missing').expect(404);
    expect(registry.find('GET /missing')?.snapshot()).toMatchObject({ calls: 2, failures: 0 });

    await request(app).get('/throttled').expect(429);
    await request(app).get('/throttled').expect(503);
  });

  it('answers with the fallback handler while open', async () => {
    const app = createApp();
    app.get(
      '/recommendations',
      circuitBreaker({
        name: 'recommendations',
        failureThreshold: 1,
        fallback: (_req, res) => {
          res.status(200).json({ items: [], degraded: true });
        },
      }),
      fail500,
    );

    await request(app).get('/recommendations').expect(500);
    const res = await request(app).get('/recommendations').expect(200);
    expect(res.body).toEqual({ items: [], degraded: true });
  });

  it('answers the 503 when an async fallback rejects, without reaching the error handler', async () => {
    const app = createApp();
    app.get(
      '/fallback-fails',
      circuitBreaker({
        name: 'fallback-fails',
        failureThreshold: 1,
        fallback: async () => {
          await Promise.resolve();
          throw new Error('fallback broke');
        },
      }),
      fail500,
    );
    app.use((_err: unknown, _req: Request, res: Response, _next: NextFunction) => {
      res.status(502).json({ handled: true });
    });

    await request(app).get('/fallback-fails').expect(500);
    const res = await request(app).get('/fallback-fails').expect(503);
    expect(res.headers['content-type']).toBe('application/problem+json');
    expect(res.text).not.toContain('fallback broke');
  });

  it('names per-route breakers after the method and the route pattern', async () => {
    const registry = new CircuitBreakerRegistry();
    const app = createApp();
    app.get('/users/:id', circuitBreaker({ registry }), ok);
    const router = createApp();
    router.get('/orders/:orderId', circuitBreaker({ registry }), ok);
    app.use('/api', router);

    await request(app).get('/users/1').expect(200);
    await request(app).get('/users/2').expect(200);
    await request(app).get('/api/orders/7').expect(200);

    expect(
      registry
        .list()
        .map((b) => b.name)
        .sort(),
    ).toEqual(['GET /api/orders/:orderId', 'GET /users/:id']);
    expect(registry.find('GET /users/:id')?.snapshot().calls).toBe(2);
  });

  it('uses the path outside a route and stays bounded by maxRoutes under a flood of paths', async () => {
    const registry = new CircuitBreakerRegistry();
    const app = createApp();
    app.use('/files', circuitBreaker({ registry, maxRoutes: 5 }));
    app.use((_req, res) => {
      res.status(200).end();
    });
    const { server, url } = await listen(app);
    try {
      for (let i = 0; i < 40; i++) await request(url).get(`/files/${i}`).expect(200);
    } finally {
      await close(server);
    }
    const names = registry.list().map((b) => b.name);
    expect(names).toHaveLength(6);
    expect(names).toContain('GET /files/0');
    expect(names).toContain('GET *');
    expect(registry.find('GET *')?.snapshot().calls).toBe(35);
  });

  it('counts a slow response as slow', async () => {
    const clock = new ManualClock();
    const breaker = new CircuitBreaker({
      name: 'slow',
      failureThreshold: false,
      slowCallDurationMs: 1_000,
      slowCallRateThreshold: 50,
      minimumCalls: 2,
      clock,
    });
    const app = createApp();
    app.get('/slow', circuitBreaker(breaker), (req, res) => {
      clock.advance(2_500);
      ok(req, res);
    });

    await request(app).get('/slow').expect(200);
    expect(breaker.snapshot().slowCalls).toBe(1);
    await request(app).get('/slow').expect(200);
    expect(breaker.state).toBe('open');
    await request(app).get('/slow').expect(503);
  });

  it('releases the permit without recording when the client disconnects', async () => {
    const clock = new ManualClock();
    const breaker = new CircuitBreaker({
      name: 'abandoned',
      failureThreshold: 1,
      openDurationMs: 1_000,
      clock,
    });
    let arrived!: () => void;
    let closed!: () => void;
    const arrival = new Promise<void>((resolve) => (arrived = resolve));
    const closing = new Promise<void>((resolve) => (closed = resolve));
    let hold = true;
    const app = createApp();
    app.get('/report', circuitBreaker(breaker), (req, res) => {
      if (!hold) return ok(req, res);
      res.on('close', closed);
      arrived();
    });
    app.get('/fail', circuitBreaker(breaker), fail500);
    const { server, url } = await listen(app);
    try {
      await request(url).get('/fail').expect(500);
      clock.advance(1_000);
      expect(breaker.state).toBe('half_open');
      const before = breaker.snapshot();

      // The only probe goes to a request whose client goes away.
      const { request: client, response } = openRequest(`${url}/report`);
      response.catch(() => undefined);
      await arrival;
      client.destroy();
      await closing;

      expect(breaker.snapshot()).toEqual(before);
      // The probe permit was released: the next request is admitted as the probe.
      hold = false;
      await request(url).get('/report').expect(200);
      expect(breaker.state).toBe('closed');
    } finally {
      await close(server);
    }
  });

  it('rejects invalid options with a ConfigError naming the option', () => {
    for (const [options, path] of [
      [{ fallback: 'cached' }, 'fallback'],
      [{ maxRoutes: 0 }, 'maxRoutes'],
      [{ failureThreshold: -1 }, 'failureThreshold'],
    ] as const) {
      let caught: unknown;
      try {
        circuitBreaker(options as never);
      } catch (error) {
        caught = error;
      }
      expect(isConfigError(caught)).toBe(true);
      expect((caught as { path: string }).path).toBe(path);
    }
  });
});

describe('circuitBreaker on Express 5 only', () => {
  it('counts a rejected async handler', async () => {
    const breaker = new CircuitBreaker({ name: 'async', failureThreshold: 2 });
    const app = express5();
    app.get('/async', circuitBreaker(breaker), async () => {
      await Promise.resolve();
      throw new Error('async boom');
    });

    await request(app).get('/async').expect(500);
    await request(app).get('/async').expect(500);
    await request(app).get('/async').expect(503);
  });
});
