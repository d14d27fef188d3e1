import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { CircuitBreaker, isCircuitOpenError } from '@breakwater/core';
import type { Redis } from 'ioredis';
import { startRedisServer, type RedisServerHandle } from '../../../test/redis-server';
import { RedisBreakerStore, createRedisClient } from '../src';
import { bundleWorker, startWorkers, until, type Worker } from './fixtures/breaker-workers';
import { redisUrl, skipReason, sleep, whenReady } from './helpers';

/*
 * Redis down is a stated policy: every process keeps serving on its own state (it trips, probes
 * and closes by itself), nothing waits on Redis, nothing rejects unhandled; when Redis is back
 * every process resyncs and the shared state wins. These tests use a private redis-server, which
 * they kill with SIGKILL.
 */

const describeRedis = redisUrl ? describe : describe.skip;
const runId = `${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;

interface LoadStats {
  ok: number;
  failed: number;
  rejected: number;
  unexpected: number;
  maxLatencyMs: number;
}

describeRedis(`Shared breakers when redis-server is killed under load${skipReason}`, () => {
  let server: RedisServerHandle;
  let workers: Worker[] = [];
  let cleanup: () => void = () => {};

  beforeAll(async () => {
    server = await startRedisServer();
    const bundle = await bundleWorker();
    cleanup = bundle.cleanup;
    workers = await startWorkers(bundle.file, 4, server.url);
  }, 30_000);

  afterAll(async () => {
    await Promise.all(workers.map((w) => w.stop()));
    await server?.stop();
    cleanup();
  }, 15_000);

  const all = <T>(cmd: string, args: Record<string, unknown> = {}): Promise<T[]> =>
    Promise.all(workers.map((w) => w.request<T>(cmd, args)));
  const everyone = async (name: string, state: string): Promise<boolean> =>
    (await all<string>('state', { name })).every((s) => s === state);

  it('keeps every worker serving through the outage, then agrees again', async () => {
    const served = `served-${runId}`;
    const tripped = `tripped-${runId}`;
    await all('create', { name: served, options: { failureThreshold: 5, openDurationMs: 60_000 } });
    await all('create', {
      name: tripped,
      options: { failureThreshold: 5, openDurationMs: 60_000 },
    });
    await all('startLoad', { name: served, intervalMs: 2, maxMs: 20_000 });
    await sleep(300);

    await server.kill();
    await until(
      async () => (await all<boolean>('available')).every((a) => !a),
      'every worker to see Redis gone',
      3_000,
    );
    const atKill = await all<LoadStats>('loadStats', { name: served });

    // Redis down: one worker's failures open its own circuit (local decision).
    const outcome = await workers[0]!.request<{ failed: number }>('calls', {
      name: tripped,
      count: 5,
      fail: true,
    });
    expect(outcome.failed).toBe(5);
    expect(await all<string>('state', { name: tripped })).toEqual([
      'open',
      'closed',
      'closed',
      'closed',
    ]);
    const [localTrip] = await workers[0]!.request<{ reason: string }[]>('transitions', {
      name: tripped,
    });
    expect(localTrip!.reason).toBe('5 consecutive failures');
    await sleep(700);
    const duringOutage = await all<LoadStats>('loadStats', { name: served });
    duringOutage.forEach((stats, i) => {
      // Still serving, at about the same pace, and nothing but successes.
      expect(stats.ok - atKill[i]!.ok).toBeGreaterThan(50);
      expect(stats).toMatchObject({ failed: 0, rejected: 0, unexpected: 0 });
    });

    await server.restart();
    await until(
      async () => (await all<boolean>('available')).every(Boolean),
      'every worker to reconnect',
      10_000,
    );
    // The restarted server is empty: the shared state is "closed", and every worker follows it.
    await until(() => everyone(tripped, 'closed'), 'the tripped worker to resync', 3_000);

    const stats = await all<LoadStats>('stopLoad', { name: served });
    for (const s of stats) {
      expect(s).toMatchObject({ failed: 0, rejected: 0, unexpected: 0 });
      // No call waited on Redis (generous bound for a shared CI machine).
      expect(s.maxLatencyMs).toBeLessThan(100);
    }

    // Agreeing again: a transition anywhere reaches everyone.
    await workers[1]!.request('open', { name: served });
    await until(() => everyone(served, 'forced_open'), 'every worker to follow open()', 2_000);
    await workers[2]!.request('reset', { name: served });
    await until(() => everyone(served, 'closed'), 'every worker to follow reset()', 2_000);
    const health = await all<{ unhandled: number }>('health');
    expect(health.every((h) => h.unhandled === 0)).toBe(true);
  }, 40_000);

  it('a frozen redis-server (SIGSTOP): every worker opens by its own rules, none waits', async () => {
    const name = `frozen-${runId}`;
    await all('create', { name, options: { failureThreshold: 5, openDurationMs: 60_000 } });
    server.signal('SIGSTOP');
    try {
      // Connected, so every store still looks available: only the missing answers tell.
      expect(await all<boolean>('available')).toEqual([true, true, true, true]);
      await all('startLoad', { name, intervalMs: 2, maxMs: 5_000, fail: true });
      await until(() => everyone(name, 'open'), 'every worker to open', 3_000);
      for (const stats of await all<LoadStats>('stopLoad', { name })) {
        // The threshold, plus the calls made while the trip waited for the store (a quarter of
        // commandTimeoutMs, 75 ms at one call every 2 ms or more).
        expect(stats.failed).toBeGreaterThanOrEqual(5);
        expect(stats.failed).toBeLessThan(5 + 45);
        expect(stats.unexpected).toBe(0);
        expect(stats.maxLatencyMs).toBeLessThan(100);
      }
    } finally {
      server.signal('SIGCONT');
    }
    // Answers again: once each worker's probe is answered (one flush interval or so), an
    // operator action anywhere reaches everyone. Until then it stays local: ask again.
    await until(
      async () => {
        await workers[3]!.request('open', { name });
        await sleep(100);
        return everyone(name, 'forced_open');
      },
      'every worker to follow open() once Redis answers',
      5_000,
    );
    await workers[0]!.request('reset', { name });
    await until(() => everyone(name, 'closed'), 'every worker to follow reset()', 3_000);
    const health = await all<{ unhandled: number }>('health');
    expect(health.every((h) => h.unhandled === 0)).toBe(true);
  }, 30_000);
});

describeRedis(`RedisBreakerStore in one process when Redis dies${skipReason}`, () => {
  let server: RedisServerHandle;
  let client: Redis;
  let store: RedisBreakerStore;
  const unhandled: unknown[] = [];
  const onUnhandled = (reason: unknown): void => {
    unhandled.push(reason);
  };
  const errors: unknown[] = [];

  beforeAll(async () => {
    process.on('unhandledRejection', onUnhandled);
    server = await startRedisServer();
    client = createRedisClient(server.url);
    client.on('error', () => {});
    await whenReady(client);
    store = new RedisBreakerStore({ client, onError: (error) => errors.push(error) });
    await until(() => Promise.resolve(store.available), 'the store to subscribe', 3_000);
  }, 15_000);

  afterAll(async () => {
    await store?.close();
    client?.disconnect();
    await server?.stop();
    process.off('unhandledRejection', onUnhandled);
  });

  it('fails over to local decisions at once, then resyncs to the shared state', async () => {
    const name = `solo-${runId}`;
    const breaker = new CircuitBreaker({ name, store, failureThreshold: 3, openDurationMs: 100 });
    const other = new CircuitBreaker({ name, store, failureThreshold: 3, openDurationMs: 100 });
    expect(await breaker.execute(() => Promise.resolve(1))).toBe(1);

    await server.kill();
    await until(() => Promise.resolve(!store.available), 'the store to see Redis gone', 3_000);
    const t0 = performance.now();
    for (let i = 0; i < 3; i++) {
      await breaker.execute(() => Promise.reject(new Error('down'))).catch(() => undefined);
    }
    // Tripped on its own counts; the other breaker of the same name did not hear of it.
    expect(breaker.state).toBe('open');
    expect(other.state).toBe('closed');
    const rejected = await breaker.execute(() => Promise.resolve(1)).catch((e: unknown) => e);
    expect(isCircuitOpenError(rejected)).toBe(true);
    // Half-open without Redis: the probe is admitted locally and closes the circuit.
    await sleep(120);
    expect(await breaker.execute(() => Promise.resolve(2))).toBe(2);
    expect(breaker.state).toBe('closed');
    breaker.open();
    expect(performance.now() - t0).toBeLessThan(400);

    await server.restart();
    await until(() => Promise.resolve(store.available), 'the store to reconnect', 10_000);
    // The shared circuit (empty server: closed) wins over the local forced_open.
    await until(() => Promise.resolve(breaker.state === 'closed'), 'the breaker to resync', 3_000);
    other.open();
    await until(
      () => Promise.resolve(breaker.state === 'forced_open'),
      'the breaker to follow',
      2_000,
    );
    breaker.reset();
    await until(() => Promise.resolve(other.state === 'closed'), 'the other to follow', 2_000);
    await sleep(50);
    expect(unhandled).toEqual([]);
  }, 20_000);
});
