import { afterEach, describe, expect, it, jest } from '@jest/globals';
import { isConfigError, type RateLimitRule } from '@breakwater/core';
import type { Redis } from 'ioredis';
import { freePort } from '../../../test/redis-server';
import { createRedisClient, failFastRedisOptions } from './create-redis-client';
import { RATE_LIMIT_SCRIPT, RATE_LIMIT_SCRIPT_SHA } from './internal/rate-limit-script';
import { RedisRateLimitStore } from './redis-rate-limit-store';
import { RedisReplyError, isRedisReplyError } from './redis-reply-error';
import { RedisUnavailableError, isRedisUnavailableError } from './redis-unavailable-error';

const rule: RateLimitRule = Object.freeze({
  name: 'api',
  algorithm: 'token-bucket',
  limit: 10,
  windowMs: 1_000,
  burst: 20,
  blockDurationMs: 0,
});

/** A stand-in for an ioredis client that records what the store sends. */
function fakeClient(status = 'ready') {
  return {
    status,
    evalsha: jest.fn<(...args: unknown[]) => Promise<unknown>>(() =>
      Promise.resolve([1, 19, 100, 0]),
    ),
    eval: jest.fn<(...args: unknown[]) => Promise<unknown>>(() => Promise.resolve([1, 18, 200, 0])),
    del: jest.fn<(...args: unknown[]) => Promise<number>>(() => Promise.resolve(1)),
    connect: jest.fn<() => Promise<void>>(() => Promise.resolve()),
  };
}

function storeWith(client: ReturnType<typeof fakeClient>, options: object = {}) {
  return new RedisRateLimitStore({ client: client as unknown as Redis, ...options });
}

function configError(build: () => unknown): { path: string; message: string } {
  try {
    build();
  } catch (error) {
    if (isConfigError(error)) return error;
    throw error;
  }
  throw new Error('expected a ConfigError');
}

describe('RedisRateLimitStore options', () => {
  it('uses the documented defaults', () => {
    const store = storeWith(fakeClient());
    expect(store.prefix).toBe('bw:rl:');
    expect(store.hashTag).toBe(true);
    expect(store.local).toBe(false);
    expect(store.redisKey('1.2.3.4', rule)).toBe('bw:rl:{api:1.2.3.4}');
  });

  it('keeps the hash tag whole and never empty, whatever the name and key hold', () => {
    const store = storeWith(fakeClient());
    expect(store.redisKey('}x', rule)).toBe('bw:rl:{api:%7Dx}');
    expect(store.redisKey('50%}', rule)).toBe('bw:rl:{api:50%25%7D}');
    expect(store.redisKey('{a}', rule)).toBe('bw:rl:{api:{a%7D}');
    // Distinct keys stay distinct.
    expect(store.redisKey('%7D', rule)).not.toBe(store.redisKey('}', rule));
  });

  it('builds keys without a hash tag when asked', () => {
    const store = storeWith(fakeClient(), { prefix: 'app{x}:', hashTag: false });
    expect(store.redisKey('k', rule)).toBe('app{x}:api:k');
  });

  it.each([
    ['options', undefined],
    ['options', 'redis://localhost'],
    ['client', {}],
    ['client', { client: undefined }],
    ['client', { client: { evalsha() {}, eval() {}, del() {}, connect() {} } }],
    ['client', { client: { status: 'ready', evalsha() {}, eval() {}, del() {} } }],
    ['prefix', { client: fakeClient(), prefix: 42 }],
    ['prefix', { client: fakeClient(), prefix: 'x'.repeat(201) }],
    ['prefix', { client: fakeClient(), prefix: 'tenant{a}:' }],
    ['hashTag', { client: fakeClient(), hashTag: 'yes' }],
    ['readyTimeoutMs', { client: fakeClient(), readyTimeoutMs: -1 }],
    ['readyTimeoutMs', { client: fakeClient(), readyTimeoutMs: 'soon' }],
    ['readyTimeoutMs', { client: fakeClient(), readyTimeoutMs: 120_000 }],
    ['failFast', { client: fakeClient(), failFast: 0 }],
    ['keyPrefix', { client: fakeClient(), keyPrefix: 'x' }],
  ])('rejects a bad %s with a ConfigError naming it', (path, options) => {
    const error = configError(() => new RedisRateLimitStore(options as never));
    expect(error.path).toBe(path);
    expect(error.message).toContain('RedisRateLimitStore');
  });
});

describe('RedisRateLimitStore commands', () => {
  it('sends one EVALSHA with the rule and the cost, and maps the reply', async () => {
    const client = fakeClient();
    client.evalsha.mockResolvedValueOnce([0, 0, 1_500, 250]);
    const decision = await storeWith(client).consume('user:1', 3, rule);
    expect(client.evalsha).toHaveBeenCalledTimes(1);
    expect(client.evalsha).toHaveBeenCalledWith(
      RATE_LIMIT_SCRIPT_SHA,
      1,
      'bw:rl:{api:user:1}',
      3,
      10,
      1_000,
      20,
      0,
      3,
    );
    expect(client.eval).not.toHaveBeenCalled();
    expect(decision).toEqual({
      allowed: false,
      limit: 20,
      remaining: 0,
      resetMs: 1_500,
      retryAfterMs: 250,
    });
  });

  it('reports the limit (not the burst) for window algorithms', async () => {
    const client = fakeClient();
    client.evalsha.mockResolvedValueOnce([1, 9, 100, 0]);
    const fixed: RateLimitRule = { ...rule, algorithm: 'fixed-window', burst: 10 };
    const decision = await storeWith(client).consume('k', 1, fixed);
    expect(decision).toEqual({
      allowed: true,
      limit: 10,
      remaining: 9,
      resetMs: 100,
      retryAfterMs: 0,
    });
    expect(client.evalsha.mock.calls[0]?.[3]).toBe(1);
  });

  it.each([
    ['a status reply', 'OK'],
    ['an integer', 1],
    ['nothing', null],
    ['a short array', [1, 2, 3]],
    ['a long array', [1, 2, 3, 4, 5]],
    ['an unknown verdict', [2, 1, 1, 0]],
    ['a negative count', [0, -1, 1, 5]],
    ['a fraction', [1, 1.5, 1, 0]],
    ['strings', ['1', '1', '1', '0']],
    ['more remaining than the limit', [1, 21, 1, 0]],
    ['a wait on an allowed decision', [1, 5, 10, 7]],
    ['a non-finite time', [0, 0, Infinity, 0]],
  ])('rejects %s as a malformed reply, never as a decision', async (_what, reply) => {
    const client = fakeClient();
    client.evalsha.mockResolvedValueOnce(reply);
    const error = await storeWith(client)
      .consume('k', 1, rule)
      .catch((e: unknown) => e);
    expect(isRedisReplyError(error)).toBe(true);
    expect((error as RedisReplyError).code).toBe('EREDISREPLY');
    expect((error as RedisReplyError).message).toContain('Malformed reply from Redis');
  });

  it('rejects every decision of a batch whose reply has the wrong length', async () => {
    const client = fakeClient();
    // The first decision of the tick goes alone; the two after it go together.
    client.evalsha.mockResolvedValueOnce([1, 1, 1, 0]).mockResolvedValueOnce([1, 1, 1, 0]);
    const store = storeWith(client);
    const results = await Promise.allSettled([
      store.consume('first', 1, rule),
      store.consume('a', 1, rule),
      store.consume('b', 1, rule),
    ]);
    expect(client.evalsha).toHaveBeenCalledTimes(2);
    expect(client.evalsha.mock.calls[1]?.[1]).toBe(2);
    expect(results[0].status).toBe('fulfilled');
    for (const result of results.slice(1)) {
      expect(result.status).toBe('rejected');
      expect(isRedisReplyError((result as PromiseRejectedResult).reason)).toBe(true);
    }
  });

  it('sends one call per decision to a Cluster', async () => {
    const client = Object.assign(fakeClient(), { isCluster: true });
    const store = storeWith(client);
    await Promise.all([store.consume('a', 1, rule), store.consume('b', 1, rule)]);
    expect(client.evalsha).toHaveBeenCalledTimes(2);
  });

  it('bounds the description of a malformed reply', () => {
    const error = RedisReplyError.create('x', ['a'.repeat(10_000), ...Array<number>(100).fill(1)]);
    expect(error.reply.length).toBeLessThanOrEqual(123);
    expect(error.stack?.split('\n')).toHaveLength(1);
    expect(isRedisReplyError(new Error('x'))).toBe(false);
  });

  it('sends the script text once with EVAL when Redis answers NOSCRIPT', async () => {
    const client = fakeClient();
    client.evalsha.mockRejectedValueOnce(
      new Error('NOSCRIPT No matching script. Please use EVAL.'),
    );
    const decision = await storeWith(client).consume('k', 2, rule);
    expect(client.eval).toHaveBeenCalledTimes(1);
    expect(client.eval).toHaveBeenCalledWith(
      RATE_LIMIT_SCRIPT,
      1,
      'bw:rl:{api:k}',
      3,
      10,
      1_000,
      20,
      0,
      2,
    );
    expect(decision.remaining).toBe(18);
  });

  it('passes other errors through without retrying', async () => {
    const client = fakeClient();
    const failure = new Error('READONLY You cannot write against a read only replica.');
    client.evalsha.mockRejectedValueOnce(failure);
    await expect(storeWith(client).consume('k', 1, rule)).rejects.toBe(failure);
    expect(client.eval).not.toHaveBeenCalled();
  });

  it('deletes the key on reset', async () => {
    const client = fakeClient();
    await storeWith(client, { prefix: 't:' }).reset('k', rule);
    expect(client.del).toHaveBeenCalledWith('t:{api:k}');
  });
});

describe('RedisRateLimitStore fail-fast', () => {
  let real: Redis | undefined;
  afterEach(() => {
    real?.disconnect();
    real = undefined;
  });

  it.each(['wait', 'connecting', 'reconnecting', 'end'])(
    'rejects at once without sending anything while the client is %s',
    async (status) => {
      const client = fakeClient(status);
      const store = storeWith(client);
      const consumed = store.consume('k', 1, rule);
      await expect(consumed).rejects.toBeInstanceOf(RedisUnavailableError);
      await expect(consumed).rejects.toMatchObject({ code: 'EREDISUNAVAILABLE', status });
      await expect(store.reset('k', rule)).rejects.toBeInstanceOf(RedisUnavailableError);
      expect(client.evalsha).not.toHaveBeenCalled();
      expect(client.del).not.toHaveBeenCalled();
    },
  );

  it('starts the connection of a lazyConnect client that has not connected yet', async () => {
    const waiting = fakeClient('wait');
    await expect(storeWith(waiting).consume('k', 1, rule)).rejects.toMatchObject({
      status: 'wait',
    });
    expect(waiting.connect).toHaveBeenCalledTimes(1);
    const reconnecting = fakeClient('reconnecting');
    await expect(storeWith(reconnecting).consume('k', 1, rule)).rejects.toMatchObject({
      status: 'reconnecting',
    });
    expect(reconnecting.connect).not.toHaveBeenCalled();
  });

  it('hands the command to the client when failFast is off', async () => {
    const client = fakeClient('reconnecting');
    await storeWith(client, { failFast: false }).consume('k', 1, rule);
    expect(client.evalsha).toHaveBeenCalledTimes(1);
  });

  it('rejects at once with a real client whose server cannot be reached', async () => {
    const port = await freePort();
    real = createRedisClient(`redis://127.0.0.1:${port}`, {
      retryStrategy: () => 50,
      disconnectTimeout: 10,
    });
    real.on('error', () => {});
    await new Promise<void>((resolve) => real!.once('reconnecting', () => resolve()));
    const store = new RedisRateLimitStore({ client: real, readyTimeoutMs: 0 });
    const started = performance.now();
    const error = await store.consume('k', 1, rule).catch((e: unknown) => e);
    expect(performance.now() - started).toBeLessThan(50);
    expect(isRedisUnavailableError(error)).toBe(true);
    expect((error as RedisUnavailableError).message).toContain('reconnecting');
  });

  it('creates the unavailable error without a stack trace', () => {
    const error = RedisUnavailableError.create('end');
    expect(error.stack?.split('\n')).toHaveLength(1);
    expect(error.name).toBe('RedisUnavailableError');
    expect(isRedisUnavailableError(error)).toBe(true);
    expect(isRedisUnavailableError(new Error('x'))).toBe(false);
    expect(
      isRedisUnavailableError({ code: 'EREDISUNAVAILABLE', name: 'RedisUnavailableError' }),
    ).toBe(true);
  });
});

describe('createRedisClient', () => {
  it('applies the fail-fast options and lets explicit options win', () => {
    const client = createRedisClient('redis://127.0.0.1:1/2', {
      lazyConnect: true,
      maxRetriesPerRequest: 1,
    });
    try {
      expect(client.options).toMatchObject({
        enableOfflineQueue: false,
        autoResendUnfulfilledCommands: false,
        maxRetriesPerRequest: 1,
        port: 1,
        db: 2,
      });
      expect(client.status).toBe('wait');
    } finally {
      client.disconnect();
    }
    expect(failFastRedisOptions).toEqual({
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      autoResendUnfulfilledCommands: false,
    });
    expect(Object.isFrozen(failFastRedisOptions)).toBe(true);
  });
});
