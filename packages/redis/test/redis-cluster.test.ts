import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { CircuitBreaker, isCircuitOpenError, type RateLimitRule } from '@breakwater/core';
import { Cluster } from 'ioredis';
import { hasRedisServer } from '../../../test/redis-server';
import {
  redisMajorVersion,
  startRedisCluster,
  type RedisClusterHandle,
} from '../../../test/redis-cluster';
import { RedisBreakerStore, RedisRateLimitStore, failFastRedisOptions } from '../src';
import { sleep, testRule } from './helpers';

/*
 * Both stores on a real 3-master Redis Cluster (no replicas), started by this suite on free
 * loopback ports: rate limits exact on every master, breaker transitions across nodes over
 * sharded pub/sub, exact probe permits, names that would break a hash tag, and the dead master
 * of a breaker's slot.
 */

const describeCluster = hasRedisServer() ? describe : describe.skip;
const runId = `${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;
/** Sharded pub/sub needs Redis 7 (on a Redis 6 Cluster the stores are told so). */
const SHARDED = redisMajorVersion() >= 7;

async function until(check: () => boolean, what: string, timeoutMs = 3_000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!check()) {
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

describeCluster('Both stores on a 3-master Redis Cluster', () => {
  let cluster: RedisClusterHandle;
  const clients: Cluster[] = [];

  const newCluster = async (): Promise<Cluster> => {
    const client = new Cluster([...cluster.nodes], {
      enableOfflineQueue: false,
      redisOptions: { ...failFastRedisOptions },
      clusterRetryStrategy: () => 100,
    });
    client.on('error', () => {});
    clients.push(client);
    await new Promise<void>((resolve, reject) => {
      client.once('ready', () => resolve());
      setTimeout(() => reject(new Error('cluster client not ready')), 10_000).unref();
    });
    return client;
  };

  beforeAll(async () => {
    cluster = await startRedisCluster(3);
  }, 60_000);

  afterAll(async () => {
    for (const client of clients) client.disconnect();
    await cluster?.stop();
  }, 20_000);

  it('rate limits are exact on every master, for keys that would break a hash tag too', async () => {
    const [a, b] = [await newCluster(), await newCluster()];
    const stores = [new RedisRateLimitStore({ client: a }), new RedisRateLimitStore({ client: b })];
    const rule: RateLimitRule = testRule('fixed-window', { limit: 5, name: `rl-${runId}` });
    const keys = [...Array.from({ length: 24 }, (_, i) => `user:${i}`), '}x', '{a}', '%', ''];
    await Promise.all(
      keys.map(async (key) => {
        const decisions = await Promise.all(
          Array.from({ length: 8 }, (_, i) => stores[i % 2]!.consume(key, 1, rule)),
        );
        expect(decisions.filter((d) => d.allowed)).toHaveLength(5);
      }),
    );
    // Every master holds some of the keys.
    const sizes = await Promise.all(a.nodes('master').map((node) => node.dbsize()));
    expect(sizes).toHaveLength(3);
    for (const size of sizes) expect(size).toBeGreaterThan(0);
  });

  describe('shared breakers', () => {
    const stores: RedisBreakerStore[] = [];

    afterAll(async () => {
      await Promise.all(stores.map((s) => s.close()));
    });

    const fleet = async (name: string, count = 3) => {
      const breakers: CircuitBreaker[] = [];
      for (let i = 0; i < count; i++) {
        const store = new RedisBreakerStore({
          client: await newCluster(),
          flushIntervalMs: 50,
          shardedPubSub: SHARDED,
        });
        stores.push(store);
        await until(() => store.available, 'the store to subscribe', 10_000);
        breakers.push(
          new CircuitBreaker({
            name,
            store,
            failureThreshold: 4,
            openDurationMs: 60_000,
            halfOpen: { maxConcurrent: 2 },
          }),
        );
      }
      // Each breaker's channel is subscribed once its link is available.
      await sleep(200);
      return breakers;
    };

    it('refuses a Cluster subscriber without sharded subscribers for sharded pub/sub', async () => {
      const client = await newCluster();
      const subscriber = new Cluster([...cluster.nodes], { lazyConnect: true });
      expect(() => new RedisBreakerStore({ client, subscriber })).toThrow(/shardedSubscribers/);
      const plain = new RedisBreakerStore({ client, subscriber, shardedPubSub: false });
      expect(plain.sharded).toBe(false);
      await plain.close();
      subscriber.disconnect();
    });

    it('uses sharded pub/sub on a Cluster, on the slot of the breaker keys', async () => {
      const client = await newCluster();
      // The default on a Cluster client whose ioredis has sharded subscribers.
      const store = new RedisBreakerStore({ client });
      stores.push(store);
      expect(store.sharded).toBe(true);
      expect(store.channelOf('}edge')).toBe('bw:cb:{%7Dedge}:events');
      const [key] = store.redisKeys('}edge');
      const slot = (name: string) => client.call('CLUSTER', 'KEYSLOT', name);
      expect(await slot(store.channelOf('}edge'))).toBe(await slot(key));
    });

    it.each([['plain'], ['}edge'], ['{braced}'], ['50%']])(
      'a breaker named %j trips on cluster totals and every node follows transitions',
      async (label) => {
        const name = `${label}-${runId}`;
        const breakers = await fleet(name);
        // 2 failures each: under the threshold of 4 alone, 6 together.
        for (const breaker of breakers) {
          for (let i = 0; i < 2; i++) {
            await breaker.execute(() => Promise.reject(new Error('x'))).catch(() => {});
          }
        }
        await until(() => breakers.every((b) => b.state === 'open'), 'every breaker to open');
        breakers[2]!.reset();
        await until(() => breakers.every((b) => b.state === 'closed'), 'every breaker to close');
      },
      20_000,
    );

    it('grants exactly halfOpen.maxConcurrent probes across the cluster', async () => {
      const breakers = await fleet(`probes-${runId}`);
      breakers[0]!.openFor(0);
      await until(() => breakers.every((b) => b.state !== 'closed'), 'every breaker to follow');
      let running = 0;
      let release: () => void = () => {};
      const gate = new Promise<void>((resolve) => (release = resolve));
      const calls = breakers.flatMap((breaker) =>
        Array.from({ length: 4 }, () =>
          breaker
            .execute(async () => {
              running++;
              await gate;
            })
            .catch((error: unknown) => {
              if (!isCircuitOpenError(error)) throw error;
            }),
        ),
      );
      await sleep(300);
      expect(running).toBe(2);
      release();
      await Promise.all(calls);
    }, 20_000);

    it('the dead master of a breaker slot: breakers decide locally and never wait', async () => {
      const name = `dead-master-${runId}`;
      const breakers = await fleet(name);
      const admin = await newCluster();
      const slot = Number(await admin.call('CLUSTER', 'KEYSLOT', `bw:cb:{${name}}`));
      const ranges = (await admin.call('CLUSTER', 'SLOTS')) as [number, number, [string, number]][];
      const owner = ranges.find(([from, to]) => slot >= from && slot <= to)![2][1];
      await cluster.kill(owner);
      for (const breaker of breakers) {
        let reached = 0;
        let worstMs = 0;
        for (let i = 0; i < 200 && breaker.state === 'closed'; i++) {
          // Time spent in the breaker: before the call starts, and after it fails.
          let started = performance.now();
          await breaker
            .execute(async () => {
              worstMs = Math.max(worstMs, performance.now() - started);
              reached++;
              await sleep(5);
              started = performance.now();
              throw new Error('dependency down');
            })
            .catch(() => {});
          worstMs = Math.max(worstMs, performance.now() - started);
        }
        expect(breaker.state).toBe('open');
        expect(reached).toBeLessThan(4 + 80);
        expect(worstMs).toBeLessThan(100);
      }
    }, 30_000);
  });
});
