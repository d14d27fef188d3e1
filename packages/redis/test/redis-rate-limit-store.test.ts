import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { RateLimiter } from '@breakwater/core';
import { describeRateLimitStore } from '@breakwater/core/testing';
import type { Redis } from 'ioredis';
import { freePort, startRedisServer, type RedisServerHandle } from '../../../test/redis-server';
import { RATE_LIMIT_SCRIPT_SHA } from '../src/internal/rate-limit-script';
import { RedisRateLimitStore, createRedisClient } from '../src';
import {
  callsBetween,
  commandCalls,
  redisUrl,
  skipReason,
  sleep,
  testRule,
  whenReady,
  CLIENTS,
} from './helpers';

const describeRedis = redisUrl ? describe : describe.skip;

describeRedis.each(CLIENTS)(
  `RedisRateLimitStore on the shared test server with %s${skipReason}`,
  (_label, createClient) => {
    let client: Redis;
    let store: RedisRateLimitStore;

    beforeAll(async () => {
      client = createClient(redisUrl!);
      await whenReady(client);
      store = new RedisRateLimitStore({ client });
    });

    afterAll(async () => {
      await client?.quit();
    });

    describeRateLimitStore('conformance', () => new RedisRateLimitStore({ client }), {
      describe,
      it,
    });

    describeRateLimitStore(
      'conformance with a custom prefix and no hash tag',
      () => new RedisRateLimitStore({ client, prefix: 'bw:test:plain:', hashTag: false }),
      { describe, it, algorithms: ['sliding-window'] },
    );

    describe('decisions of one tick', () => {
      it('are taken in order, a repeated key seeing the decisions before it', async () => {
        const rule = testRule('fixed-window', { limit: 5 });
        const decisions = await Promise.all(
          Array.from({ length: 8 }, () => store.consume('same', 1, rule)),
        );
        expect(decisions.map((d) => [d.allowed, d.remaining])).toEqual([
          [true, 4],
          [true, 3],
          [true, 2],
          [true, 1],
          [true, 0],
          [false, 0],
          [false, 0],
          [false, 0],
        ]);
      });

      it('mix limiters, algorithms and refunds', async () => {
        const fixed = testRule('fixed-window', { limit: 3 });
        const bucket = testRule('token-bucket', { limit: 1, burst: 4 });
        const [a, b, , c] = await Promise.all([
          store.consume('k', 3, fixed),
          store.consume('k', 4, bucket),
          store.refund('k', 2, fixed),
          store.consume('k', 2, fixed),
        ]);
        expect(a).toMatchObject({ allowed: true, remaining: 0, limit: 3 });
        expect(b).toMatchObject({ allowed: true, remaining: 0, limit: 4 });
        expect(c).toMatchObject({ allowed: true, remaining: 0 });
      });
    });

    describe('refund', () => {
      it('gives units back to a window, never below zero', async () => {
        const rule = testRule('fixed-window', { limit: 5 });
        await store.consume('k', 3, rule);
        await store.refund('k', 2, rule);
        expect(await store.consume('k', 0, rule)).toMatchObject({ remaining: 4 });
        await store.refund('k', 50, rule);
        expect(await store.consume('k', 0, rule)).toMatchObject({ remaining: 5 });
        expect((await store.consume('k', 5, rule)).allowed).toBe(true);
      });

      it('gives tokens back to a bucket, never above its burst', async () => {
        const rule = testRule('token-bucket', { limit: 1, burst: 3 });
        await store.consume('k', 3, rule);
        await store.refund('k', 1, rule);
        expect(await store.consume('k', 0, rule)).toMatchObject({ remaining: 1 });
        await store.refund('k', 10, rule);
        const full = await store.consume('k', 0, rule);
        expect(full).toMatchObject({ remaining: 3, resetMs: 0 });
      });

      it('gives units back to a sliding window', async () => {
        const rule = testRule('sliding-window', { limit: 4 });
        await store.consume('k', 4, rule);
        expect((await store.consume('k', 1, rule)).allowed).toBe(false);
        await store.refund('k', 1, rule);
        expect(await store.consume('k', 1, rule)).toMatchObject({ allowed: true, remaining: 0 });
      });

      it('leaves a key Redis no longer holds alone, and keeps a block', async () => {
        const rule = testRule('fixed-window', { limit: 1, blockDurationMs: 60_000 });
        await store.refund('never-used', 1, rule);
        expect(await client.exists(store.redisKey('never-used', rule))).toBe(0);
        await store.consume('k', 1, rule);
        expect((await store.consume('k', 1, rule)).allowed).toBe(false);
        await store.refund('k', 1, rule);
        const blocked = await store.consume('k', 1, rule);
        expect(blocked.allowed).toBe(false);
        expect(blocked.retryAfterMs).toBeGreaterThan(50_000);
      });

      it('sends nothing for a cost of zero', async () => {
        const rule = testRule('fixed-window');
        await expect(store.refund('k', 0, rule)).resolves.toBeUndefined();
        expect(await client.exists(store.redisKey('k', rule))).toBe(0);
      });
    });

    describe('readiness', () => {
      it('waits for the first connection of a client that is still connecting', async () => {
        const lazy = createClient(redisUrl!, { lazyConnect: true });
        try {
          const starting = new RedisRateLimitStore({ client: lazy });
          expect(lazy.status).toBe('wait');
          const decision = await starting.consume('k', 1, testRule('fixed-window'));
          expect(decision).toMatchObject({ allowed: true, remaining: 4 });
        } finally {
          lazy.disconnect();
        }
      });

      it('lets a limiter serve its first requests from Redis while the client connects', async () => {
        const lazy = createClient(redisUrl!, { lazyConnect: true });
        const limiter = new RateLimiter({
          name: `starting-${Date.now()}`,
          limit: 10,
          window: '1m',
          store: new RedisRateLimitStore({ client: lazy }),
          storeTimeoutMs: 2_000,
        });
        let failures = 0;
        limiter.on('storeFailure', () => {
          failures++;
        });
        try {
          const decisions = await Promise.all(
            Array.from({ length: 3 }, () => limiter.consume('first')),
          );
          expect(decisions.map((d) => d.remaining).sort()).toEqual([7, 8, 9]);
          expect(failures).toBe(0);
          expect(limiter.health().status).toBe('pass');
        } finally {
          await limiter.close();
          lazy.disconnect();
        }
      });

      it('ready() connects and resolves, or rejects within its bound', async () => {
        const lazy = createClient(redisUrl!, { lazyConnect: true });
        const port = await freePort();
        const nowhere = createClient(`redis://127.0.0.1:${port}`, {
          lazyConnect: true,
          retryStrategy: () => 20,
        });
        nowhere.on('error', () => {});
        try {
          await new RedisRateLimitStore({ client: lazy }).ready();
          expect(lazy.status).toBe('ready');
          const unreachable = new RedisRateLimitStore({ client: nowhere, readyTimeoutMs: 50 });
          const started = performance.now();
          await expect(unreachable.ready(100)).rejects.toMatchObject({ code: 'EREDISUNAVAILABLE' });
          await expect(unreachable.consume('k', 1, testRule('fixed-window'))).rejects.toMatchObject(
            {
              code: 'EREDISUNAVAILABLE',
            },
          );
          expect(performance.now() - started).toBeLessThan(1_000);
        } finally {
          lazy.disconnect();
          nowhere.disconnect();
        }
      });
    });

    describe('keys', () => {
      it('carry the prefix and the hash tag, and expire at the end of the window', async () => {
        const rule = testRule('fixed-window', { windowMs: 60_000 });
        await store.consume('user:1', 1, rule);
        const key = `bw:rl:{${rule.name}:user:1}`;
        expect(store.redisKey('user:1', rule)).toBe(key);
        expect(await client.keys(`bw:rl:{${rule.name}:*`)).toEqual([key]);
        const ttl = await client.pttl(key);
        expect(ttl).toBeGreaterThan(0);
        expect(ttl).toBeLessThanOrEqual(60_000);
      });

      it('of a sliding window live until both windows have slid out', async () => {
        const rule = testRule('sliding-window', { windowMs: 60_000 });
        await store.consume('k', 1, rule);
        const ttl = await client.pttl(store.redisKey('k', rule));
        expect(ttl).toBeGreaterThan(60_000);
        expect(ttl).toBeLessThanOrEqual(120_000);
      });

      it('of a token bucket live until the bucket is full again', async () => {
        // 10 tokens per 10 s: 3 tokens take 3 s to come back.
        const rule = testRule('token-bucket', { limit: 10, windowMs: 10_000 });
        const decision = await store.consume('k', 3, rule);
        expect(decision.resetMs).toBe(3_000);
        const ttl = await client.pttl(store.redisKey('k', rule));
        expect(ttl).toBeGreaterThan(2_800);
        expect(ttl).toBeLessThanOrEqual(3_000);
      });

      it('live until a block ends', async () => {
        const rule = testRule('fixed-window', {
          limit: 1,
          windowMs: 1_000,
          blockDurationMs: 30_000,
        });
        await store.consume('k', 1, rule);
        const refused = await store.consume('k', 1, rule);
        expect(refused.retryAfterMs).toBe(30_000);
        const ttl = await client.pttl(store.redisKey('k', rule));
        expect(ttl).toBeGreaterThan(29_800);
        expect(ttl).toBeLessThanOrEqual(30_000);
      });

      it('are not written by a peek on a new key, and are deleted by reset', async () => {
        const rule = testRule('token-bucket');
        const key = store.redisKey('k', rule);
        expect((await store.consume('k', 0, rule)).remaining).toBe(5);
        expect(await client.exists(key)).toBe(0);
        await store.consume('k', 1, rule);
        expect(await client.exists(key)).toBe(1);
        await store.reset('k', rule);
        expect(await client.exists(key)).toBe(0);
      });

      it('use the custom prefix without a hash tag when configured', async () => {
        const plain = new RedisRateLimitStore({ client, prefix: 'bw:test:plain:', hashTag: false });
        const rule = testRule('fixed-window');
        await plain.consume('k', 1, rule);
        expect(await client.exists(`bw:test:plain:${rule.name}:k`)).toBe(1);
      });
    });

    it('with readyTimeoutMs 0, connects a lazyConnect client on first use, refusing that first call at once', async () => {
      const lazy = createClient(redisUrl!, { lazyConnect: true });
      try {
        const lazyStore = new RedisRateLimitStore({ client: lazy, readyTimeoutMs: 0 });
        const rule = testRule('fixed-window');
        await expect(lazyStore.consume('k', 1, rule)).rejects.toMatchObject({
          code: 'EREDISUNAVAILABLE',
          status: 'wait',
        });
        await whenReady(lazy);
        expect(await lazyStore.consume('k', 1, rule)).toMatchObject({
          allowed: true,
          remaining: 4,
        });
      } finally {
        lazy.disconnect();
      }
    });

    describe('as time passes (short windows, real waits)', () => {
      it('fixed-window: a new window starts when retryAfterMs has passed', async () => {
        const rule = testRule('fixed-window', { limit: 2, windowMs: 300 });
        await store.consume('k', 2, rule);
        const refused = await store.consume('k', 1, rule);
        expect(refused.allowed).toBe(false);
        expect(refused.retryAfterMs).toBeGreaterThan(0);
        expect(refused.retryAfterMs).toBeLessThanOrEqual(300);
        expect(refused.resetMs).toBe(refused.retryAfterMs);
        await sleep(refused.retryAfterMs + 20);
        expect(await store.consume('k', 1, rule)).toMatchObject({ allowed: true, remaining: 1 });
      });

      it('sliding-window: the request fits once retryAfterMs has passed', async () => {
        const rule = testRule('sliding-window', { limit: 3, windowMs: 300 });
        await store.consume('k', 3, rule);
        const refused = await store.consume('k', 1, rule);
        expect(refused.allowed).toBe(false);
        expect(refused.retryAfterMs).toBeGreaterThan(0);
        expect(refused.retryAfterMs).toBeLessThanOrEqual(600);
        await sleep(refused.retryAfterMs + 20);
        expect((await store.consume('k', 1, rule)).allowed).toBe(true);
      });

      it('token-bucket: tokens come back at the refill rate, then the idle key expires', async () => {
        // 4 tokens per 200 ms: one every 50 ms.
        const rule = testRule('token-bucket', { limit: 4, windowMs: 200 });
        await store.consume('k', 4, rule);
        const refused = await store.consume('k', 1, rule);
        expect(refused.allowed).toBe(false);
        expect(refused.retryAfterMs).toBeGreaterThan(0);
        expect(refused.retryAfterMs).toBeLessThanOrEqual(50);
        await sleep(refused.retryAfterMs + 15);
        const allowed = await store.consume('k', 1, rule);
        expect(allowed.allowed).toBe(true);
        expect(allowed.resetMs).toBeLessThanOrEqual(200);
        await sleep(allowed.resetMs + 30);
        expect(await client.exists(store.redisKey('k', rule))).toBe(0);
      });

      it('blockDurationMs keeps the key refused past the window, until the block ends', async () => {
        const rule = testRule('fixed-window', { limit: 1, windowMs: 200, blockDurationMs: 1_000 });
        await store.consume('k', 1, rule);
        const first = await store.consume('k', 1, rule);
        expect(first.allowed).toBe(false);
        expect(first.retryAfterMs).toBeGreaterThan(900);
        expect(first.retryAfterMs).toBeLessThanOrEqual(1_000);
        await sleep(250);
        const during = await store.consume('k', 1, rule);
        expect(during.allowed).toBe(false);
        expect(during.retryAfterMs).toBeLessThan(first.retryAfterMs);
        await sleep(during.retryAfterMs + 20);
        expect((await store.consume('k', 1, rule)).allowed).toBe(true);
      });
    });
  },
);

describeRedis(`RedisRateLimitStore commands, on a private server${skipReason}`, () => {
  let server: RedisServerHandle;
  let client: Redis;
  let admin: Redis;
  let store: RedisRateLimitStore;

  beforeAll(async () => {
    server = await startRedisServer();
    client = createRedisClient(server.url);
    admin = createRedisClient(server.url);
    await Promise.all([whenReady(client), whenReady(admin)]);
    store = new RedisRateLimitStore({ client });
  });

  afterAll(async () => {
    await Promise.all([client?.quit(), admin?.quit()]);
    await server?.stop();
  });

  it('sends one EVALSHA and one TIME per tick, and a GET and at most one SET per decision', async () => {
    const rule = testRule('token-bucket', { limit: 1_000 });
    await store.consume('warm-up', 1, rule);

    let before = await commandCalls(admin);
    for (let i = 0; i < 20; i++) await store.consume('sequential', 1, rule);
    await Promise.all(
      Array.from({ length: 64 }, (_, i) => store.consume(`parallel:${i % 8}`, 1, rule)),
    );
    // Of 64 decisions asked for in one tick, the first goes at once and the 63 others share one
    // EVALSHA and one TIME.
    expect(callsBetween(before, await commandCalls(admin))).toEqual({
      evalsha: 22,
      time: 22,
      get: 84,
      set: 84,
    });

    // A refusal (and a peek) writes nothing: three commands per decision.
    const small = testRule('fixed-window', { limit: 1 });
    await store.consume('k', 1, small);
    before = await commandCalls(admin);
    for (let i = 0; i < 10; i++) await store.consume('k', 1, small);
    await store.consume('k', 0, small);
    expect(callsBetween(before, await commandCalls(admin))).toEqual({
      evalsha: 11,
      time: 11,
      get: 11,
    });
  });

  it('recovers from NOSCRIPT after SCRIPT FLUSH with one EVAL, keeping the counts', async () => {
    const rule = testRule('fixed-window', { limit: 5 });
    await store.consume('k', 2, rule);
    await admin.script('FLUSH');
    expect(await admin.script('EXISTS', RATE_LIMIT_SCRIPT_SHA)).toEqual([0]);

    let before = await commandCalls(admin);
    expect(await store.consume('k', 1, rule)).toMatchObject({ allowed: true, remaining: 2 });
    expect(callsBetween(before, await commandCalls(admin))).toMatchObject({ evalsha: 1, eval: 1 });
    expect(await admin.script('EXISTS', RATE_LIMIT_SCRIPT_SHA)).toEqual([1]);

    before = await commandCalls(admin);
    expect(await store.consume('k', 1, rule)).toMatchObject({ allowed: true, remaining: 1 });
    expect(callsBetween(before, await commandCalls(admin))).toEqual({
      evalsha: 1,
      time: 1,
      get: 1,
      set: 1,
    });
  });
});
