import { afterEach, describe, expect, it, jest } from '@jest/globals';
import http, { type IncomingMessage } from 'node:http';
import { CircuitBreakerRegistry } from '@breakwater/core';
import * as expressAdapter from '@breakwater/express';
import * as koaAdapter from '@breakwater/koa';
import { express5, koa3, type Context, type Request } from '../support/frameworks';
import { close, listen, send, sendRaw, type Listening } from '../support/http';

/**
 * Hostile requests against real Express 5 and Koa 3 apps on loopback, each with all three
 * middlewares: odd and oversized breaker names, path traversal, wrong methods, bogus
 * Last-Event-ID, a burst of event streams past the cap, forged X-Forwarded-For, a protected
 * handler whose error carries a secret, and malformed header lines. Every answer must be the
 * right 4xx (or the normal answer), resources must stay bounded, and nothing of a protected
 * call's error may reach a client.
 */

const SECRET = 'db-password=hunter2';
const TOKEN = 'admin-token';
const MAX_STREAMS = 100;

interface Options {
  /** Express `trust proxy` / Koa `app.proxy` (+ `maxIpsCount` for a hop count). */
  trustProxy?: false | true | 1;
}

interface Subject extends Listening {
  registry: CircuitBreakerRegistry;
  health: { close(): void };
}

type Build = (options?: Options) => Promise<Subject>;

function authorize(header: string | undefined): boolean | 'unauthenticated' {
  if (header === undefined || header === '') return 'unauthenticated';
  return header === `Bearer ${TOKEN}`;
}

function makeRegistry(): CircuitBreakerRegistry {
  const registry = new CircuitBreakerRegistry({
    defaults: { failureThreshold: 3, openDurationMs: '1m' },
  });
  registry.get('payments/v2');
  registry.get('💥');
  return registry;
}

const buildExpress: Build = async ({ trustProxy = false } = {}) => {
  const registry = makeRegistry();
  const limit = expressAdapter.rateLimit({ name: 'api', limit: 5, window: '1m' });
  const health = expressAdapter.healthRoutes({
    registry,
    limiters: [limit.limiter],
    critical: ['protected'],
    stream: { maxClients: MAX_STREAMS, heartbeatMs: 1_000 },
    admin: { authorize: (req: Request) => authorize(req.get('authorization')) },
  });
  const app = express5();
  app.set('env', 'production'); // what a deployment runs: no stack traces in error pages
  app.set('trust proxy', trustProxy);
  app.use(health);
  app.use('/api', limit);
  app.get('/api/ok', (_req, res) => {
    res.send('ok');
  });
  app.get('/protected', expressAdapter.circuitBreaker({ registry, name: 'protected' }), () => {
    throw new Error(SECRET);
  });
  app.use('/dyn', expressAdapter.circuitBreaker({ registry, maxRoutes: 20 }), (_req, res) => {
    res.send('dyn');
  });
  const served = await listen((req, res) => {
    app(req, res);
  });
  return { ...served, registry, health };
};

const buildKoa: Build = async ({ trustProxy = false } = {}) => {
  const registry = makeRegistry();
  const limit = koaAdapter.rateLimit({ name: 'api', limit: 5, window: '1m' });
  const health = koaAdapter.healthRoutes({
    registry,
    limiters: [limit.limiter],
    critical: ['protected'],
    stream: { maxClients: MAX_STREAMS, heartbeatMs: 1_000 },
    admin: { authorize: (ctx: Context) => authorize(ctx.get('authorization')) },
  });
  const protect = koaAdapter.circuitBreaker({ registry, name: 'protected' });
  const dynamic = koaAdapter.circuitBreaker({ registry, maxRoutes: 20 });
  const app = koa3();
  app.proxy = trustProxy !== false;
  if (trustProxy === 1) app.maxIpsCount = 1;
  app.use(health);
  app.use(async (ctx, next) => {
    if (ctx.path.startsWith('/api/')) await limit(ctx, next);
    else await next();
  });
  app.use(async (ctx, next) => {
    if (ctx.path === '/protected') {
      await protect(ctx, () => {
        throw new Error(SECRET);
      });
    } else if (ctx.path.startsWith('/dyn/')) {
      await dynamic(ctx, () => {
        ctx.body = 'dyn';
        return Promise.resolve();
      });
    } else await next();
  });
  app.use((ctx) => {
    if (ctx.path === '/api/ok') ctx.body = 'ok';
  });
  const handle = app.callback();
  const served = await listen((req, res) => void handle(req, res));
  return { ...served, registry, health };
};

/** Sockets and servers alive in this process. */
function openHandles(): number {
  return process
    .getActiveResourcesInfo()
    .filter((r) => r === 'TCPSocketWrap' || r === 'TCPServerWrap').length;
}

async function settle(check: () => boolean, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (!check() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  return check();
}

interface OpenStream {
  request: http.ClientRequest;
  response: IncomingMessage;
  text: () => string;
  ended: Promise<void>;
}

/** Opens an event stream and resolves when its headers (and, for a 200, the snapshot) arrived. */
function openStream(url: string, headers: Record<string, string> = {}): Promise<OpenStream> {
  return new Promise((resolve, reject) => {
    const request = http.get(`${url}/health/circuit-breakers/stream`, { headers, agent: false });
    const timer = setTimeout(() => {
      request.destroy();
      reject(new Error('no stream answer in 10 s'));
    }, 10_000);
    request.once('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    request.once('response', (response) => {
      let text = '';
      const ended = new Promise<void>((done) => {
        response.once('end', done);
        response.once('close', done);
      });
      response.setEncoding('utf8');
      const opened: OpenStream = { request, response, text: () => text, ended };
      response.on('data', (chunk: string) => {
        text += chunk;
        if (response.statusCode === 200 && text.includes('event: snapshot')) {
          clearTimeout(timer);
          resolve(opened);
        }
      });
      if (response.statusCode !== 200) {
        response.once('end', () => {
          clearTimeout(timer);
          resolve(opened);
        });
      }
    });
  });
}

describe.each<[string, Build]>([
  ['Express 5', buildExpress],
  ['Koa 3', buildKoa],
])('hostile input on %s', (_label, build) => {
  const cleanups: (() => Promise<void> | void)[] = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  async function start(options?: Options): Promise<Subject> {
    const subject = await build(options);
    cleanups.push(() => close(subject.server));
    cleanups.push(() => subject.health.close());
    return subject;
  }

  it('answers odd and oversized breaker names with 400/404/431, bodies bounded', async () => {
    const { url, port } = await start();
    const cases: [string, number][] = [
      ['does-not-exist', 404],
      ['a'.repeat(10_000), 404],
      ['%FF', 400],
      ['%E0%A4%A', 400],
      ['%', 400],
      ['%00', 404],
      [encodeURIComponent('<script>alert(1)</script>'), 404],
      ['%F0%9F%92%A5', 200], // the breaker named 💥
      ['payments%2Fv2', 200],
      ['payments/v2', 200], // a raw slash is taken as part of the name too
      [encodeURIComponent('"quoted" \\ back'), 404],
    ];
    for (const [name, status] of cases) {
      const reply = await send(`${url}/health/circuit-breakers/${name}`);
      expect([name.slice(0, 20), reply.status]).toEqual([name.slice(0, 20), status]);
      expect(reply.body.length).toBeLessThan(2_000);
      expect(() => JSON.parse(reply.body) as unknown).not.toThrow();
      if (status !== 200) {
        expect(reply.headers['content-type']).toContain('application/problem+json');
        expect(reply.body).not.toMatch(/at .*\.(ts|js):\d+/); // no stack
      }
    }
    // Past Node's 16 KB header limit the request is refused before any middleware runs.
    const huge = await sendRaw(
      port,
      `GET /health/circuit-breakers/${'a'.repeat(100_000)} HTTP/1.1\r\nHost: x\r\n\r\n`,
    );
    expect(huge.status).toBe(431);
  });

  it('serves nothing outside its routes for path traversal attempts', async () => {
    const { port } = await start();
    const targets = [
      '/health/../health/live',
      '/health/%2e%2e/%2e%2e/etc/passwd',
      '/health/circuit-breakers/..%2f..%2f..%2fetc%2fpasswd',
      '/health/dashboard/../../../../etc/passwd',
      '/health/circuit-breakers/stream/../../../etc/passwd',
      '/health/live/..%5c..%5cwindows%5cwin.ini',
      '/health//live',
      '/health/live%00.html',
    ];
    for (const target of targets) {
      // Raw requests: an HTTP client would normalise the dots away.
      const reply = await sendRaw(
        port,
        `GET ${target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`,
      );
      expect([target, reply.status >= 400 && reply.status < 500]).toEqual([target, true]);
      expect(reply.text).not.toContain('root:');
      expect(reply.text).not.toContain('[fonts]');
    }
  });

  it('answers wrong methods with 405 and Allow, resets only for the authorised', async () => {
    const { url } = await start();
    const cases: [string, string, number, string | undefined][] = [
      ['POST', '/health/live', 405, 'GET, HEAD'],
      ['DELETE', '/health', 405, 'GET, HEAD'],
      ['PUT', '/health/ready', 405, 'GET, HEAD'],
      ['OPTIONS', '/health/circuit-breakers', 405, 'GET, HEAD'],
      ['PATCH', '/health/circuit-breakers/payments%2Fv2', 405, 'GET, HEAD'],
      ['HEAD', '/health/circuit-breakers/stream', 405, 'GET'],
      ['POST', '/health/circuit-breakers/stream', 405, 'GET'],
      ['POST', '/health/dashboard', 405, 'GET, HEAD'],
      ['GET', '/health/circuit-breakers/payments%2Fv2/reset', 404, undefined],
    ];
    for (const [method, path, status, allow] of cases) {
      const reply = await send(`${url}${path}`, { method });
      expect([method, path, reply.status]).toEqual([method, path, status]);
      if (allow !== undefined) expect(reply.headers.allow).toBe(allow);
    }
    const reset = `${url}/health/circuit-breakers/payments%2Fv2/reset`;
    expect((await send(reset, { method: 'POST' })).status).toBe(401);
    const forbidden = await send(reset, { method: 'POST', headers: { authorization: 'Bearer x' } });
    expect(forbidden.status).toBe(403);
    const other = await send(reset, {
      method: 'POST',
      headers: { authorization: `Bearer ${TOKEN}x` },
    });
    expect(other.status).toBe(403);
    const allowed = await send(reset, {
      method: 'POST',
      headers: { authorization: `Bearer ${TOKEN}` },
    });
    expect(allowed.status).toBe(200);
  });

  it('opens the event stream whatever Last-Event-ID says', async () => {
    const { url } = await start();
    for (const id of ['-1', '99999999999999999999999999', 'abc', 'x'.repeat(4_000), ' ', '1e309']) {
      const stream = await openStream(url, { 'last-event-id': id });
      expect(stream.response.statusCode).toBe(200);
      expect(stream.response.headers['content-type']).toContain('text/event-stream');
      expect(stream.text()).toMatch(/^retry: \d+\nid: \d+\nevent: snapshot\ndata: \[/);
      stream.request.destroy();
    }
  });

  it(`caps 300 simultaneous event streams at ${MAX_STREAMS}: the rest get 503, all close cleanly, no socket leaks`, async () => {
    const handlesBefore = openHandles();
    const subject = await build();
    const streams = await Promise.all(Array.from({ length: 300 }, () => openStream(subject.url)));
    const open = streams.filter((s) => s.response.statusCode === 200);
    const refused = streams.filter((s) => s.response.statusCode === 503);
    expect(open).toHaveLength(MAX_STREAMS);
    expect(refused).toHaveLength(300 - MAX_STREAMS);
    for (const stream of refused) {
      expect(stream.response.headers['retry-after']).toBe('5');
      expect(JSON.parse(stream.text())).toMatchObject({ status: 503 });
    }

    // Clients that leave free their slot: after they go, as many new streams are admitted.
    for (const stream of open.slice(0, 50)) stream.request.destroy();
    await Promise.all(open.slice(0, 50).map((s) => s.ended));
    const again: OpenStream[] = [];
    const deadline = Date.now() + 5_000;
    while (again.length < 50 && Date.now() < deadline) {
      const next = await openStream(subject.url);
      if (next.response.statusCode === 200) again.push(next);
      else await new Promise((r) => setTimeout(r, 20));
    }
    expect(again).toHaveLength(50);
    const overCap = await openStream(subject.url);
    expect(overCap.response.statusCode).toBe(503);

    // Shutdown: close() ends every open stream, then the server closes with nothing left over.
    const stillOpen = [...open.slice(50), ...again];
    subject.health.close();
    await Promise.all(stillOpen.map((s) => s.ended));
    for (const stream of stillOpen) expect(stream.response.complete).toBe(true);
    await new Promise<void>((resolve) => subject.server.close(() => resolve()));
    expect(await settle(() => openHandles() <= handlesBefore, 5_000)).toBe(true);
  }, 60_000);

  it('keys rate limits on the socket address while trust proxy is off, whatever X-Forwarded-For says', async () => {
    const { url } = await start({ trustProxy: false });
    const statuses: number[] = [];
    for (let i = 0; i < 8; i++) {
      const reply = await send(`${url}/api/ok`, {
        headers: { 'x-forwarded-for': `203.0.113.${i}` },
      });
      statuses.push(reply.status);
    }
    expect(statuses).toEqual([200, 200, 200, 200, 200, 429, 429, 429]);
  });

  it('keys on the forwarded address with trust proxy on, and survives malformed headers', async () => {
    const { url } = await start({ trustProxy: true });
    for (let i = 0; i < 8; i++) {
      const reply = await send(`${url}/api/ok`, {
        headers: { 'x-forwarded-for': `198.51.100.${i}` },
      });
      expect(reply.status).toBe(200); // each forged address has its own quota
    }
    const malformed = [
      '',
      'not-an-ip',
      '1.2.3.4, , ,',
      ',,,',
      'x'.repeat(8_000),
      '::ffff:1.2.3.4',
      '[::1]:80',
      '999.999.999.999',
      'unknown',
    ];
    for (const value of malformed) {
      const reply = await send(`${url}/api/ok`, { headers: { 'x-forwarded-for': value } });
      expect([value.slice(0, 20), reply.status === 200 || reply.status === 429]).toEqual([
        value.slice(0, 20),
        true,
      ]);
    }
  });

  it('with one trusted hop, keys on the address the proxy saw, not on what the client forged', async () => {
    const { url } = await start({ trustProxy: 1 });
    const statuses: number[] = [];
    for (let i = 0; i < 7; i++) {
      const reply = await send(`${url}/api/ok`, {
        headers: { 'x-forwarded-for': `10.${i}.0.1, 192.0.2.44` },
      });
      statuses.push(reply.status);
    }
    expect(statuses).toEqual([200, 200, 200, 200, 200, 429, 429]);
  });

  it('never shows a protected call’s error: not in the 500, the 503, health or the stream', async () => {
    // Express logs a handler's error to the console (server side): keep it out of the test output.
    const logged = jest.spyOn(console, 'error').mockImplementation(() => undefined);
    cleanups.push(() => logged.mockRestore());
    const { url } = await start();
    const stream = await openStream(url);
    const bodies: string[] = [];
    const statuses: number[] = [];
    for (let i = 0; i < 5; i++) {
      const reply = await send(`${url}/protected`);
      statuses.push(reply.status);
      bodies.push(reply.body);
    }
    expect(statuses).toEqual([500, 500, 500, 503, 503]);
    expect(JSON.parse(bodies[4]!)).toMatchObject({ status: 503, breaker: 'protected' });
    for (const path of [
      '/health',
      '/health/ready',
      '/health/circuit-breakers',
      '/health/circuit-breakers/protected',
      '/health/dashboard',
    ]) {
      bodies.push((await send(`${url}${path}`)).body);
    }
    expect(await settle(() => stream.text().includes('"state":"open"'), 5_000)).toBe(true);
    bodies.push(stream.text());
    stream.request.destroy();
    for (const body of bodies) {
      expect(body).not.toContain(SECRET);
      expect(body).not.toContain('hunter2');
      expect(body).not.toMatch(/Error: |at .*\.(ts|js):\d+/);
    }
  });

  it('refuses header lines with CR/LF tricks, smuggling and junk with 400, and keeps serving', async () => {
    const { port, url } = await start();
    const requests = [
      'GET /health/live HTTP/1.1\r\nHost: x\r\nX-Evil\r\nInjected: yes\r\n\r\n',
      'GET /health/live HTTP/1.1\r\nHost: x\r\nBad Header: 1\r\n\r\n',
      'GET /health/live HTTP/1.1\r\nHost: x\r\nX-A: a\rInjected: b\r\n\r\n',
      'GET /health/live HTTP/1.1\r\nHost: x\r\nX-A: a\nInjected: b\r\n\r\n',
      'GET /health/live HTTP/1.1\r\nHost: x\r\nX-\r\nA: b\r\n\r\n',
      'GET /health/live HTTP/1.1\r\nHost: x\r\nX-A: a\r\n folded\r\n\r\n',
      'GET /health/live HTTP/1.1\r\nHost: x\r\nLast-Event-ID: \x00\r\n\r\n',
      'POST /health/live HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
      'BREW /health/live HTTP/1.1\r\nHost: x\r\n\r\n',
      'GET /health/live HTTP/1.1\r\n\r\n',
    ];
    for (const bytes of requests) {
      const reply = await sendRaw(port, bytes);
      expect([JSON.stringify(bytes.slice(0, 60)), reply.status]).toEqual([
        JSON.stringify(bytes.slice(0, 60)),
        400,
      ]);
    }
    expect((await send(`${url}/health/live`)).status).toBe(200);
  });

  it('names per-path breakers after hostile paths without breaking health or the bound', async () => {
    const { port, url, registry } = await start();
    for (let i = 0; i < 60; i++) {
      const path = `/dyn/<script>alert(${i})</script>/%0d%0aSet-Cookie:x=${i}`;
      const reply = await sendRaw(
        port,
        `GET ${path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`,
      );
      expect(reply.status).toBe(200);
      expect(reply.text).not.toMatch(/\r\nSet-Cookie:/i);
    }
    // 20 per-route breakers at most, plus the overflow one ('GET *') and the registry's own.
    expect(registry.size).toBeLessThanOrEqual(20 + 1 + 3);
    const list = await send(`${url}/health/circuit-breakers`);
    expect(list.status).toBe(200);
    const page = await send(`${url}/health/dashboard`);
    expect(page.body).not.toContain('<script>alert(');
  });
});
