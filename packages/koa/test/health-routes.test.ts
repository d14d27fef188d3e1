import { describe, expect, it } from '@jest/globals';
import request from 'supertest';
import {
  CircuitBreakerRegistry,
  RateLimiter,
  isConfigError,
  type AuthorizeResult,
} from '@breakwater/core';
import type Koa from 'koa';
import { healthRoutes, type HealthRoutesMiddlewareOptions } from '../src';
import { FailingStore, close, ended, koaVersions, listen, openRequest, readUntil } from './helpers';

const HEALTH_JSON = 'application/health+json; charset=utf-8';

function setup(
  createApp: () => Koa,
  options: Omit<HealthRoutesMiddlewareOptions, 'registry'> = {},
): { app: Koa; registry: CircuitBreakerRegistry; health: ReturnType<typeof healthRoutes> } {
  const registry = new CircuitBreakerRegistry();
  registry.get('payments');
  registry.get('search');
  registry.get('GET /users/:id');
  const app = createApp();
  const health = healthRoutes({ registry, critical: ['payments'], ...options });
  app.use(health);
  app.use((ctx) => {
    ctx.body = `app: ${ctx.method} ${ctx.url}`;
  });
  return { app, registry, health };
}

describe.each(koaVersions)('healthRoutes on %s', (_label, createApp) => {
  it('answers liveness 200 even while a critical breaker is open', async () => {
    const { app, registry } = setup(createApp);
    registry.find('payments')!.open();
    const res = await request(app.callback()).get('/health/live').expect(200);
    expect(res.headers['content-type']).toBe(HEALTH_JSON);
    expect(res.headers['cache-control']).toBe('no-store');
    expect(JSON.parse(res.text)).toEqual({ status: 'pass' });
    await request(app.callback()).get('/health/live?probe=kubelet').expect(200);
  });

  it('answers readiness 503 only while a critical breaker is open', async () => {
    const { app, registry } = setup(createApp);
    const ready = await request(app.callback()).get('/health/ready').expect(200);
    expect(ready.headers['content-type']).toBe(HEALTH_JSON);
    expect(JSON.parse(ready.text)).toEqual({ status: 'pass' });
    registry.find('search')!.open();
    await request(app.callback()).get('/health/ready').expect(200);
    registry.find('payments')!.open();
    const notReady = await request(app.callback()).get('/health/ready').expect(503);
    expect(JSON.parse(notReady.text)).toEqual({ status: 'fail' });
  });

  it('serves the health+json report: pass, warn, and fail with 503', async () => {
    const limiter = new RateLimiter({
      name: 'api',
      rate: '10/s',
      store: new FailingStore(),
    });
    const { app, registry } = setup(createApp, { limiters: [limiter] });
    const pass = await request(app.callback()).get('/health').expect(200);
    expect(pass.headers['content-type']).toBe(HEALTH_JSON);
    const report = JSON.parse(pass.text) as {
      status: string;
      checks: Record<string, { status: string; observedValue: string }[]>;
    };
    expect(report.status).toBe('pass');
    expect(Object.keys(report.checks).sort()).toEqual([
      'GET /users/:id:circuit',
      'api:rate-limit-store',
      'payments:circuit',
      'search:circuit',
    ]);

    registry.find('search')!.open();
    const warn = await request(app.callback()).get('/health/').expect(200);
    expect(JSON.parse(warn.text)).toMatchObject({ status: 'warn' });

    registry.find('search')!.reset();
    await limiter.consume('client');
    const storeDown = await request(app.callback()).get('/health').expect(200);
    expect(JSON.parse(storeDown.text)).toMatchObject({
      status: 'warn',
      checks: { 'api:rate-limit-store': [{ status: 'warn', observedValue: 'fallback' }] },
    });

    registry.find('payments')!.open();
    const fail = await request(app.callback()).get('/health').expect(503);
    expect(fail.headers['content-type']).toBe(HEALTH_JSON);
    expect(JSON.parse(fail.text)).toMatchObject({
      status: 'fail',
      checks: { 'payments:circuit': [{ status: 'fail', observedValue: 'forced_open' }] },
    });
    expect(fail.text).not.toContain('connection refused');
  });

  it('lists breakers and serves one by its url-encoded name', async () => {
    const { app, registry } = setup(createApp);
    const list = await request(app.callback()).get('/health/circuit-breakers').expect(200);
    expect(list.headers['content-type']).toBe('application/json; charset=utf-8');
    expect((JSON.parse(list.text) as { name: string }[]).map((b) => b.name)).toEqual([
      'payments',
      'search',
      'GET /users/:id',
    ]);

    registry.find('search')!.open();
    const one = await request(app.callback()).get('/health/circuit-breakers/search').expect(200);
    expect(JSON.parse(one.text)).toMatchObject({ name: 'search', state: 'forced_open' });

    const encoded = encodeURIComponent('GET /users/:id');
    expect(encoded).toContain('%2F');
    const route = await request(app.callback())
      .get(`/health/circuit-breakers/${encoded}`)
      .expect(200);
    expect(JSON.parse(route.text)).toMatchObject({ name: 'GET /users/:id', state: 'closed' });
  });

  it('answers 404 for an unknown or huge name and 400 for malformed encoding', async () => {
    const { app } = setup(createApp);
    const unknown = await request(app.callback()).get('/health/circuit-breakers/nope').expect(404);
    expect(unknown.headers['content-type']).toBe('application/problem+json');
    expect(JSON.parse(unknown.text)).toMatchObject({
      status: 404,
      detail: 'No circuit breaker named "nope"',
    });

    const huge = 'x'.repeat(10_240);
    const big = await request(app.callback()).get(`/health/circuit-breakers/${huge}`).expect(404);
    expect(big.text.length).toBeLessThan(1_000);

    const malformed = await request(app.callback())
      .get('/health/circuit-breakers/%E0%A4%A')
      .expect(400);
    expect(malformed.headers['content-type']).toBe('application/problem+json');
    expect(JSON.parse(malformed.text)).toMatchObject({ status: 400, title: 'Bad Request' });
  });

  it('streams a snapshot first, then a state event when a breaker opens', async () => {
    const { app, registry, health } = setup(createApp);
    const { server, url } = await listen(app);
    try {
      const { request: req, response } = openRequest(`${url}/health/circuit-breakers/stream`, {
        'Last-Event-ID': 'not-a-number; <script>',
      });
      const res = await response;
      expect(res.statusCode).toBe(200);
      expect(res.headers['content-type']).toBe('text/event-stream; charset=utf-8');
      expect(res.headers['cache-control']).toBe('no-store, no-transform');
      expect(res.headers['x-accel-buffering']).toBe('no');
      expect(res.headers['content-length']).toBeUndefined();

      const first = await readUntil(res, (text) => text.includes('\n\n'));
      expect(first).toMatch(/^retry: 5000\nid: \d+\nevent: snapshot\ndata: \[/);
      const data = JSON.parse(/data: (.*)\n/.exec(first)![1]!) as { name: string }[];
      expect(data.map((b) => b.name)).toEqual(['payments', 'search', 'GET /users/:id']);

      registry.find('payments')!.open();
      const next = await readUntil(res, (text) => text.includes('event: state'));
      expect(next).toContain('"name":"payments"');
      expect(next).toContain('"state":"forced_open"');
      req.destroy();
    } finally {
      health.close();
      await close(server);
    }
  });

  it('caps the number of streams with 503 and ends streams cleanly on close()', async () => {
    const { app, health } = setup(createApp, { stream: { maxClients: 1 } });
    const { server, url } = await listen(app);
    try {
      const first = openRequest(`${url}/health/circuit-breakers/stream`);
      const res = await first.response;
      expect(res.statusCode).toBe(200);
      await readUntil(res, (text) => text.includes('event: snapshot'));

      const capped = await request(server).get('/health/circuit-breakers/stream').expect(503);
      expect(capped.headers['retry-after']).toBe('5');
      expect(capped.headers['content-type']).toBe('application/problem+json');

      const done = ended(res);
      health.close();
      await done;
      expect(res.complete).toBe(true);

      // The slot is free again once the stream has ended.
      const again = openRequest(`${url}/health/circuit-breakers/stream`);
      const reopened = await again.response;
      expect(reopened.statusCode).toBe(200);
      again.request.destroy();
    } finally {
      health.close();
      await close(server);
    }
  });

  it('frees a stream slot when the client disconnects', async () => {
    const { app, health } = setup(createApp, { stream: { maxClients: 1 } });
    const { server, url } = await listen(app);
    try {
      const first = openRequest(`${url}/health/circuit-breakers/stream`);
      const res = await first.response;
      await readUntil(res, (text) => text.includes('event: snapshot'));
      first.request.destroy();

      let status = 0;
      for (let attempt = 0; attempt < 100 && status !== 200; attempt++) {
        const next = openRequest(`${url}/health/circuit-breakers/stream`);
        const answer = await next.response;
        status = answer.statusCode ?? 0;
        next.request.destroy();
        if (status !== 200) await new Promise((resolve) => setTimeout(resolve, 10));
      }
      expect(status).toBe(200);
    } finally {
      health.close();
      await close(server);
    }
  });

  it('serves the dashboard as text/html with a content security policy', async () => {
    const { app } = setup(createApp);
    const res = await request(app.callback()).get('/health/dashboard').expect(200);
    expect(res.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(res.headers['content-security-policy']).toContain("default-src 'none'");
    expect(res.headers['content-security-policy']).toContain("frame-ancestors 'none'");
    expect(res.headers['x-content-type-options']).toBe('nosniff');
    expect(res.text).toMatch(/^<!doctype html>/i);

    const { app: without } = setup(createApp, { dashboard: false });
    await request(without.callback())
      .get('/health/dashboard')
      .expect(200, 'app: GET /health/dashboard');
  });

  it('has no reset route without admin', async () => {
    const { app, registry } = setup(createApp);
    registry.find('search')!.open();
    const res = await request(app.callback())
      .post('/health/circuit-breakers/search/reset')
      .expect(404);
    expect(res.headers['content-type']).toBe('application/problem+json');
    expect(registry.find('search')!.state).toBe('forced_open');
  });

  it('resets a breaker through admin.authorize: 401, 403, then 200', async () => {
    const seen: string[] = [];
    const { app, registry } = setup(createApp, {
      admin: {
        authorize: (ctx): AuthorizeResult => {
          const token = ctx.get('authorization');
          seen.push(ctx.path);
          if (token === '') return 'unauthenticated';
          return token === 'Bearer admin';
        },
      },
    });
    const breaker = registry.find('GET /users/:id')!;
    breaker.open();
    const path = `/health/circuit-breakers/${encodeURIComponent(breaker.name)}/reset`;

    const anonymous = await request(app.callback()).post(path).expect(401);
    expect(anonymous.headers['content-type']).toBe('application/problem+json');
    await request(app.callback()).post(path).set('authorization', 'Bearer guest').expect(403);
    expect(breaker.state).toBe('forced_open');

    const done = await request(app.callback())
      .post(path)
      .set('authorization', 'Bearer admin')
      .expect(200);
    expect(JSON.parse(done.text)).toMatchObject({ name: 'GET /users/:id', state: 'closed' });
    expect(breaker.state).toBe('closed');
    expect(seen).toEqual([path, path, path]);

    await request(app.callback())
      .post('/health/circuit-breakers/nope/reset')
      .set('authorization', 'Bearer admin')
      .expect(404);
    await request(app.callback())
      .put('/health/circuit-breakers/search/reset')
      .expect(405)
      .expect('allow', 'POST');
  });

  it('refuses with 403 when authorize throws', async () => {
    const { app, registry } = setup(createApp, {
      admin: {
        authorize: async () => {
          throw new Error('auth service down');
        },
      },
    });
    registry.find('search')!.open();
    const res = await request(app.callback())
      .post('/health/circuit-breakers/search/reset')
      .expect(403);
    expect(res.text).not.toContain('auth service down');
    expect(registry.find('search')!.state).toBe('forced_open');
  });

  it('answers 405 with Allow for other methods', async () => {
    const { app } = setup(createApp);
    const server = app.callback();
    const live = await request(server).post('/health/live').expect(405);
    expect(live.headers.allow).toBe('GET, HEAD');
    expect(live.headers['content-type']).toBe('application/problem+json');
    await request(server).put('/health').expect(405).expect('allow', 'GET, HEAD');
    await request(server).delete('/health/ready').expect(405).expect('allow', 'GET, HEAD');
    await request(server).post('/health/circuit-breakers').expect(405).expect('allow', 'GET, HEAD');
    await request(server)
      .delete('/health/circuit-breakers/search')
      .expect(405)
      .expect('allow', 'GET, HEAD');
    await request(server)
      .head('/health/circuit-breakers/stream')
      .expect(405)
      .expect('allow', 'GET');
  });

  it('answers HEAD with the status and headers of GET and no body', async () => {
    const { app, registry } = setup(createApp);
    const live = await request(app.callback()).head('/health/live').expect(200);
    expect(live.headers['content-type']).toBe(HEALTH_JSON);
    expect(live.text).toBeUndefined();
    registry.find('payments')!.open();
    await request(app.callback()).head('/health').expect(503);
    await request(app.callback()).head('/health/ready').expect(503);
    const dashboard = await request(app.callback()).head('/health/dashboard').expect(200);
    expect(dashboard.headers['content-type']).toBe('text/html; charset=utf-8');
    await request(app.callback()).head('/health/circuit-breakers/payments').expect(200);
  });

  it('passes other paths on to the next middleware, and honours basePath', async () => {
    const { app } = setup(createApp);
    await request(app.callback()).get('/').expect(200, 'app: GET /');
    await request(app.callback()).get('/healthz').expect(200, 'app: GET /healthz');
    await request(app.callback()).get('/health/other').expect(200, 'app: GET /health/other');
    await request(app.callback()).post('/users').expect(200, 'app: POST /users');

    const { app: ops } = setup(createApp, { basePath: '/ops/health' });
    await request(ops.callback()).get('/ops/health/live').expect(200);
    await request(ops.callback()).get('/health/live').expect(200, 'app: GET /health/live');
  });

  it('validates its options', () => {
    const pathOf = (options: unknown): string | undefined => {
      try {
        healthRoutes(options as HealthRoutesMiddlewareOptions);
      } catch (error) {
        if (isConfigError(error)) return error.path;
        throw error;
      }
      return undefined;
    };
    expect(pathOf({ basePath: 'health' })).toBe('basePath');
    expect(pathOf({ admin: { authorize: 'yes' } })).toBe('admin.authorize');
    expect(pathOf({ stream: { maxClients: 0 } })).toBe('stream.maxClients');
    expect(pathOf({ registry: {} })).toBe('registry');
    expect(pathOf({ dashboard: 'on' })).toBe('dashboard');
  });
});
