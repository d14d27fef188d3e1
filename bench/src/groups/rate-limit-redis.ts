import { RateLimiter, type RateLimitDecision } from '@breakwater/core';
import { RedisRateLimitStore, createRedisClient, failFastRedisOptions } from '@breakwater/redis';
import { Cluster, type Redis } from 'ioredis';
import { RateLimiterRedis } from 'rate-limiter-flexible';
import {
  hasRedisServer,
  startRedisServer,
  type RedisServerHandle,
} from '../../../test/redis-server';
import { startRedisCluster, type RedisClusterHandle } from '../../../test/redis-cluster';
import type { Group, TimedCase } from '../harness';
import { check } from '../work';
import { LIMIT, keyCycle } from './keys';

const IN_FLIGHT = 64;

function waitReady(client: Redis): Promise<void> {
  if (client.status === 'ready') return Promise.resolve();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('Redis did not become ready in 10 s')), 10_000);
    client.once('ready', () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

/** `IN_FLIGHT` calls started together, awaited together: one call of the case. */
function inFlight(consume: (key: string) => Promise<unknown>): () => Promise<unknown> {
  const next = keyCycle();
  return () => {
    const calls: Promise<unknown>[] = new Array<Promise<unknown>>(IN_FLIGHT);
    for (let i = 0; i < IN_FLIGHT; i++) calls[i] = consume(next());
    return Promise.all(calls);
  };
}

function clusterReady(client: Cluster): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('the Cluster did not become ready')), 20_000);
    client.once('ready', () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

/**
 * Shared rate limiting over Redis: one round trip per decision, sequential (latency) and
 * 64 in flight (throughput); plus 64 in flight on a 3-master Redis Cluster started for the run.
 * Uses BREAKWATER_BENCH_REDIS_URL, or starts a redis-server (the Cluster rows need
 * redis-server on the PATH).
 */
export const rateLimitRedis: Group = {
  name: 'rate-limit-redis',
  shareProcess: true,
  description: `limiters over Redis (loopback), sequential and ${IN_FLIGHT} calls in flight (ns/op per decision).`,
  unavailable: () =>
    process.env.BREAKWATER_BENCH_REDIS_URL || hasRedisServer()
      ? undefined
      : 'set BREAKWATER_BENCH_REDIS_URL or put redis-server on the PATH',
  setup: async () => {
    let server: RedisServerHandle | undefined;
    const url = process.env.BREAKWATER_BENCH_REDIS_URL || (server = await startRedisServer()).url;
    const client = createRedisClient(url);
    client.on('error', () => {});
    await waitReady(client);
    // Keys carry the process id, so a shared Redis given by URL is not trampled.
    const prefix = `bw-bench:${process.pid}:`;
    // A store time limit well above loopback latency, even on a loaded machine: the cases
    // measure decisions taken by Redis, not by the fallback store.
    const ours = new RateLimiter({
      name: 'bench',
      limit: LIMIT,
      window: '1m',
      store: new RedisRateLimitStore({ client, prefix }),
      storeTimeoutMs: 5_000,
    });
    let storeFailures = 0;
    let lastFailure: unknown;
    ours.on('storeFailure', ({ error }) => {
      storeFailures++;
      lastFailure = error;
    });
    const checkOurs = (): void =>
      check(
        storeFailures === 0,
        `${storeFailures} store failures (last: ${String(lastFailure)}): ` +
          'some decisions came from the fallback store',
      );
    const flexible = new RateLimiterRedis({
      storeClient: client,
      keyPrefix: `rlf-bench-${process.pid}`,
      points: LIMIT,
      duration: 60,
    });
    const consumeOurs = (key: string): Promise<RateLimitDecision> => ours.consume(key);
    const consumeFlexible = (key: string): Promise<unknown> => flexible.consume(key);
    const verifyOurs = async (): Promise<void> => {
      const decision = await ours.consume('verify');
      check(decision.allowed, 'the first call was refused');
      checkOurs();
    };
    const verifyFlexible = async (): Promise<void> => {
      await flexible.consume('verify');
    };
    const nextOurs = keyCycle();
    const nextFlexible = keyCycle();

    // A 3-master Redis Cluster on loopback: keys spread over every master.
    let cluster: RedisClusterHandle | undefined;
    let clusterClient: Cluster | undefined;
    const clusterCases: TimedCase[] = [];
    if (!process.env.BREAKWATER_BENCH_REDIS_URL) {
      cluster = await startRedisCluster(3);
      clusterClient = new Cluster([...cluster.nodes], {
        enableOfflineQueue: false,
        redisOptions: { ...failFastRedisOptions },
      });
      clusterClient.on('error', () => {});
      await clusterReady(clusterClient);
      const oursOnCluster = new RateLimiter({
        name: 'bench-cluster',
        limit: LIMIT,
        window: '1m',
        store: new RedisRateLimitStore({ client: clusterClient, prefix }),
        storeTimeoutMs: 5_000,
      });
      let clusterFailures = 0;
      oursOnCluster.on('storeFailure', () => {
        clusterFailures++;
      });
      const flexibleOnCluster = new RateLimiterRedis({
        storeClient: clusterClient,
        keyPrefix: `rlf-bench-cluster-${process.pid}`,
        points: LIMIT,
        duration: 60,
      });
      clusterCases.push(
        {
          id: 'breakwater-cluster-in-flight',
          label: `breakwater RateLimiter fixed-window, Redis Cluster (3 masters), ${IN_FLIGHT} in flight`,
          library: 'breakwater',
          kind: 'async',
          warmupCalls: 200,
          opsPerCall: IN_FLIGHT,
          fn: inFlight((key) => oursOnCluster.consume(key)),
          verify: async () => {
            check((await oursOnCluster.consume('verify')).allowed, 'the first call was refused');
          },
          check: () =>
            check(clusterFailures === 0, `${clusterFailures} store failures on the Cluster`),
          compare: [{ vs: 'rate-limiter-flexible-cluster-in-flight' }],
        },
        {
          id: 'rate-limiter-flexible-cluster-in-flight',
          label: `rate-limiter-flexible RateLimiterRedis, Redis Cluster (3 masters), ${IN_FLIGHT} in flight`,
          library: 'rate-limiter-flexible',
          kind: 'async',
          baseline: true,
          warmupCalls: 200,
          opsPerCall: IN_FLIGHT,
          fn: inFlight((key) => flexibleOnCluster.consume(key)),
          verify: async () => {
            await flexibleOnCluster.consume('verify');
          },
        },
      );
    }

    const cases: TimedCase[] = [
      {
        id: 'breakwater-sequential',
        label: 'breakwater RateLimiter fixed-window, Redis store, sequential',
        library: 'breakwater',
        kind: 'async',
        warmupCalls: 5_000,
        fn: () => consumeOurs(nextOurs()),
        verify: verifyOurs,
        check: checkOurs,
        compare: [{ vs: 'rate-limiter-flexible-sequential' }],
      },
      {
        id: 'breakwater-in-flight',
        label: `breakwater RateLimiter fixed-window, Redis store, ${IN_FLIGHT} in flight`,
        library: 'breakwater',
        kind: 'async',
        warmupCalls: 200,
        opsPerCall: IN_FLIGHT,
        fn: inFlight(consumeOurs),
        verify: verifyOurs,
        check: checkOurs,
        compare: [{ vs: 'rate-limiter-flexible-in-flight' }],
      },
      {
        id: 'rate-limiter-flexible-sequential',
        label: 'rate-limiter-flexible RateLimiterRedis, sequential',
        library: 'rate-limiter-flexible',
        kind: 'async',
        baseline: true,
        warmupCalls: 5_000,
        fn: () => consumeFlexible(nextFlexible()),
        verify: verifyFlexible,
      },
      {
        id: 'rate-limiter-flexible-in-flight',
        label: `rate-limiter-flexible RateLimiterRedis, ${IN_FLIGHT} in flight`,
        library: 'rate-limiter-flexible',
        kind: 'async',
        warmupCalls: 200,
        opsPerCall: IN_FLIGHT,
        fn: inFlight(consumeFlexible),
        verify: verifyFlexible,
        compare: [],
      },
      ...clusterCases,
    ];
    return {
      cases,
      teardown: async () => {
        await ours.close();
        await client.quit();
        clusterClient?.disconnect();
        await cluster?.stop();
        await server?.stop();
      },
    };
  },
};
