import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { CircuitBreaker, isCircuitOpenError } from '@breakwater/core';
import { Redis } from 'ioredis';
import { freePort, startRedisServer, type RedisServerHandle } from '../../../test/redis-server';
import { RedisBreakerStore, createRedisClient, isRedisReplyError } from '../src';
import { redisUrl, skipReason, sleep, whenReady } from './helpers';

/*
 * Degraded mode, fault by fault. Four breakers of one name share a circuit through four stores
 * (each with its own connections, as four processes would have) on a private redis-server; the
 * fault is applied, then each breaker calls a failing dependency. In every case: each circuit
 * opens by its own rules (the store's answer is not awaited past its bound), no call waits on
 * Redis, nothing rejects unhandled, and after recovery the four follow one circuit again.
 *
 * One process with four stores rather than four processes: the fault is on the server, and each
 * store has connections of its own, so what a process would see is what a store sees.
 */

const describeRedis = redisUrl ? describe : describe.skip;
const COMMAND_TIMEOUT_MS = 150;
const CLAIM_TIMEOUT_MS = 60;
const FAILURE_THRESHOLD = 5;
/** How long the dependency takes to fail: calls that reach it while the store decides. */
const DEPENDENCY_MS = 5;
/** A call never waits on Redis longer than a probe claim; anything above this is a hang. */
const CALL_BOUND_MS = CLAIM_TIMEOUT_MS + 100;
const STORES = 4;

let unhandled = 0;
const onUnhandled = (): void => {
  unhandled++;
};

interface Fleet {
  clients: Redis[];
  stores: RedisBreakerStore[];
  breakers: CircuitBreaker[];
  errors: unknown[];
}

let seq = 0;

/** Four stores on `url` (each with its own client), and a breaker called `name` in each. */
async function fleet(url: string, options: { username?: string; password?: string } = {}) {
  const name = `fault-${seq++}`;
  const result: Fleet = { clients: [], stores: [], breakers: [], errors: [] };
  for (let i = 0; i < STORES; i++) {
    const client = createRedisClient(url, { ...options, retryStrategy: () => 50 });
    client.on('error', () => {});
    await whenReady(client);
    const store = new RedisBreakerStore({
      client,
      flushIntervalMs: 50,
      commandTimeoutMs: COMMAND_TIMEOUT_MS,
      claimTimeoutMs: CLAIM_TIMEOUT_MS,
      onError: (error) => result.errors.push(error),
    });
    for (let t = 0; t < 200 && !store.available; t++) await sleep(10);
    expect(store.available).toBe(true);
    result.clients.push(client);
    result.stores.push(store);
    result.breakers.push(
      new CircuitBreaker({
        name,
        store,
        failureThreshold: FAILURE_THRESHOLD,
        openDurationMs: 300,
      }),
    );
  }
  await sleep(20);
  return result;
}

async function dispose(f: Fleet): Promise<void> {
  await Promise.all(f.stores.map((s) => s.close()));
  for (const client of f.clients) client.disconnect();
}

const failing = async (): Promise<never> => {
  await sleep(DEPENDENCY_MS);
  throw new Error('dependency down');
};

/**
 * Each breaker calls the failing dependency until its circuit rejects (at most `maxMs`);
 * answers how many calls reached the dependency and the longest time a call spent in the breaker
 * beyond the dependency's own time.
 */
async function failUntilOpen(breakers: CircuitBreaker[], maxMs = 3_000) {
  return Promise.all(
    breakers.map(async (breaker) => {
      let reached = 0;
      let worstWaitMs = 0;
      const deadline = performance.now() + maxMs;
      while (performance.now() < deadline) {
        const started = performance.now();
        let ran = false;
        try {
          await breaker.execute(() => {
            ran = true;
            reached++;
            return failing();
          });
        } catch (error) {
          const waited = performance.now() - started - (ran ? DEPENDENCY_MS : 0);
          worstWaitMs = Math.max(worstWaitMs, waited);
          if (isCircuitOpenError(error)) return { reached, worstWaitMs, opened: true };
        }
      }
      return { reached, worstWaitMs, opened: false };
    }),
  );
}

/** Every breaker opened within its local rules, without waiting on Redis. */
function expectOpenedLocally(results: Awaited<ReturnType<typeof failUntilOpen>>): void {
  for (const r of results) {
    expect(r.opened).toBe(true);
    // Calls that reached the dependency: the threshold, plus those made while the trip waited
    // for the store (a quarter of commandTimeoutMs), plus the one that trips.
    expect(r.reached).toBeLessThanOrEqual(
      FAILURE_THRESHOLD + Math.ceil(COMMAND_TIMEOUT_MS / 4 / DEPENDENCY_MS) + 2,
    );
    expect(r.worstWaitMs).toBeLessThan(CALL_BOUND_MS);
  }
}

/** After recovery: a reset anywhere closes all four, and a trip anywhere opens all four. */
async function expectSharedAgain(f: Fleet): Promise<void> {
  await until(() => f.stores.every((s) => s.available), 'every store available');
  // Give every link a probe interval to find the store again.
  await sleep(200);
  f.breakers[0]!.reset();
  await until(() => f.breakers.every((b) => b.state === 'closed'), 'all closed');
  f.breakers[1]!.open();
  await until(
    () => f.breakers.every((b) => b.state === 'forced_open'),
    'all four to follow an operator action (shared again)',
  );
}

async function until(check: () => boolean, what: string, timeoutMs = 3_000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!check()) {
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

describeRedis(`Shared breakers under every Redis fault${skipReason}`, () => {
  let server: RedisServerHandle | undefined;
  let admin: Redis | undefined;
  let current: Fleet | undefined;

  beforeAll(() => {
    process.on('unhandledRejection', onUnhandled);
  });

  afterAll(() => {
    process.off('unhandledRejection', onUnhandled);
  });

  afterEach(async () => {
    server?.signal('SIGCONT');
    if (current !== undefined) await dispose(current);
    admin?.disconnect();
    await server?.stop();
    current = undefined;
    admin = undefined;
    server = undefined;
    expect(unhandled).toBe(0);
  });

  async function start(extraArgs: string[] = []): Promise<{ url: string; admin: Redis }> {
    server = await startRedisServer(undefined, extraArgs);
    admin = new Redis(server.url, { maxRetriesPerRequest: 0 });
    admin.on('error', () => {});
    await whenReady(admin);
    return { url: server.url, admin };
  }

  it('SIGSTOP: opens locally, probes settle locally, close() is bounded; SIGCONT resyncs', async () => {
    const { url } = await start();
    const f = (current = await fleet(url));
    server!.signal('SIGSTOP');
    expectOpenedLocally(await failUntilOpen(f.breakers));
    // Half-open while Redis is frozen: the claim gives up after its bound, the probe runs and
    // settles locally, and its success closes the circuit.
    await sleep(350);
    for (const breaker of f.breakers) {
      const started = performance.now();
      await expect(breaker.execute(() => Promise.resolve('ok'))).resolves.toBe('ok');
      expect(performance.now() - started).toBeLessThan(CALL_BOUND_MS);
      expect(breaker.state).toBe('closed');
    }
    // close() of a spare store is bounded while the server is frozen.
    const spare = new RedisBreakerStore({ client: f.clients[0]!, commandTimeoutMs: 100 });
    const b = new CircuitBreaker({ name: 'spare', store: spare, failureThreshold: 1 });
    await b.execute(() => Promise.reject(new Error('x'))).catch(() => {});
    const closing = performance.now();
    await spare.close();
    expect(performance.now() - closing).toBeLessThan(500);
    server!.signal('SIGCONT');
    await expectSharedAgain(f);
  }, 20_000);

  it('CLIENT PAUSE: opens locally, then shares again after the pause', async () => {
    const { url, admin } = await start();
    const f = (current = await fleet(url));
    await admin.call('CLIENT', 'PAUSE', '1500', 'ALL');
    expectOpenedLocally(await failUntilOpen(f.breakers));
    await admin.call('CLIENT', 'UNPAUSE');
    await expectSharedAgain(f);
  }, 20_000);

  it('DEBUG SLEEP: opens locally, then shares again once the server wakes', async () => {
    const { url, admin } = await start(['--enable-debug-command', 'yes']);
    const f = (current = await fleet(url));
    const sleeping = admin.call('DEBUG', 'SLEEP', '1').catch(() => {});
    expectOpenedLocally(await failUntilOpen(f.breakers));
    await sleeping;
    await expectSharedAgain(f);
  }, 20_000);

  it('maxmemory OOM: opens locally while every write is refused, then shares again', async () => {
    const { url, admin } = await start();
    const f = (current = await fleet(url));
    await admin.config('SET', 'maxmemory-policy', 'noeviction');
    await admin.config('SET', 'maxmemory', '1');
    expectOpenedLocally(await failUntilOpen(f.breakers));
    expect(f.errors.some((e) => String(e).includes('OOM'))).toBe(true);
    await admin.config('SET', 'maxmemory', '0');
    await expectSharedAgain(f);
  }, 20_000);

  it('SCRIPT FLUSH: the script is sent again, and the circuit opens on cluster totals', async () => {
    const { url, admin } = await start();
    const f = (current = await fleet(url));
    await admin.script('FLUSH');
    const results = await failUntilOpen(f.breakers);
    for (const r of results) expect(r.opened).toBe(true);
    await until(() => f.breakers.every((b) => b.state === 'open'), 'all four open');
    await expectSharedAgain(f);
  }, 20_000);

  it('FLUSHALL: a lost circuit starts afresh, and the breakers share it', async () => {
    const { url, admin } = await start();
    const f = (current = await fleet(url));
    f.breakers[0]!.open();
    await until(() => f.breakers.every((b) => b.state === 'forced_open'), 'all forced open');
    await admin.flushall();
    f.breakers[2]!.reset();
    await until(() => f.breakers.every((b) => b.state === 'closed'), 'all closed');
    const results = await failUntilOpen(f.breakers);
    for (const r of results) expect(r.opened).toBe(true);
    await expectSharedAgain(f);
  }, 20_000);

  it('ACL user without EVAL: every breaker decides locally, and shares once allowed', async () => {
    const { url, admin } = await start();
    await admin.call(
      'ACL',
      'SETUSER',
      'noeval',
      'on',
      '>pw',
      '~*',
      '&*',
      '+@all',
      '-eval',
      '-evalsha',
    );
    const f = (current = await fleet(url, { username: 'noeval', password: 'pw' }));
    expectOpenedLocally(await failUntilOpen(f.breakers));
    expect(f.errors.some((e) => String(e).includes('NOPERM'))).toBe(true);
    await admin.call('ACL', 'SETUSER', 'noeval', '+eval', '+evalsha');
    await expectSharedAgain(f);
  }, 20_000);

  describe('a TCP server of our own', () => {
    let junk: Server | undefined;
    const sockets = new Set<Socket>();

    afterEach(async () => {
      for (const socket of sockets) socket.destroy();
      sockets.clear();
      await new Promise<void>((resolve) => (junk ? junk.close(() => resolve()) : resolve()));
      junk = undefined;
    });

    async function serve(onData: (socket: Socket) => void): Promise<string> {
      const port = await freePort();
      junk = createServer((socket) => {
        sockets.add(socket);
        socket.on('error', () => {});
        socket.on('data', () => onData(socket));
      });
      await new Promise<void>((resolve) => junk!.listen(port, '127.0.0.1', resolve));
      return `redis://127.0.0.1:${port}`;
    }

    it('that relays to Redis, then answers junk: a malformed reply is a store failure', async () => {
      const { url: upstream } = await start();
      const upstreamPort = Number(new URL(upstream).port);
      let corrupt = false;
      const port = await freePort();
      junk = createServer((socket) => {
        sockets.add(socket);
        const relay = connect({ port: upstreamPort, host: '127.0.0.1' });
        sockets.add(relay);
        socket.on('error', () => {});
        relay.on('error', () => {});
        relay.on('data', (chunk) => socket.write(chunk));
        socket.on('data', (chunk) => {
          if (corrupt) socket.write('*2\r\n:1\r\n$2\r\nno\r\n');
          else relay.write(chunk);
        });
        socket.on('close', () => relay.destroy());
      });
      await new Promise<void>((resolve) => junk!.listen(port, '127.0.0.1', resolve));
      const f = (current = await fleet(`redis://127.0.0.1:${port}`));
      corrupt = true;
      expectOpenedLocally(await failUntilOpen(f.breakers));
      expect(f.errors.some((e) => isRedisReplyError(e))).toBe(true);
      expect(f.stores.every((s) => s.available)).toBe(true);
      corrupt = false;
      await expectSharedAgain(f);
    }, 20_000);

    it.each([
      ['answers +OK to everything', (socket: Socket) => socket.write('+OK\r\n')],
      ['answers :1 to everything', (socket: Socket) => socket.write(':1\r\n')],
      ['answers a short array', (socket: Socket) => socket.write('*2\r\n:1\r\n:2\r\n')],
      ['never answers', () => {}],
    ])(
      'that %s: breakers decide locally, never on its answers',
      async (_what, answer) => {
        const url = await serve(answer);
        const client = createRedisClient(url, { retryStrategy: () => 50, connectTimeout: 300 });
        client.on('error', () => {});
        const store = new RedisBreakerStore({
          client,
          commandTimeoutMs: COMMAND_TIMEOUT_MS,
          claimTimeoutMs: CLAIM_TIMEOUT_MS,
        });
        const breaker = new CircuitBreaker({
          name: 'junk',
          store,
          failureThreshold: FAILURE_THRESHOLD,
          openDurationMs: 300,
        });
        try {
          await sleep(100);
          expectOpenedLocally(await failUntilOpen([breaker]));
          await sleep(350);
          await expect(breaker.execute(() => Promise.resolve('ok'))).resolves.toBe('ok');
          expect(breaker.state).toBe('closed');
          const closing = performance.now();
          await store.close();
          expect(performance.now() - closing).toBeLessThan(2 * COMMAND_TIMEOUT_MS + 100);
        } finally {
          client.disconnect();
        }
      },
      20_000,
    );
  });
});
