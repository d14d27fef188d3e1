import { afterEach, describe, expect, it } from '@jest/globals';
import type { Express, Request } from 'express';
import type { Server } from 'node:http';
import request from 'supertest';
import { CircuitBreakerRegistry, isConfigError } from '@breakwater/core';
import { healthRoutes, type HealthRoutesMiddleware } from '../src';
import { close, expressVersions, listen, openRequest, readUntil } from './helpers';

const HEALTH_JSON = 'application/health+json; charset=utf-8';

describe.each(expressVersions)('healthRoutes on %s', (_label, _major, createApp) => {
  const cleanups: (() => Promise<void> | void)[] = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  function setup(options: Parameters<typeof healthRoutes>[0] = {}): {
    app: Express;
    registry: CircuitBreakerRegistry;
    health: HealthRoutesMiddleware;
  } {
    const registry = options.registry ?? new CircuitBreakerRegistry();
    registry.get('db');
    registry.get('search');
    const health = healthRoutes({ registry, critical: ['db'], ...options });
    cleanups.push(() => health.close());
    const app = createApp();
    app.use(health);
    app.get('/other', (_req, res) => {
      res.send('other');
    });
    return { app, registry, health };
  }

  async function serve(app: Express): Promise<{ server: Server; url: string }> {
    const served = await listen(app);
    cleanups.push(() => close(served.server));
    return served;
  }

  it('serves liveness, which never depends on downstreams', async () => {
    const { app, registry } = setup();
    registry.find('db')!.open();
    const res = await request(app).get('/health/live').expect(200);
    expect(res.headers['content-type']).toBe(HEALTH_JSON);
    expect(res.body).toEqual({ status: 'pass' });
  });

  it('serves readiness: 503 while a critical breaker is open', async () => {
    const { app, registry } = setup();
    expect((await request(app).get('/health/ready').expect(200)).body).toEqual({ status: 'pass' });
    registry.find('search')!.open();
    await request(app).get('/health/ready').expect(200);
    registry.find('db')!.open();
    const res = await request(app).get('/health/ready').expect(503);
    expect(res.body).toEqual({ status: 'fail' });
  });

  it('serves the health report as application/health+json: pass, warn, fail', async () => {
    const { app, registry } = setup();
    let res = await request(app).get('/health').expect(200);
    expect(res.headers['content-type']).toBe(HEALTH_JSON);
    expect(res.headers['cache-control']).toBe('no-store');
    expect((res.body as { status: string }).status).toBe('pass');

    registry.find('search')!.open();
    res = await request(app).get('/health').expect(200);
    expect((res.body as { status: string }).status).toBe('warn');

    registry.find('db')!.open();
    res = await request(app).get('/health').expect(503);
    expect((res.body as { status: string }).status).toBe('fail');
    expect(JSON.stringify(res.body)).toContain('db');
  });

  it('lists the breakers and serves one by name', async () => {
    const { app, registry } = setup();
    registry.get('payments/v2');
    const list = await request(app).get('/health/circuit-breakers').expect(200);
    expect((list.body as { name: string }[]).map((b) => b.name)).toEqual([
      'db',
      'search',
      'payments/v2',
    ]);

    const one = await request(app).get('/health/circuit-breakers/db').expect(200);
    expect(one.body).toMatchObject({ name: 'db', state: 'closed' });
    const slashed = await request(app)
      .get(`/health/circuit-breakers/${encodeURIComponent('payments/v2')}`)
      .expect(200);
    expect(slashed.body).toMatchObject({ name: 'payments/v2' });
  });

  it('answers 404 for an unknown or a 10 kB name, and 400 for malformed percent-encoding', async () => {
    const { app } = setup();
    const unknown = await request(app).get('/health/circuit-breakers/nope').expect(404);
    expect(unknown.headers['content-type']).toBe('application/problem+json');
    expect(unknown.body).toMatchObject({ status: 404, title: 'Not Found' });

    const long = await request(app)
      .get(`/health/circuit-breakers/${'x'.repeat(10_000)}`)
      .expect(404);
    expect(long.text.length).toBeLessThan(1_000);

    const malformed = await request(app).get('/health/circuit-breakers/%E0%A4%A').expect(400);
    expect(malformed.body).toMatchObject({ status: 400 });
  });

  it('serves the dashboard with a Content-Security-Policy', async () => {
    const { app } = setup();
    const res = await request(app).get('/health/dashboard').expect(200);
    expect(res.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(res.headers['content-security-policy']).toContain("default-src 'none'");
    expect(res.text).toContain('<html');
  });

  it('leaves the dashboard path to the app when the dashboard is off', async () => {
    const { app } = setup({ dashboard: false });
    await request(app).get('/health/dashboard').expect(404);
  });

  it('has no reset route without admin', async () => {
    const { app, registry } = setup();
    registry.find('db')!.open();
    await request(app).post('/health/circuit-breakers/db/reset').expect(404);
    expect(registry.find('db')!.state).toBe('forced_open');
  });

  it('resets a breaker when authorize allows, 401 / 403 when it refuses', async () => {
    const { app, registry } = setup({
      admin: {
        authorize: (req: Request) => {
          const token = req.get('authorization');
          if (token === undefined) return 'unauthenticated';
          if (token === 'Bearer broken') throw new Error('token service down');
          return token === 'Bearer admin';
        },
      },
    });
    registry.find('db')!.open();

    await request(app).post('/health/circuit-breakers/db/reset').expect(401);
    await request(app)
      .post('/health/circuit-breakers/db/reset')
      .set('Authorization', 'Bearer reader')
      .expect(403);
    const broken = await request(app)
      .post('/health/circuit-breakers/db/reset')
      .set('Authorization', 'Bearer broken')
      .expect(403);
    expect(broken.text).not.toContain('token service down');
    expect(registry.find('db')!.state).toBe('forced_open');

    const res = await request(app)
      .post('/health/circuit-breakers/db/reset')
      .set('Authorization', 'Bearer admin')
      .expect(200);
    expect(res.body).toMatchObject({ name: 'db', state: 'closed' });
    expect(registry.find('db')!.state).toBe('closed');
    await request(app)
      .post('/health/circuit-breakers/unknown/reset')
      .set('Authorization', 'Bearer admin')
      .expect(404);
  });

  it('answers 405 with Allow for a wrong method', async () => {
    const { app } = setup();
    let res = await request(app).post('/health/live').expect(405);
    expect(res.headers.allow).toBe('GET, HEAD');
    res = await request(app).delete('/health').expect(405);
    expect(res.headers.allow).toBe('GET, HEAD');
    res = await request(app).post('/health/circuit-breakers/stream').expect(405);
    expect(res.headers.allow).toBe('GET');
    res = await request(app).put('/health/circuit-breakers/db').expect(405);
    expect(res.headers.allow).toBe('GET, HEAD');
  });

  it('answers HEAD without a body', async () => {
    const { app } = setup();
    const res = await request(app).head('/health/ready').expect(200);
    expect(res.headers['content-type']).toBe(HEALTH_JSON);
    expect(res.text ?? '').toBe('');
  });

  it('passes other paths on to the app', async () => {
    const { app } = setup();
    expect((await request(app).get('/other').expect(200)).text).toBe('other');
    await request(app).get('/healthz').expect(404);
  });

  it('works under a prefix and with another basePath', async () => {
    const registry = new CircuitBreakerRegistry();
    registry.get('db').open();
    const ops = healthRoutes({ registry, critical: ['db'] });
    const status = healthRoutes({ registry, basePath: '/status' });
    cleanups.push(
      () => ops.close(),
      () => status.close(),
    );
    const app = createApp();
    app.use('/ops', ops);
    app.use(status);

    await request(app).get('/ops/health/live').expect(200);
    await request(app).get('/ops/health/ready').expect(503);
    await request(app).get('/ops/health/circuit-breakers/db').expect(200);
    await request(app).get('/health/live').expect(404);
    await request(app).get('/status/live').expect(200);
  });

  it('streams a snapshot, then a state event when a breaker opens, and ends on close()', async () => {
    const { app, registry, health } = setup();
    const { url } = await serve(app);
    const { response } = openRequest(`${url}/health/circuit-breakers/stream`, {
      'Last-Event-ID': 'not-a-number-%%%',
    });
    const res = await response;
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toBe('text/event-stream; charset=utf-8');

    const collected: string[] = [];
    const first = await readUntil(res, (text) => text.includes('\n\n'));
    collected.push(first);
    expect(first).toMatch(/^retry: 5000\nid: \d+\nevent: snapshot\ndata: \[/);
    const snapshot = JSON.parse(/data: (.*)\n/.exec(first)![1]!) as { name: string }[];
    expect(snapshot.map((b) => b.name)).toEqual(['db', 'search']);

    const next = readUntil(res, (text) => text.includes('event: state'));
    registry.find('db')!.open();
    const event = await next;
    const data = JSON.parse(/event: state\ndata: (.*)\n/.exec(event)![1]!) as {
      name: string;
      state: string;
    };
    expect(data).toMatchObject({ name: 'db', state: 'forced_open' });

    const ended = new Promise<void>((resolve) => res.once('end', resolve));
    res.resume();
    health.close();
    await ended;
  });

  it('caps open streams with 503 and frees a slot when a client goes away', async () => {
    const { app } = setup({ stream: { maxClients: 1 } });
    const { url } = await serve(app);

    const first = openRequest(`${url}/health/circuit-breakers/stream`);
    const firstRes = await first.response;
    expect(firstRes.statusCode).toBe(200);
    await readUntil(firstRes, (text) => text.includes('event: snapshot'));

    const refused = await request(url).get('/health/circuit-breakers/stream').expect(503);
    expect(refused.headers['retry-after']).toBe('5');

    firstRes.on('error', () => undefined);
    first.request.destroy();
    // The server notices the disconnect asynchronously; poll a bounded number of times.
    let status = 0;
    for (let attempt = 0; attempt < 50 && status !== 200; attempt++) {
      const again = openRequest(`${url}/health/circuit-breakers/stream`);
      const againRes = await again.response;
      status = againRes.statusCode ?? 0;
      againRes.on('error', () => undefined);
      again.request.destroy();
      if (status !== 200) await new Promise((resolve) => setTimeout(resolve, 10));
    }
    expect(status).toBe(200);
  });

  it('rejects invalid options with a ConfigError naming the option', () => {
    for (const [options, path] of [
      [{ basePath: 'health' }, 'basePath'],
      [{ stream: { maxClients: 0 } }, 'stream.maxClients'],
      [{ admin: { authorize: true } }, 'admin.authorize'],
    ] as const) {
      let caught: unknown;
      try {
        healthRoutes(options as never);
      } catch (error) {
        caught = error;
      }
      expect(isConfigError(caught)).toBe(true);
      expect((caught as { path: string }).path).toBe(path);
    }
  });
});
