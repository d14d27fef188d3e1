import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { Redis } from 'ioredis';
import { CircuitBreakerRegistry, type CircuitBreaker, type RateLimiter } from '@breakwater/core';
import { circuitBreaker, healthRoutes, rateLimit } from '@breakwater/express';
import { RedisBreakerStore, RedisRateLimitStore, createRedisClient } from '@breakwater/redis';
import { startRedisServer, type RedisServerHandle } from '../../test/redis-server';
import { express5 } from '../support/frameworks';
import { close, listen, send, type Listening } from '../support/http';
import { startLatencyProxy, type LatencyProxy } from '../support/latency-proxy';
import { drive, eventually, percentile, type Sample } from '../support/load';
import { LONG } from '../support/paths';
import { report, type Figures } from '../support/report';

/**
 * An Express app whose `rateLimit` counts in Redis, under a bounded load, while Redis fails: killed
 * with SIGKILL and restarted, then answering slowly through a latency proxy. No request may be
 * answered 500 or left hanging, decisions must go on from the fallback (limits still enforced,
 * headers still sent), and once Redis is back decisions must return to it (keys reappear).
 * Then two app instances whose route breakers share their circuit through a `RedisBreakerStore`,
 * through the same kill and restart: each keeps serving and tripping on its own state during the
 * outage, and they follow one circuit again afterwards.
 */

const haveRedis = process.env.BREAKWATER_TEST_REDIS_URL !== undefined;
const describeRedis = haveRedis ? describe : describe.skip;
const skipReason = haveRedis ? '' : ' (SKIPPED: no redis-server, BREAKWATER_TEST_REDIS_URL unset)';

const STORE_TIMEOUT_MS = 100;
const OPEN_MS = 300;
/** Every request must have its complete answer within this bound (it is a hang otherwise). */
const ANSWER_BOUND_MS = 2_000;
const WORKERS = 8;
/** Per key and window: low enough that busy clients are refused, in Redis and in the fallback. */
const LIMIT = 40;
const OUTAGE_MS = LONG ? 30_000 : 2_000;

interface App extends Listening {
  limiter: RateLimiter;
  close(): Promise<void>;
}

async function startApp(client: Redis): Promise<App> {
  const store = new RedisRateLimitStore({ client });
  const limit = rateLimit({
    name: 'api',
    limit: LIMIT,
    window: '10s',
    store,
    storeTimeoutMs: STORE_TIMEOUT_MS,
    breaker: { failureThreshold: 3, openDurationMs: OPEN_MS },
    key: (req) => req.get('x-client') ?? 'anonymous',
  });
  const health = healthRoutes({ limiters: [limit.limiter] });
  const app = express5();
  app.set('env', 'production');
  app.use(health);
  app.use('/api', limit);
  app.get('/api/data', (_req, res) => {
    res.json({ ok: true });
  });
  const served = await listen((req, res) => {
    app(req, res);
  });
  return {
    ...served,
    limiter: limit.limiter,
    async close() {
      health.close();
      await close(served.server);
      await limit.limiter.close();
    },
  };
}

function whenReady(client: Redis, timeoutMs: number): Promise<boolean> {
  return eventually(() => client.status === 'ready', timeoutMs);
}

/** The store health `/health` reports for the limiter. */
async function reportedStore(url: string): Promise<string> {
  const reply = await send(`${url}/health`);
  const checks = (JSON.parse(reply.body) as { checks: Record<string, { observedValue: string }[]> })
    .checks;
  return checks['api:rate-limit-store']?.[0]?.observedValue ?? 'missing';
}

function summarise(phase: string, samples: readonly Sample[]): Figures {
  const ms = samples.map((s) => s.ms);
  const count = (status: number): number => samples.filter((s) => s.status === status).length;
  return {
    phase,
    requests: samples.length,
    'HTTP 200': count(200),
    'HTTP 429': count(429),
    'HTTP 502 / 503': `${count(502)} / ${count(503)}`,
    'other (500, hang)': samples.length - count(200) - count(429) - count(502) - count(503),
    'p50 / p99 / max ms': `${percentile(ms, 50).toFixed(1)} / ${percentile(ms, 99).toFixed(1)} / ${Math.max(...ms).toFixed(1)}`,
  };
}

function between(samples: readonly Sample[], from: number, to: number): Sample[] {
  return samples.filter((s) => s.at >= from && s.at < to);
}

const figures: Figures[] = [];

describeRedis(`rate limiting on Redis while Redis fails, under load${skipReason}`, () => {
  let server: RedisServerHandle;
  const clients: Redis[] = [];
  const unhandled: unknown[] = [];
  const onUnhandled = (reason: unknown): void => {
    unhandled.push(reason);
  };

  function client(port: number): Redis {
    const made = createRedisClient(`redis://127.0.0.1:${port}`, { lazyConnect: true });
    made.on('error', () => undefined); // connection errors are the point of these tests
    clients.push(made);
    return made;
  }

  beforeAll(async () => {
    process.on('unhandledRejection', onUnhandled);
    server = await startRedisServer();
  });

  afterAll(async () => {
    for (const c of clients) c.disconnect();
    await server?.stop();
    process.off('unhandledRejection', onUnhandled);
    if (figures.length > 0) report('redis-faults', figures);
  });

  it(
    'answers every request through a SIGKILL and a restart, from the fallback, then from Redis again',
    async () => {
      const redis = client(server.port);
      const admin = client(server.port);
      await redis.connect();
      await admin.connect();
      const app = await startApp(redis);
      const rule = app.limiter.rule;
      const redisKey = (key: string): string =>
        new RedisRateLimitStore({ client: admin }).redisKey(key, rule);
      const load = drive(`${app.url}/api/data`, {
        workers: WORKERS,
        headers: (worker) => ({ 'x-client': `client-${worker}` }),
        timeoutMs: ANSWER_BOUND_MS,
      });
      try {
        await eventually(() => load.samples.length > 200, 5_000);
        expect(await admin.exists(redisKey('client-0'))).toBe(1);
        expect(await reportedStore(app.url)).toBe('primary');

        const killedAt = load.elapsed();
        await server.kill();
        expect(
          await eventually(async () => (await reportedStore(app.url)) === 'fallback', 2_000),
        ).toBe(true);
        await new Promise((resolve) => setTimeout(resolve, OUTAGE_MS));
        const restartedAt = load.elapsed();
        await server.restart();
        expect(await whenReady(redis, 10_000)).toBe(true);
        expect(await whenReady(admin, 10_000)).toBe(true);

        // The restarted server is empty: a key that appears was written by a decision on Redis.
        let probe = 0;
        const back = await eventually(async () => {
          const key = `probe-${probe++}`;
          await send(`${app.url}/api/data`, { headers: { 'x-client': key } });
          return (await admin.exists(redisKey(key))) === 1;
        }, 10_000);
        const recoveredAt = load.elapsed();
        expect(back).toBe(true);
        expect(
          await eventually(async () => (await admin.exists(redisKey('client-3'))) === 1, 5_000),
        ).toBe(true);
        expect(await reportedStore(app.url)).toBe('primary');
        await new Promise((resolve) => setTimeout(resolve, 500));
        const samples = await load.stop();

        // Nothing answered 500, nothing hung: every request got 200 or 429 within the bound.
        const bad = samples.filter((s) => s.status !== 200 && s.status !== 429);
        expect(bad).toEqual([]);
        expect(Math.max(...samples.map((s) => s.ms))).toBeLessThan(ANSWER_BOUND_MS);
        // During the outage decisions went on from the fallback: limits enforced, headers sent.
        const outage = between(samples, killedAt, restartedAt);
        expect(outage.length).toBeGreaterThan(50);
        expect(outage.filter((s) => s.status === 429).length).toBeGreaterThan(0);
        expect(outage.every((s) => s.limited)).toBe(true);
        expect(unhandled).toEqual([]);

        figures.push(
          summarise('before the kill', between(samples, 0, killedAt)),
          summarise(`Redis killed (SIGKILL), ${OUTAGE_MS} ms`, outage),
          summarise(
            `restart until decisions are on Redis (${Math.round(recoveredAt - restartedAt)} ms)`,
            between(samples, restartedAt, recoveredAt),
          ),
          summarise('after recovery', between(samples, recoveredAt, Infinity)),
        );
      } finally {
        await load.stop();
        await app.close();
      }
    },
    60_000 + OUTAGE_MS,
  );

  it('keeps route breakers that share their circuit through Redis serving through a kill and a restart', async () => {
    let upstreamFailing = false;
    const prefix = `rf${Date.now().toString(36)}:`; // one circuit for both instances
    interface Instance extends Listening {
      store: RedisBreakerStore;
      breaker: CircuitBreaker;
      close(): Promise<void>;
    }
    const instance = async (): Promise<Instance> => {
      const redis = client(server.port);
      await redis.connect();
      const store = new RedisBreakerStore({ client: redis, prefix });
      const registry = new CircuitBreakerRegistry({ defaults: { store } });
      const app = express5();
      app.set('env', 'production');
      app.get(
        '/api/work',
        circuitBreaker({ registry, name: 'upstream', failureThreshold: 5, openDurationMs: 500 }),
        (_req, res) => {
          if (upstreamFailing) res.status(502).json({ error: 'upstream failed' });
          else res.json({ ok: true });
        },
      );
      const served = await listen((req, res) => {
        app(req, res);
      });
      return {
        ...served,
        store,
        breaker: registry.find('upstream')!,
        async close() {
          await close(served.server);
          await store.close();
        },
      };
    };
    const a = await instance();
    const b = await instance();
    const status = async (i: Instance): Promise<number> => (await send(`${i.url}/api/work`)).status;
    const loads = [a, b].map((i) =>
      drive(`${i.url}/api/work`, { workers: WORKERS / 2, timeoutMs: ANSWER_BOUND_MS }),
    );
    try {
      expect(await eventually(() => a.store.available && b.store.available, 5_000)).toBe(true);
      // Shared: an operator opens the circuit on one instance, the other follows.
      a.breaker.open();
      expect(await eventually(async () => (await status(b)) === 503, 2_000)).toBe(true);
      a.breaker.reset();
      expect(await eventually(async () => (await status(b)) === 200, 2_000)).toBe(true);

      const killedAt = loads[0]!.elapsed();
      await server.kill();
      expect(await eventually(() => !a.store.available && !b.store.available, 2_000)).toBe(true);
      // Alone, each instance still trips on its own failures and recovers by itself.
      upstreamFailing = true;
      expect(await eventually(async () => (await status(a)) === 503, 3_000)).toBe(true);
      expect(await eventually(async () => (await status(b)) === 503, 3_000)).toBe(true);
      upstreamFailing = false;
      expect(await eventually(async () => (await status(a)) === 200, 3_000)).toBe(true);
      expect(await eventually(async () => (await status(b)) === 200, 3_000)).toBe(true);
      const restartedAt = loads[0]!.elapsed();
      await server.restart();
      expect(await eventually(() => a.store.available && b.store.available, 10_000)).toBe(true);
      const resyncedAt = loads[0]!.elapsed();
      // One circuit again: an action on one instance reaches the other.
      b.breaker.open();
      expect(await eventually(async () => (await status(a)) === 503, 2_000)).toBe(true);
      b.breaker.reset();
      expect(await eventually(async () => (await status(a)) === 200, 2_000)).toBe(true);
      const samples = (await Promise.all(loads.map((load) => load.stop()))).flat();

      const bad = samples.filter((x) => ![200, 502, 503].includes(x.status));
      expect(bad).toEqual([]);
      expect(Math.max(...samples.map((x) => x.ms))).toBeLessThan(ANSWER_BOUND_MS);
      expect(unhandled).toEqual([]);
      const outage = samples.filter((x) => x.at >= killedAt && x.at < restartedAt);
      figures.push(
        summarise('shared breakers: Redis killed', outage),
        summarise(
          `shared breakers: restart until both stores are back (${Math.round(resyncedAt - restartedAt)} ms)`,
          samples.filter((x) => x.at >= restartedAt && x.at < resyncedAt),
        ),
      );
    } finally {
      await Promise.all(loads.map((load) => load.stop()));
      await a.close();
      await b.close();
    }
  }, 60_000);

  it(
    'answers every request within the store timeout while Redis answers slowly, then goes back to it',
    async () => {
      const proxy: LatencyProxy = await startLatencyProxy(server.port);
      const redis = client(proxy.port);
      const admin = client(server.port);
      await redis.connect();
      await admin.connect();
      const app = await startApp(redis);
      const rule = app.limiter.rule;
      const redisKey = (key: string): string =>
        new RedisRateLimitStore({ client: admin }).redisKey(key, rule);
      await admin.del(redisKey('client-0'), redisKey('client-5'));
      const load = drive(`${app.url}/api/data`, {
        workers: WORKERS,
        headers: (worker) => ({ 'x-client': `client-${worker}` }),
        timeoutMs: ANSWER_BOUND_MS,
      });
      try {
        await eventually(() => load.samples.length > 200, 5_000);
        expect(await admin.exists(redisKey('client-0'))).toBe(1);

        // Slow but within the store timeout: decisions stay on Redis.
        const slowAt = load.elapsed();
        proxy.setLatency(30);
        await new Promise((resolve) => setTimeout(resolve, 1_000));
        expect(await reportedStore(app.url)).toBe('primary');

        // Slower than the store timeout: decisions move to the fallback, none waits for Redis.
        const stuckAt = load.elapsed();
        proxy.setLatency(400);
        expect(
          await eventually(async () => (await reportedStore(app.url)) === 'fallback', 3_000),
        ).toBe(true);
        await new Promise((resolve) => setTimeout(resolve, OUTAGE_MS));

        const healedAt = load.elapsed();
        proxy.setLatency(0);
        let probe = 0;
        const back = await eventually(async () => {
          const key = `slow-probe-${probe++}`;
          await send(`${app.url}/api/data`, { headers: { 'x-client': key } });
          return (
            (await reportedStore(app.url)) === 'primary' &&
            (await admin.exists(redisKey(key))) === 1
          );
        }, 10_000);
        const recoveredAt = load.elapsed();
        expect(back).toBe(true);
        await new Promise((resolve) => setTimeout(resolve, 500));
        const samples = await load.stop();

        const bad = samples.filter((s) => s.status !== 200 && s.status !== 429);
        expect(bad).toEqual([]);
        const stuck = between(samples, stuckAt + 200, healedAt);
        expect(stuck.length).toBeGreaterThan(50);
        expect(stuck.filter((s) => s.status === 429).length).toBeGreaterThan(0);
        expect(stuck.every((s) => s.limited)).toBe(true);
        // With Redis slower than the store timeout, no request waits for it.
        expect(Math.max(...stuck.map((s) => s.ms))).toBeLessThan(ANSWER_BOUND_MS);
        expect(unhandled).toEqual([]);

        figures.push(
          summarise('proxy, no added latency', between(samples, 0, slowAt)),
          summarise(
            'Redis 30 ms slower (within storeTimeoutMs)',
            between(samples, slowAt, stuckAt),
          ),
          summarise(`Redis 400 ms slower (beyond storeTimeoutMs), ${OUTAGE_MS} ms`, stuck),
          summarise(
            'latency removed, until decisions are on Redis',
            between(samples, healedAt, recoveredAt),
          ),
        );
      } finally {
        await load.stop();
        await app.close();
        await proxy.close();
      }
    },
    60_000 + OUTAGE_MS,
  );
});
