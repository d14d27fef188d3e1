import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { CircuitBreaker } from '@breakwater/core';
import type { Redis } from 'ioredis';
import { startRedisServer, type RedisServerHandle } from '../../../test/redis-server';
import { RedisBreakerStore, createRedisClient } from '../src';
import { until } from './fixtures/breaker-workers';
import { callsBetween, commandCalls, redisUrl, skipReason, sleep, whenReady } from './helpers';

/*
 * What a closed shared breaker costs Redis, measured with INFO commandstats on a private server
 * (nothing else talks to it). Commands run inside the script (TIME, HMGET, HSET, ...) count too.
 */

const describeRedis = redisUrl ? describe : describe.skip;

describeRedis(`RedisBreakerStore cost in CLOSED state${skipReason}`, () => {
  let server: RedisServerHandle;
  let client: Redis;
  let admin: Redis;
  let store: RedisBreakerStore;

  beforeAll(async () => {
    server = await startRedisServer();
    client = createRedisClient(server.url);
    admin = createRedisClient(server.url);
    await Promise.all([whenReady(client), whenReady(admin)]);
    store = new RedisBreakerStore({ client });
    await until(() => Promise.resolve(store.available), 'the store to subscribe', 3_000);
  }, 15_000);

  afterAll(async () => {
    await store?.close();
    client?.disconnect();
    admin?.disconnect();
    await server?.stop();
  });

  const ok = (): Promise<number> => Promise.resolve(1);

  /** Runs `calls` closed calls, `perTick` every `tickMs`, and reports what Redis saw. */
  async function measure(label: string, calls: number, perTick: number, tickMs: number) {
    const breaker = new CircuitBreaker({ name: `cost-${label}`, store });
    await sleep(50); // let the breaker's initial sync pass
    const before = await commandCalls(admin);
    const started = performance.now();
    for (let i = 0; i < calls; i += perTick) {
      for (let j = 0; j < perTick; j++) await breaker.execute(ok);
      if (tickMs > 0) await sleep(tickMs);
    }
    const elapsedMs = performance.now() - started;
    await sleep(store.flushIntervalMs + 100); // the last batch
    const delta = callsBetween(before, await commandCalls(admin));
    const total = Object.values(delta).reduce((sum, n) => sum + n, 0);
    const flushes = delta.evalsha ?? 0;
    const per1000 = (total * 1_000) / calls;
    process.stdout.write(
      `\n  ${calls} closed calls over ${Math.round(elapsedMs)} ms (${label}), flush every ${store.flushIntervalMs} ms: ` +
        `${total} Redis commands, ${per1000.toFixed(1)} per 1,000 calls ` +
        `(${flushes} EVALSHA from the client; ${JSON.stringify(delta)})\n`,
    );
    expect(breaker.state).toBe('closed');
    return { total, flushes, elapsedMs };
  }

  it('sends at most one batch per flush interval, never one command per call', async () => {
    // As fast as possible: every call lands in one or two batches.
    const burst = await measure('back to back', 1_000, 1_000, 0);
    expect(burst.flushes).toBeLessThanOrEqual(2);
    // About 1,000 calls per second for 3 s (the last batch included).
    const steady = await measure('~1,000 calls/s', 3_000, 10, 10);
    expect(steady.flushes).toBeLessThanOrEqual(
      Math.ceil(steady.elapsedMs / store.flushIntervalMs) + 2,
    );
    // A flush is one EVALSHA and three commands inside the script (TIME, HMGET, HSET).
    expect(steady.total).toBeLessThanOrEqual(steady.flushes * 4 + 2);
  }, 20_000);
});
