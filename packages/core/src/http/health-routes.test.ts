import { afterEach, describe, expect, it, jest } from '@jest/globals';
import { CircuitBreakerRegistry } from '../breaker/registry';
import type { RateLimiterHealth } from '../rate-limit/rate-limiter';
import { HealthRoutes, type HealthRoutesOptions, type SseStream } from './health-routes';
import type { HttpResponse } from './http-response';

function limiter(status: 'pass' | 'warn'): { name: string; health(): RateLimiterHealth } {
  return {
    name: 'api',
    health: () => ({
      name: 'api',
      status,
      store: status === 'pass' ? 'primary' : 'fallback',
      breaker: status === 'pass' ? 'closed' : 'open',
      onStoreFailure: 'fallback',
      local: false,
    }),
  };
}

async function call(
  routes: HealthRoutes<unknown>,
  method: string,
  url: string,
  req: unknown = {},
): Promise<HttpResponse> {
  const result = await routes.handle(method, url, req);
  if (result === undefined || result.kind !== 'response')
    throw new Error(`no response for ${method} ${url}`);
  return result;
}

function setup(options: Partial<HealthRoutesOptions<unknown>> = {}) {
  const registry = new CircuitBreakerRegistry();
  registry.get('plant-id');
  registry.get('GET /users/:id');
  const routes = new HealthRoutes({ registry, ...options });
  return { registry, routes };
}

describe('HealthRoutes', () => {
  let open: HealthRoutes<unknown>[] = [];
  afterEach(() => {
    open.forEach((r) => r.close());
    open = [];
  });

  it('passes on paths it does not serve', () => {
    const { routes } = setup();
    for (const url of ['/', '/healthz', '/health-check', '/api/health', '/health/unknown']) {
      expect(routes.handle('GET', url, {})).toBeUndefined();
    }
  });

  it('live is always 200; ready is 503 only while a critical breaker is open', async () => {
    const { registry, routes } = setup({ critical: ['plant-id'] });
    registry.get('GET /users/:id').open();
    expect((await call(routes, 'GET', '/health/live')).status).toBe(200);
    expect((await call(routes, 'GET', '/health/ready')).status).toBe(200);
    registry.get('plant-id').open();
    const ready = await call(routes, 'GET', '/health/ready?verbose=1');
    expect(ready.status).toBe(503);
    expect(JSON.parse(ready.body)).toEqual({ status: 'fail' });
    expect((await call(routes, 'GET', '/health/live')).status).toBe(200);
  });

  it('reports health+json: pass, warn for a non-critical open breaker or a limiter on fallback, fail (503) for a critical one', async () => {
    const { registry, routes } = setup({
      critical: (name) => name === 'plant-id',
      limiters: [limiter('pass')],
    });
    let response = await call(routes, 'GET', '/health');
    expect(response.status).toBe(200);
    expect(response.headers['content-type']).toBe('application/health+json; charset=utf-8');
    const report = JSON.parse(response.body) as {
      status: string;
      checks: Record<string, unknown[]>;
    };
    expect(report.status).toBe('pass');
    expect(Object.keys(report.checks)).toEqual([
      'plant-id:circuit',
      'GET /users/:id:circuit',
      'api:rate-limit-store',
    ]);
    expect(report.checks['plant-id:circuit']![0]).toMatchObject({
      componentType: 'circuit-breaker',
      status: 'pass',
      observedValue: 'closed',
      critical: true,
    });

    registry.get('GET /users/:id').open();
    response = await call(routes, 'GET', '/health');
    expect([response.status, (JSON.parse(response.body) as { status: string }).status]).toEqual([
      200,
      'warn',
    ]);

    registry.get('plant-id').openFor(5000);
    response = await call(routes, 'GET', '/health');
    expect([response.status, (JSON.parse(response.body) as { status: string }).status]).toEqual([
      503,
      'fail',
    ]);

    const { routes: warnRoutes } = setup({ limiters: [limiter('warn')] });
    const warn = JSON.parse((await call(warnRoutes, 'GET', '/health')).body) as {
      status: string;
      checks: Record<string, { output?: string }[]>;
    };
    expect(warn.status).toBe('warn');
    expect(warn.checks['api:rate-limit-store']![0]!.output).toMatch(/fallback/);
  });

  it('reports load shedders: warn while one sheds requests', async () => {
    let shedding = false;
    const shedder = {
      name: 'web',
      snapshot: () => ({ limit: 20, inFlight: 20, rejected: shedding ? 7 : 0, shedding }),
    };
    const { routes } = setup({ loadShedders: [shedder], dashboard: false });
    open.push(routes);
    const calm = JSON.parse((await call(routes, 'GET', '/health')).body) as {
      status: string;
    };
    expect(calm.status).toBe('pass');
    shedding = true;
    const report = JSON.parse((await call(routes, 'GET', '/health')).body) as {
      status: string;
      checks: Record<string, unknown>;
    };
    expect(report.status).toBe('warn');
    expect(Object.keys(report.checks)).toContain('web:load-shedder');
    expect(() => setup({ loadShedders: [{}] as never })).toThrow(/loadShedders\[0\]/);
  });

  it('lists breakers and finds one by its url-encoded name; 404 and 400 otherwise', async () => {
    const { routes } = setup();
    const list = JSON.parse((await call(routes, 'GET', '/health/circuit-breakers')).body) as {
      name: string;
    }[];
    expect(list.map((b) => b.name)).toEqual(['plant-id', 'GET /users/:id']);
    const one = await call(
      routes,
      'GET',
      `/health/circuit-breakers/${encodeURIComponent('GET /users/:id')}`,
    );
    expect(JSON.parse(one.body)).toMatchObject({ name: 'GET /users/:id', state: 'closed' });
    const unknown = await call(routes, 'GET', '/health/circuit-breakers/..%2F..%2Fetc%2Fpasswd');
    expect(unknown.status).toBe(404);
    expect(unknown.headers['content-type']).toBe('application/problem+json');
    const huge = await call(routes, 'GET', `/health/circuit-breakers/${'x'.repeat(10_000)}`);
    expect(huge.status).toBe(404);
    expect(huge.body.length).toBeLessThan(400);
    expect((await call(routes, 'GET', '/health/circuit-breakers/%E0%A4%A')).status).toBe(400);
  });

  it('answers 405 with Allow for wrong methods, and HEAD without a body', async () => {
    const { routes } = setup();
    const wrong = await call(routes, 'DELETE', '/health');
    expect(wrong.status).toBe(405);
    expect(wrong.headers.allow).toBe('GET, HEAD');
    expect((await call(routes, 'POST', '/health/circuit-breakers/stream')).headers.allow).toBe(
      'GET',
    );
    const head = await call(routes, 'HEAD', '/health/circuit-breakers');
    expect([head.status, head.body]).toEqual([200, '']);
  });

  it('resets a breaker only through an authorize hook: 404 without, 401/403 when refused', async () => {
    const { registry, routes } = setup();
    registry.get('plant-id').open();
    expect((await call(routes, 'POST', '/health/circuit-breakers/plant-id/reset')).status).toBe(
      404,
    );

    const decide = jest.fn<(req: unknown) => boolean | 'unauthenticated'>();
    const admin = setup({ admin: { authorize: decide } });
    admin.registry.get('plant-id').open();
    decide.mockReturnValueOnce('unauthenticated');
    expect(
      (await call(admin.routes, 'POST', '/health/circuit-breakers/plant-id/reset', { user: 'x' }))
        .status,
    ).toBe(401);
    expect(decide).toHaveBeenCalledWith({ user: 'x' });
    decide.mockReturnValueOnce(false);
    expect(
      (await call(admin.routes, 'POST', '/health/circuit-breakers/plant-id/reset')).status,
    ).toBe(403);
    decide.mockImplementationOnce(() => {
      throw new Error('auth backend down');
    });
    const thrown = await call(admin.routes, 'POST', '/health/circuit-breakers/plant-id/reset');
    expect(thrown.status).toBe(403);
    expect(thrown.body).not.toContain('auth backend down');
    expect(admin.registry.get('plant-id').state).toBe('forced_open');
    decide.mockReturnValueOnce(true);
    const done = await call(admin.routes, 'POST', '/health/circuit-breakers/plant-id/reset');
    expect(done.status).toBe(200);
    expect(admin.registry.get('plant-id').state).toBe('closed');
    decide.mockReturnValueOnce(true);
    expect((await call(admin.routes, 'POST', '/health/circuit-breakers/nope/reset')).status).toBe(
      404,
    );
  });

  it('streams a snapshot, then transitions, heartbeats, and stops feeding when the last client leaves', async () => {
    jest.useFakeTimers();
    try {
      const { registry, routes } = setup({
        stream: { heartbeatMs: 2000, maxClients: 2 },
        // The dashboard's sampler is the one timer a HealthRoutes keeps for its lifetime.
        dashboard: false,
      });
      open.push(routes);
      const stream = routes.handle('GET', '/health/circuit-breakers/stream', {}) as SseStream;
      expect(stream.kind).toBe('sse');
      expect(stream.headers['content-type']).toBe('text/event-stream; charset=utf-8');
      const chunks: string[] = [];
      let ended = false;
      const stop = stream.start(
        (c) => chunks.push(c),
        () => (ended = true),
      );
      expect(chunks[0]).toMatch(/^retry: 5000\nid: 0\nevent: snapshot\ndata: \[/);
      registry.get('plant-id').open();
      expect(chunks[1]).toMatch(
        /^id: 1\nevent: state\ndata: \{"name":"plant-id","state":"forced_open"/,
      );
      jest.advanceTimersByTime(2000);
      expect(chunks[2]).toBe(': heartbeat\n\n');

      const second = routes.handle('GET', '/health/circuit-breakers/stream', {}) as SseStream;
      const stopSecond = second.start(
        () => undefined,
        () => undefined,
      );
      const refused = routes.handle('GET', '/health/circuit-breakers/stream', {}) as HttpResponse;
      expect(refused.status).toBe(503);
      stop();
      stopSecond();
      expect(routes.streams).toBe(0);
      expect(jest.getTimerCount()).toBe(0);
      registry.get('plant-id').reset();
      expect(chunks).toHaveLength(3);
      expect(ended).toBe(false);
    } finally {
      jest.useRealTimers();
    }
  });

  it('drops a client whose connection throws on write, and close() ends every stream', () => {
    const { registry, routes } = setup();
    const broken = routes.handle('GET', '/health/circuit-breakers/stream', {}) as SseStream;
    let calls = 0;
    broken.start(
      () => {
        if (++calls > 1) throw new Error('EPIPE');
      },
      () => undefined,
    );
    const healthy = routes.handle('GET', '/health/circuit-breakers/stream', {}) as SseStream;
    let ended = 0;
    healthy.start(
      () => undefined,
      () => ended++,
    );
    registry.get('plant-id').open();
    expect(routes.streams).toBe(1);
    routes.close();
    expect([routes.streams, ended]).toEqual([0, 1]);
  });

  it('serves the dashboard with a content security policy, unless switched off', async () => {
    const { routes } = setup();
    const page = await call(routes, 'GET', '/health/dashboard');
    expect(page.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(page.headers['content-security-policy']).toContain("default-src 'none'");
    expect(
      setup({ dashboard: false }).routes.handle('GET', '/health/dashboard', {}),
    ).toBeUndefined();
  });

  it('serves under another base path', async () => {
    const { routes } = setup({ basePath: '/ops/health' });
    expect((await call(routes, 'GET', '/ops/health/live')).status).toBe(200);
    expect(routes.handle('GET', '/health/live', {})).toBeUndefined();
  });

  it.each([
    [{ basePath: 'health' }, 'basePath'],
    [{ basePath: '/health/' }, 'basePath'],
    [{ registry: {} }, 'registry'],
    [{ limiters: [{}] }, 'limiters[0]'],
    [{ critical: 'plant-id' }, 'critical'],
    [{ admin: { authorize: true } }, 'admin.authorize'],
    [{ stream: { maxClients: 0 } }, 'stream.maxClients'],
    [{ stream: { heartbeatMs: 10 } }, 'stream.heartbeatMs'],
    [{ stream: { heartbeatMs: 2 ** 31 } }, 'stream.heartbeatMs'],
    [{ dashbord: false }, 'dashbord'],
  ])('rejects %j naming %s', (options, path) => {
    let caught: unknown;
    try {
      new HealthRoutes(options as never);
    } catch (error) {
      caught = error;
    }
    expect(caught).toMatchObject({ code: 'EBADCONFIG', path });
  });
});
