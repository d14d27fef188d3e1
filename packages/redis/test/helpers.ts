import type { RateLimitAlgorithm, RateLimitRule } from '@breakwater/core';
import type { Redis, RedisOptions } from 'ioredis';
import { Redis as Redis6 } from 'ioredis6';
import { createRedisClient, failFastRedisOptions } from '../src';

/** The shared test server's URL (set by the Jest global setup), or undefined without redis-server. */
export const redisUrl = process.env.BREAKWATER_TEST_REDIS_URL;

/** Appended to suite titles when Redis suites are skipped, so the report says why. */
export const skipReason = redisUrl
  ? ''
  : ' (SKIPPED: no redis-server found, BREAKWATER_TEST_REDIS_URL is unset)';

if (!redisUrl) {
  process.stderr.write(
    '@breakwater/redis: BREAKWATER_TEST_REDIS_URL is unset (no redis-server), so the Redis test ' +
      'suites of this file are SKIPPED. Install redis-server to run them.\n',
  );
}

let ruleCounter = 0;
const runId = `${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;

/** A frozen rule with a name unique to this run. */
export function testRule(
  algorithm: RateLimitAlgorithm,
  overrides: Partial<Omit<RateLimitRule, 'algorithm'>> = {},
): RateLimitRule {
  const limit = overrides.limit ?? 5;
  return Object.freeze({
    name: overrides.name ?? `t${runId}-${ruleCounter++}`,
    algorithm,
    limit,
    // A day: fixed windows start at multiples of windowMs on the server's clock, and a
    // one-minute window rolled over in the middle of a test about once in a few hundred runs.
    windowMs: overrides.windowMs ?? 86_400_000,
    burst: overrides.burst ?? limit,
    blockDurationMs: overrides.blockDurationMs ?? 0,
  });
}

/** Resolves when the client is ready; rejects after `timeoutMs`. */
export function whenReady(client: Redis, timeoutMs = 5_000): Promise<void> {
  if (client.status === 'ready') return Promise.resolve();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      client.off('ready', onReady);
      reject(new Error(`Redis client not ready after ${timeoutMs} ms (status ${client.status})`));
    }, timeoutMs);
    const onReady = (): void => {
      clearTimeout(timer);
      resolve();
    };
    client.once('ready', onReady);
  });
}

/** Calls per command from INFO commandstats (`cmdstat_evalsha:calls=3,...` gives `{ evalsha: 3 }`). */
export async function commandCalls(admin: Redis): Promise<Map<string, number>> {
  const info = await admin.info('commandstats');
  const calls = new Map<string, number>();
  for (const match of info.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) {
    calls.set(match[1]!, Number(match[2]));
  }
  return calls;
}

/** Commands called between two commandstats snapshots, without the INFO used to read them. */
export function callsBetween(
  before: Map<string, number>,
  after: Map<string, number>,
): Record<string, number> {
  const delta: Record<string, number> = {};
  for (const [command, count] of after) {
    const diff = count - (before.get(command) ?? 0);
    if (diff !== 0 && command !== 'info') delta[command] = diff;
  }
  return delta;
}

/** A real wait: these tests run against a server's clock, which fake timers do not move. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));
}

/** Creates a fail-fast client of one ioredis major version (typed as the workspace's ioredis). */
export type ClientFactory = (url: string, options?: RedisOptions) => Redis;

/**
 * Both supported ioredis majors (the peer range is `^5.3 || ^6`): store suites run once per
 * client with `describe.each(CLIENTS)`.
 */
export const CLIENTS: readonly (readonly [label: string, create: ClientFactory])[] = [
  ['ioredis 5', (url, options) => createRedisClient(url, options)],
  [
    'ioredis 6',
    (url, options) =>
      new Redis6(url, { ...failFastRedisOptions, ...options } as object) as unknown as Redis,
  ],
];
