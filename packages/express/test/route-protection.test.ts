import { describe, expect, it } from '@jest/globals';
import type { Request, Response } from 'express';
import request from 'supertest';
import { CircuitBreakerRegistry, isTimeoutError } from '@breakwater/core';
import { breakerErrors, circuitBreaker } from '../src';
import { close, expressVersions, listen, memoryLogger, openRequest } from './helpers';

/** An error that names no status: the app answers it 500, and isFailure decides how it counts. */
class NotFound extends Error {}

describe.each(expressVersions)('route protection on %s', (_label, _major, createApp) => {
  it('honours the breaker isFailure for errors passed on to breakerErrors()', async () => {
    const registry = new CircuitBreakerRegistry();
    const app = createApp();
    app.get(
      '/items/:id',
      circuitBreaker({
        registry,
        failureThreshold: 2,
        isFailure: (error) => !(error instanceof NotFound),
      }),
      (req, _res, next) => {
        next(req.params.id === 'missing' ? new NotFound('no such item') : new Error('db down'));
      },
    );
    app.use(breakerErrors());
    app.use((_error: unknown, _req: Request, res: Response, _next: unknown) => {
      res.status(500).json({ error: 'failed' });
    });

    for (let i = 0; i < 3; i++) await request(app).get('/items/missing').expect(500);
    expect(registry.find('GET /items/:id')?.snapshot()).toMatchObject({
      state: 'closed',
      failures: 0,
    });
    await request(app).get('/items/1').expect(500);
    await request(app).get('/items/1').expect(500);
    await request(app).get('/items/1').expect(503);
  });

  it('counts an error that names a 4xx status as that status', async () => {
    const registry = new CircuitBreakerRegistry();
    const app = createApp();
    app.get('/x', circuitBreaker({ registry, failureThreshold: 1 }), (_req, _res, next) => {
      next(Object.assign(new Error('nope'), { status: 404 }));
    });
    app.use(breakerErrors());
    for (let i = 0; i < 3; i++) await request(app).get('/x').expect(404);
    expect(registry.find('GET /x')?.state).toBe('closed');
  });

  it('sends a path too long for a breaker name to the overflow breaker, never a 500', async () => {
    const registry = new CircuitBreakerRegistry();
    const app = createApp();
    app.use(circuitBreaker({ registry }));
    app.use((_req, res) => {
      res.send('fine');
    });
    const long = `/${'a'.repeat(300)}`;
    const res = await request(app).get(long).expect(200);
    expect(res.text).toBe('fine');
    expect(registry.find('GET *')?.snapshot().calls).toBe(1);
  });

  it('survives an isFailureStatus that throws: counted by status, logged, no crash', async () => {
    const logger = memoryLogger();
    const registry = new CircuitBreakerRegistry();
    const app = createApp();
    app.get(
      '/x',
      circuitBreaker({
        registry,
        logger,
        failureThreshold: 2,
        isFailureStatus: () => {
          throw new Error('hook broke');
        },
      }),
      (_req, res) => {
        res.status(502).end();
      },
    );
    await request(app).get('/x').expect(502);
    await request(app).get('/x').expect(502);
    await request(app).get('/x').expect(503);
    expect(logger.lines.some((l) => l.includes('isFailureStatus failed (Error: hook broke)'))).toBe(
      true,
    );
  });

  it('answers the 503 when the fallback throws or rejects, and logs it', async () => {
    const logger = memoryLogger();
    const app = createApp();
    const breaker = circuitBreaker({
      name: 'fb',
      logger,
      failureThreshold: 1,
      fallback: (req) => {
        if (req.query.async === '1') return Promise.reject(new Error('async fallback broke'));
        throw new Error('fallback broke');
      },
    });
    app.get('/x', breaker, (_req, res) => {
      res.status(500).end();
    });
    await request(app).get('/x').expect(500);
    const res = await request(app).get('/x').expect(503);
    expect(res.headers['content-type']).toBe('application/problem+json');
    expect(res.text).not.toContain('broke');
    await request(app).get('/x?async=1').expect(503);
    expect(logger.lines.some((l) => l.includes('fallback failed (Error: fallback broke)'))).toBe(
      true,
    );
  });

  it('times a slow route out: 504 problem+json, an aborted req.signal and a failure', async () => {
    const registry = new CircuitBreakerRegistry();
    const app = createApp();
    let aborted: unknown;
    app.get('/slow', circuitBreaker({ registry, timeoutMs: 50 }), (req, res) => {
      const signal = (req as Request & { signal: AbortSignal }).signal;
      signal.addEventListener('abort', () => {
        aborted = signal.reason;
        // A handler that answers late is not an error of ours.
        setImmediate(() => {
          if (!res.headersSent) res.send('late');
        });
      });
    });
    const res = await request(app).get('/slow').expect(504);
    expect(res.headers['content-type']).toBe('application/problem+json');
    expect(JSON.parse(res.text)).toMatchObject({ status: 504, title: 'Gateway Timeout' });
    expect(isTimeoutError(aborted)).toBe(true);
    expect(registry.find('GET /slow')?.snapshot().failures).toBe(1);
  });

  it('answers 503 at once beyond maxConcurrent, without counting a failure', async () => {
    const registry = new CircuitBreakerRegistry();
    const app = createApp();
    let release: () => void = () => undefined;
    const held = new Promise<void>((resolve) => (release = resolve));
    app.get('/x', circuitBreaker({ registry, maxConcurrent: 1 }), (_req, res) => {
      void held.then(() => res.send('done'));
    });
    const { server, url } = await listen(app);
    try {
      const first = openRequest(`${url}/x`);
      await new Promise((resolve) => setTimeout(resolve, 50));
      const busy = await request(server).get('/x').expect(503);
      expect(busy.headers['retry-after']).toBe('1');
      release();
      expect((await first.response).statusCode).toBe(200);
      first.request.destroy();
      await request(server).get('/x').expect(200);
      expect(registry.find('GET /x')?.snapshot().failures).toBe(0);
    } finally {
      release();
      await close(server);
    }
  });

  it('answers a forced-open circuit with Retry-After: 60', async () => {
    const registry = new CircuitBreakerRegistry();
    const app = createApp();
    app.get('/x', circuitBreaker({ registry }), (_req, res) => {
      res.send('ok');
    });
    await request(app).get('/x').expect(200);
    registry.find('GET /x')!.open();
    const res = await request(app).get('/x').expect(503);
    expect(res.headers['retry-after']).toBe('60');
  });
});
