import { connect, type Socket } from 'node:net';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { afterEach, describe, expect, it } from '@jest/globals';
import request from 'supertest';
import { CircuitBreakerRegistry } from '@breakwater/core';
import { healthRoutes } from '../src';
import { expressVersions, listen, close } from './helpers';

// Hooks of the health routes that throw or reject, through real Express apps: never a 500, never
// the hook's message, the error on the logger.

describe.each(expressVersions)('healthRoutes hooks on %s', (_label, _major, createApp) => {
  const closers: (() => void)[] = [];
  afterEach(() => {
    for (const close of closers.splice(0)) close();
  });

  function setup(options: Parameters<typeof healthRoutes>[0]) {
    const lines: string[] = [];
    const logger = {
      info: (m: string) => lines.push(m),
      warn: (m: string) => lines.push(m),
      error: (m: string) => lines.push(m),
    };
    const registry = new CircuitBreakerRegistry();
    registry.get('db').open();
    const health = healthRoutes({ registry, logger, ...options });
    closers.push(() => health.close());
    const app = createApp();
    app.use(health);
    return { app, lines, registry };
  }

  it('a throwing critical() answers 503 (the breaker counts as critical) without its message', async () => {
    const { app, lines } = setup({
      critical: () => {
        throw new Error('secret-in-critical');
      },
    });
    for (const path of ['/health', '/health/ready']) {
      const res = await request(app).get(path);
      expect(res.status).toBe(503);
      expect(res.text).not.toContain('secret');
    }
    expect(lines[0]).toBe('[HEALTH] critical hook failed: Error: secret-in-critical');
  });

  it.each([
    [
      'throws',
      () => {
        throw new Error('secret-in-authorize');
      },
    ],
    ['rejects', () => Promise.reject(new Error('secret-in-authorize'))],
  ])('an authorize() that %s refuses with 403 and logs', async (_, authorize) => {
    const { app, lines, registry } = setup({ admin: { authorize } });
    const res = await request(app).post('/health/circuit-breakers/db/reset');
    expect(res.status).toBe(403);
    expect(res.text).not.toContain('secret');
    expect(registry.get('db').state).toBe('forced_open');
    expect(lines).toEqual(['[HEALTH] admin.authorize hook failed: Error: secret-in-authorize']);
  });
});

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;
const CLIENTS = 100;
const TRANSITIONS = 100_000;

function usedBytes(): number {
  gc();
  const m = process.memoryUsage();
  return m.heapUsed + m.external + m.arrayBuffers;
}

describe.each(expressVersions)('healthRoutes event streams on %s', (_label, _major, createApp) => {
  it(`keeps memory flat with ${CLIENTS} clients that never read, over ${TRANSITIONS} transitions`, async () => {
    const registry = new CircuitBreakerRegistry();
    const health = healthRoutes({ registry, stream: { maxClients: CLIENTS } });
    const app = createApp();
    app.use(health);
    const served = await listen(app);
    const sockets: Socket[] = [];
    try {
      const port = Number(new URL(served.url).port);
      for (let i = 0; i < CLIENTS; i++) {
        const socket = connect(port, '127.0.0.1');
        socket.on('error', () => undefined);
        await new Promise<void>((resolve) => socket.once('connect', resolve));
        socket.write('GET /health/circuit-breakers/stream HTTP/1.1\r\nHost: x\r\n\r\n');
        // Read until the stream has started, then never again.
        await new Promise((resolve) => socket.once('data', resolve));
        socket.pause();
        sockets.push(socket);
      }
      const breaker = registry.get('plant-id');
      const before = usedBytes();
      for (let i = 0; i < TRANSITIONS; i++) {
        if (i % 2 === 0) breaker.open();
        else breaker.reset();
        if (i % 1000 === 999) await new Promise((resolve) => setImmediate(resolve));
      }
      const grown = usedBytes() - before;
      // Unbounded, each client would hold ~35 MB of events (3.5 GB in all).
      expect(grown).toBeLessThan(32 * 2 ** 20);
    } finally {
      for (const socket of sockets) socket.destroy();
      health.close();
      await close(served.server);
    }
  }, 120_000);
});
