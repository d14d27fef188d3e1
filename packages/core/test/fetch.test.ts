import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import {
  CircuitBreakerRegistry,
  constant,
  createFetch,
  isCircuitOpenError,
  isTimeoutError,
} from '@breakwater/core';

/** A loopback HTTP server that counts requests per path and tracks its open sockets. */
interface TestServer {
  server: Server;
  origin: string;
  hits: Map<string, number>;
  sockets: Set<Socket>;
  connections: number;
}

async function startServer(
  handler: (req: IncomingMessage, res: ServerResponse, hits: number) => void,
): Promise<TestServer> {
  const hits = new Map<string, number>();
  const sockets = new Set<Socket>();
  const state = { connections: 0 };
  const server = createServer((req, res) => {
    const key = `${req.method} ${req.url}`;
    const n = (hits.get(key) ?? 0) + 1;
    hits.set(key, n);
    handler(req, res, n);
  });
  server.on('connection', (socket: Socket) => {
    state.connections++;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    server,
    origin: `http://127.0.0.1:${port}`,
    hits,
    sockets,
    get connections() {
      return state.connections;
    },
  };
}

async function stopServer(s: TestServer | undefined): Promise<void> {
  if (s === undefined) return;
  s.server.closeAllConnections();
  await new Promise<void>((resolve) => s.server.close(() => resolve()));
}

/** Polls `condition` (these tests talk to real sockets) until it holds or `ms` pass. */
async function eventually(condition: () => boolean, ms = 3_000): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  return true;
}

let api: TestServer | undefined;
let other: TestServer | undefined;
let hanging: TestServer | undefined;
let refusedOrigin = '';
let openResponses = 0;

beforeAll(async () => {
  api = await startServer((req, res, n) => {
    const url = new URL(req.url ?? '/', 'http://x');
    const status = Number(url.searchParams.get('status') ?? 200);
    const failFirst = Number(url.searchParams.get('fail') ?? 0);
    const retryAfter = url.searchParams.get('retryAfter');
    if (url.pathname === '/slow') {
      const timer = setTimeout(() => res.end('late'), 5_000);
      res.on('close', () => clearTimeout(timer));
      return;
    }
    if (url.pathname === '/flaky') {
      res.statusCode = n <= failFirst ? 503 : 200;
      res.end(`attempt ${n}`);
      return;
    }
    res.statusCode = status;
    if (retryAfter !== null) res.setHeader('Retry-After', retryAfter);
    res.end(`status ${status}`);
  });
  other = await startServer((_req, res) => res.end('other'));
  // Failing responses whose bodies never end: the response only closes if the client cancels.
  hanging = await startServer((_req, res) => {
    openResponses++;
    res.on('close', () => openResponses--);
    res.writeHead(500, { 'content-type': 'text/plain' });
    res.write('x'.repeat(64 * 1024));
  });
  const closed = await startServer(() => undefined);
  refusedOrigin = closed.origin;
  await stopServer(closed);
});

afterAll(async () => {
  await Promise.all([stopServer(api), stopServer(other), stopServer(hanging)]);
});

describe('createFetch against real HTTP servers', () => {
  it('returns responses, and 5xx responses too, until the origin circuit opens', async () => {
    const registry = new CircuitBreakerRegistry({ defaults: { failureThreshold: 2 } });
    const fetch = createFetch({ registry });
    const okResponse = await fetch(`${api!.origin}/ok`);
    expect(await okResponse.text()).toBe('status 200');
    const failed = await fetch(`${api!.origin}/a?status=500`);
    expect(failed.status).toBe(500);
    expect(await failed.text()).toBe('status 500');
    await (await fetch(`${api!.origin}/b?status=502`)).text();
    const rejected = await fetch(`${api!.origin}/c`).catch((e: unknown) => e);
    expect(isCircuitOpenError(rejected)).toBe(true);
    expect(api!.hits.get('GET /c')).toBeUndefined();
    // Another origin has its own circuit.
    expect(await (await fetch(`${other!.origin}/`)).text()).toBe('other');
  });

  it('opens the origin circuit for the Retry-After of a 503', async () => {
    const registry = new CircuitBreakerRegistry({ defaults: { failureThreshold: 100 } });
    const fetch = createFetch({ registry, retry: { backoff: constant(0) } });
    const response = await fetch(`${api!.origin}/busy?status=503&retryAfter=2`);
    expect(response.status).toBe(503);
    await response.text();
    expect(api!.hits.get('GET /busy?status=503&retryAfter=2')).toBe(1);
    const breaker = registry.get(api!.origin);
    expect(breaker.state).toBe('open');
    expect(breaker.retryAfterMs).toBeGreaterThan(1_000);
    expect(breaker.retryAfterMs).toBeLessThanOrEqual(2_000);
    const error = await fetch(`${api!.origin}/ok`).catch((e: unknown) => e);
    expect(isCircuitOpenError(error)).toBe(true);
  });

  it('retries an idempotent request until it succeeds, but not a POST', async () => {
    const registry = new CircuitBreakerRegistry({ defaults: { failureThreshold: 10 } });
    const fetch = createFetch({ registry, retry: { maxAttempts: 3, backoff: constant(0) } });
    const response = await fetch(`${api!.origin}/flaky?fail=2&k=get`);
    expect(response.status).toBe(200);
    expect(await response.text()).toBe('attempt 3');
    const post = await fetch(`${api!.origin}/flaky?fail=2&k=post`, { method: 'POST', body: 'x' });
    expect(post.status).toBe(503);
    await post.text();
    expect(api!.hits.get('POST /flaky?fail=2&k=post')).toBe(1);
  });

  it('times out a slow attempt and counts it against the origin', async () => {
    const registry = new CircuitBreakerRegistry({ defaults: { failureThreshold: 1 } });
    const fetch = createFetch({ registry, timeoutMs: 100 });
    const error = await fetch(`${api!.origin}/slow`).catch((e: unknown) => e);
    expect(isTimeoutError(error)).toBe(true);
    expect(registry.get(api!.origin).state).toBe('open');
  });

  it('counts a refused connection as a failure and rethrows the network error', async () => {
    const registry = new CircuitBreakerRegistry({ defaults: { failureThreshold: 1 } });
    const fetch = createFetch({ registry });
    const error = await fetch(`${refusedOrigin}/`).catch((e: unknown) => e);
    expect(error).toMatchObject({ name: 'TypeError', message: 'fetch failed' });
    expect(registry.get(refusedOrigin).state).toBe('open');
  });

  it('cancels the bodies of retried failures so their sockets are released', async () => {
    const registry = new CircuitBreakerRegistry({ defaults: { failureThreshold: 10 } });
    const fetch = createFetch({ registry, retry: { maxAttempts: 3, backoff: constant(0) } });
    const response = await fetch(`${hanging!.origin}/`);
    expect(response.status).toBe(500);
    expect(hanging!.hits.get('GET /')).toBe(3);
    // The two retried attempts were cancelled: only the returned response is still open.
    expect(await eventually(() => openResponses === 1)).toBe(true);
    await response.body?.cancel();
    expect(await eventually(() => openResponses === 0)).toBe(true);
  });
});
