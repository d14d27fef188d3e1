import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { RateLimiter } from '@breakwater/core';
import type { Redis } from 'ioredis';
import { startRedisServer, type RedisServerHandle } from '../../../test/redis-server';
import { RedisRateLimitStore, createRedisClient, isRedisUnavailableError } from '../src';
import { redisUrl, skipReason, sleep, testRule, whenReady } from './helpers';

const describeRedis = redisUrl ? describe : describe.skip;

const STORE_TIMEOUT_MS = 250;

describeRedis(`RedisRateLimitStore when its Redis server dies${skipReason}`, () => {
  let server: RedisServerHandle;
  let client: Redis;
  let store: RedisRateLimitStore;
  // Jest fails the running test on an unhandled rejection; this also records any that reach
  // the process outside a test body (a store promise settling late, after its decision).
  const unhandled: unknown[] = [];
  const onUnhandled = (reason: unknown): void => {
    unhandled.push(reason);
  };

  beforeAll(async () => {
    process.on('unhandledRejection', onUnhandled);
    server = await startRedisServer();
    client = createRedisClient(server.url);
    // Connection errors are the point of this suite; ioredis would print each one.
    client.on('error', () => {});
    await whenReady(client);
    store = new RedisRateLimitStore({ client });
  });

  afterAll(async () => {
    client?.disconnect();
    await server?.stop();
    process.off('unhandledRejection', onUnhandled);
  });

  it('settles decisions in flight at once when the server is killed, then fails fast', async () => {
    const rule = testRule('fixed-window', { limit: 1_000_000 });
    const started = performance.now();
    const inFlight = Array.from({ length: 200 }, (_, i) =>
      store.consume(`k${i % 10}`, 1, rule).then(
        () => 'resolved',
        () => 'rejected',
      ),
    );
    await server.kill();
    const outcomes = await Promise.all(inFlight);
    // ioredis' defaults would hold the unanswered ones through 20 reconnect attempts (seconds).
    expect(performance.now() - started).toBeLessThan(STORE_TIMEOUT_MS);
    expect(outcomes).toHaveLength(200);

    for (let i = 0; i < 5; i++) {
      const t0 = performance.now();
      const error = await store.consume('k', 1, rule).catch((e: unknown) => e);
      expect(performance.now() - t0).toBeLessThan(STORE_TIMEOUT_MS / 5);
      expect(isRedisUnavailableError(error)).toBe(true);
    }

    await server.restart();
    await whenReady(client, 10_000);
    expect((await store.consume('k', 1, rule)).allowed).toBe(true);
  });

  it('lets a limiter answer every decision through a crash, then go back to Redis', async () => {
    const limiter = new RateLimiter({
      name: `outage-${Date.now().toString(36)}`,
      rate: '1000000/m',
      store,
      onStoreFailure: 'fallback',
      storeTimeoutMs: STORE_TIMEOUT_MS,
      breaker: { failureThreshold: 3, openDurationMs: 200 },
    });
    let storeFailures = 0;
    limiter.on('storeFailure', () => storeFailures++);
    const keyInRedis = (key: string) => client.exists(store.redisKey(key, limiter.rule));

    const latencies: number[] = [];
    let streaming = true;
    const worker = async (id: number): Promise<void> => {
      // Bounded in count and in time.
      const deadline = performance.now() + 10_000;
      for (let i = 0; streaming && i < 2_000 && performance.now() < deadline; i++) {
        const t0 = performance.now();
        const decision = await limiter.consume(`user:${id}`);
        latencies.push(performance.now() - t0);
        expect(decision.allowed).toBe(true);
        await sleep(2);
      }
    };

    try {
      const workers = Array.from({ length: 4 }, (_, id) => worker(id));
      await sleep(200);
      expect(await keyInRedis('user:0')).toBe(1);
      expect(limiter.health().store).toBe('primary');
      const beforeKill = latencies.length;

      await server.kill();
      await sleep(600);
      streaming = false;
      await Promise.all(workers);

      expect(latencies.length - beforeKill).toBeGreaterThan(20);
      expect(Math.max(...latencies)).toBeLessThan(STORE_TIMEOUT_MS);
      expect(storeFailures).toBeGreaterThan(0);
      expect(limiter.health()).toMatchObject({ status: 'warn', store: 'fallback' });

      await server.restart();
      await whenReady(client, 10_000);
      // The restarted server is empty (no persistence): a key that appears was written by a
      // decision that went to Redis again once the store's circuit let a probe through.
      const deadline = performance.now() + 5_000;
      let back = false;
      for (let i = 0; i < 500 && !back && performance.now() < deadline; i++) {
        const t0 = performance.now();
        await limiter.consume('after-restart');
        latencies.push(performance.now() - t0);
        back = (await keyInRedis('after-restart')) === 1;
        if (!back) await sleep(20);
      }
      expect(back).toBe(true);
      expect(limiter.health()).toMatchObject({ status: 'pass', store: 'primary' });
      expect(Math.max(...latencies)).toBeLessThan(STORE_TIMEOUT_MS);
    } finally {
      streaming = false;
      await limiter.close();
    }
    // Give late settlements a turn to surface before checking.
    await sleep(50);
    expect(unhandled).toEqual([]);
  });
});
