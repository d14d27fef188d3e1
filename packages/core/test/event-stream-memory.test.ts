import { createServer, type Server } from 'node:http';
import { connect, type AddressInfo, type Socket } from 'node:net';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { afterAll, beforeAll, expect, it } from '@jest/globals';
import { CircuitBreakerRegistry, HealthRoutes } from '../src/index';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

const CLIENTS = 100;
const TRANSITIONS = 100_000;

let server: Server;
let routes: HealthRoutes<unknown>;
const registry = new CircuitBreakerRegistry();
const sockets: Socket[] = [];

beforeAll(async () => {
  routes = new HealthRoutes({ registry, stream: { maxClients: CLIENTS } });
  // The same glue as the adapters: write returns what res.write() returns.
  server = createServer((req, res) => {
    const result = routes.handle(req.method ?? 'GET', req.url ?? '/', req);
    if (result === undefined || !('kind' in result) || result.kind !== 'sse') {
      res.statusCode = 404;
      res.end();
      return;
    }
    res.writeHead(result.status, result.headers);
    const stop = result.start(
      (chunk) => res.write(chunk),
      () => res.end(),
    );
    res.on('close', stop);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
});

afterAll(async () => {
  for (const socket of sockets) socket.destroy();
  routes.close();
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

function usedBytes(): number {
  gc();
  const m = process.memoryUsage();
  return m.heapUsed + m.external + m.arrayBuffers;
}

it(`keeps memory flat with ${CLIENTS} clients that never read, over ${TRANSITIONS} transitions`, async () => {
  const { port } = server.address() as AddressInfo;
  for (let i = 0; i < CLIENTS; i++) {
    const socket = connect(port, '127.0.0.1');
    socket.on('error', () => undefined);
    await new Promise<void>((resolve) => socket.once('connect', resolve));
    socket.write('GET /health/circuit-breakers/stream HTTP/1.1\r\nHost: x\r\n\r\n');
    socket.pause(); // never reads: whatever the server sends stays in the kernel, then in Node
    sockets.push(socket);
  }
  while (routes.streams < CLIENTS) await new Promise((resolve) => setImmediate(resolve));

  const breaker = registry.get('plant-id');
  const before = usedBytes();
  for (let i = 0; i < TRANSITIONS; i++) {
    if (i % 2 === 0) breaker.open();
    else breaker.reset();
    // Let the sockets flush now and then, as a live server would between events.
    if (i % 1000 === 999) await new Promise((resolve) => setImmediate(resolve));
  }
  const grown = usedBytes() - before;

  // Unbounded, each client would hold ~35 MB of events (3.5 GB in all).
  expect(routes.streams).toBe(0);
  expect(grown).toBeLessThan(32 * 2 ** 20);
}, 120_000);
