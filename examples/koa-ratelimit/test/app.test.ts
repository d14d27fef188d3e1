import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import request from 'supertest';
import type { Logger, RateLimitStore } from '@breakwater/core';
import { startRedisServer, type RedisServerHandle } from '../../../test/redis-server';
import { clientKey, createApp, type RateLimitedApp } from '../src/app';
import { connectRedis, type RedisConnection } from '../src/redis';

// The app with supertest. The Redis suite starts its own redis-server (the shared one of the
// run must not be killed) and takes it through an outage: kill -9, restart.

const redisAvailable = process.env.BREAKWATER_TEST_REDIS_URL !== undefined;
const skipReason = redisAvailable
  ? ''
  : ' (SKIPPED: no redis-server found, BREAKWATER_TEST_REDIS_URL is unset)';
if (!redisAvailable) {
  process.stderr.write(
    'examples/koa-ratelimit: BREAKWATER_TEST_REDIS_URL is unset (no redis-server), so the Redis ' +
      'outage suite is SKIPPED. Install redis-server to run it.\n',
  );
}
const describeRedis = redisAvailable ? describe : describe.skip;

const WAIT_LIMIT_MS = 10_000;

interface HealthBody {
  status: string;
  checks: Record<string, { status: string; observedValue: string }[]>;
}

function recordingLogger(): Logger & { lines: string[] } {
  const lines: string[] = [];
  const push = (message: string): void => void lines.push(message);
  return { lines, info: push, warn: push, error: push };
}

async function waitFor(condition: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + WAIT_LIMIT_MS;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** Sends `count` requests as `apiKey`; checks the headers of each; returns the statuses. */
async function burst(api: RateLimitedApp, apiKey: string, count: number): Promise<number[]> {
  const statuses: number[] = [];
  for (let i = 0; i < count; i++) {
    const res = await request(api.app.callback()).get('/api/plants').set('X-Api-Key', apiKey);
    statuses.push(res.status);
    expect(res.headers['ratelimit-policy']).toBe('"api";q=5;w=60');
    const remaining = Math.max(0, 4 - i);
    expect(res.headers.ratelimit).toMatch(new RegExp(`^"api";r=${remaining};t=\\d+$`));
    if (res.status === 429) {
      expect(Number(res.headers['retry-after'])).toBeGreaterThan(0);
      expect(res.headers['content-type']).toBe('application/problem+json');
      expect(JSON.parse(res.text)).toMatchObject({ status: 429, limiter: 'api' });
    } else {
      expect(res.body).toEqual(
        expect.arrayContaining([{ id: 'monstera', name: 'Monstera deliciosa' }]),
      );
    }
  }
  return statuses;
}

async function health(api: RateLimitedApp): Promise<HealthBody> {
  const res = await request(api.app.callback()).get('/health').expect(200);
  expect(res.headers['content-type']).toMatch(/^application\/health\+json/);
  return JSON.parse(res.text) as HealthBody;
}

const LIMITED = [200, 200, 200, 200, 200, 429, 429];

describe('clientKey', () => {
  it('counts a well-formed X-Api-Key, and the address without one or with a malformed one', () => {
    expect(clientKey('alice', '10.0.0.1')).toBe('key:alice');
    expect(clientKey('', '10.0.0.1')).toBe('ip:10.0.0.1');
    expect(clientKey('two words', '10.0.0.1')).toBe('ip:10.0.0.1');
    expect(clientKey('x'.repeat(65), '10.0.0.1')).toBe('ip:10.0.0.1');
  });
});

describe('the app with a store that is down from the start', () => {
  const down: RateLimitStore = {
    consume: () => Promise.reject(new Error('connect ECONNREFUSED 127.0.0.1:6379')),
    reset: () => Promise.reject(new Error('connect ECONNREFUSED 127.0.0.1:6379')),
  };
  let api: RateLimitedApp;
  const logger = recordingLogger();

  beforeAll(() => {
    api = createApp({ store: down, rate: '5/m', logger });
  });
  afterAll(() => api.close());

  it('limits each client from memory, says so once in the log, and reports warn', async () => {
    expect(await burst(api, 'carol', 7)).toEqual(LIMITED);
    expect(await burst(api, 'dave', 1)).toEqual([200]); // another client, its own quota
    expect(logger.lines).toEqual([
      '[RATELIMIT] api store failing -> answering from fallback (Error: connect ECONNREFUSED 127.0.0.1:6379)',
    ]);
    const report = await health(api);
    expect(report.status).toBe('warn');
    expect(report.checks['api:rate-limit-store']![0]).toMatchObject({
      status: 'warn',
      observedValue: 'fallback',
    });
    expect(report.checks['api.store:circuit']![0]).toMatchObject({ observedValue: 'open' });
    // Liveness and readiness never depend on the store.
    await request(api.app.callback()).get('/health/live').expect(200);
    await request(api.app.callback()).get('/health/ready').expect(200);
  });

  it('serves one plant, and 404 for an unknown one', async () => {
    const one = await request(api.app.callback())
      .get('/api/plants/aloe')
      .set('X-Api-Key', 'erin')
      .expect(200);
    expect(one.body).toEqual({ id: 'aloe', name: 'Aloe vera', water: 'every three weeks' });
    await request(api.app.callback())
      .get('/api/plants/cactus')
      .set('X-Api-Key', 'erin')
      .expect(404);
  });
});

describeRedis(`the app through a Redis outage (kill -9, restart)${skipReason}`, () => {
  let server: RedisServerHandle;
  let redis: RedisConnection;
  let api: RateLimitedApp;
  const logger = recordingLogger();
  const notices: string[] = [];

  beforeAll(async () => {
    server = await startRedisServer();
    redis = await connectRedis(server.url, (message) => void notices.push(message));
    api = createApp({ store: redis.store, rate: '5/m', storeOpenDurationMs: 500, logger });
  });
  afterAll(async () => {
    await api?.close();
    redis?.close();
    await server?.stop();
  });

  const keyOf = (apiKey: string): string =>
    redis.store.redisKey(clientKey(apiKey, ''), api.limiter.rule);

  it(
    'limits through Redis, from memory while it is down (warn), and through Redis after (pass)',
    async () => {
      expect(redis.connected).toBe(true);

      // 1. Redis up: counted in Redis.
      expect(await burst(api, 'alice', 7)).toEqual(LIMITED);
      expect(await burst(api, 'bob', 1)).toEqual([200]);
      expect(await redis.client.exists(keyOf('alice'), keyOf('bob'))).toBe(2);
      expect(await redis.client.pttl(keyOf('alice'))).toBeGreaterThan(0);
      let report = await health(api);
      expect(report.status).toBe('pass');
      expect(report.checks['api:rate-limit-store']![0]).toMatchObject({
        status: 'pass',
        observedValue: 'primary',
      });
      expect(logger.lines).toEqual([]);

      // 2. redis-server killed: still limited, from memory; health warn.
      await server.kill();
      await waitFor(() => redis.client.status !== 'ready', 'the client to notice the kill');
      expect(await burst(api, 'alice', 7)).toEqual(LIMITED);
      expect(api.limiter.health()).toMatchObject({ status: 'warn', store: 'fallback' });
      report = await health(api);
      expect(report.status).toBe('warn');
      expect(report.checks['api:rate-limit-store']![0]).toMatchObject({
        status: 'warn',
        observedValue: 'fallback',
      });
      expect(logger.lines).toHaveLength(1);
      expect(logger.lines[0]).toMatch(
        /^\[RATELIMIT\] api store failing -> answering from fallback \(/,
      );

      // 3. redis-server restarted (empty): once the circuit admits a probe, back on Redis.
      await server.restart();
      await waitFor(() => redis.client.status === 'ready', 'the client to reconnect');
      expect(await redis.client.exists(keyOf('alice'))).toBe(0); // no persistence
      await new Promise((resolve) => setTimeout(resolve, api.storeBreaker.retryAfterMs));
      expect(await burst(api, 'alice', 7)).toEqual(LIMITED);
      expect(api.limiter.health()).toMatchObject({ status: 'pass', store: 'primary' });
      expect(await redis.client.exists(keyOf('alice'))).toBe(1);
      expect(await redis.client.pttl(keyOf('alice'))).toBeGreaterThan(0);
      report = await health(api);
      expect(report.status).toBe('pass');
      expect(report.checks['api:rate-limit-store']![0]).toMatchObject({
        status: 'pass',
        observedValue: 'primary',
      });
      expect(report.checks['api.store:circuit']![0]).toMatchObject({ observedValue: 'closed' });
      expect(logger.lines).toEqual([logger.lines[0], '[RATELIMIT] api store recovered']);
      expect(notices).toEqual([
        expect.stringMatching(/^connection lost( \(.+\))?; reconnecting in the background$/),
        'connected again',
      ]);
    },
    3 * WAIT_LIMIT_MS,
  );
});
