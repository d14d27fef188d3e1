import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import {
  CircuitBreaker,
  CircuitBreakerRegistry,
  isConfigError,
  type CircuitBreakerOptions,
  type ConfigError,
} from '@breakwater/core';
import { Redis } from 'ioredis';
import { RedisBreakerStore, type RedisBreakerStoreOptions } from '../src';
import { until } from './fixtures/breaker-workers';
import { CLIENTS, redisUrl, skipReason, sleep, whenReady } from './helpers';

/*
 * RedisBreakerStore with breakers in one process: two stores on two connections stand for two
 * processes.
 */

const describeRedis = redisUrl ? describe : describe.skip;
const runId = `${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;
let seq = 0;
const uniqueName = (label: string): string => `${label}-${runId}-${seq++}`;

function configError(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (error) {
    if (isConfigError(error)) return error;
    throw error;
  }
  throw new Error('expected a ConfigError');
}

describe('RedisBreakerStore options', () => {
  const client = new Redis({ lazyConnect: true });

  it.each([
    [{ client: {} }, 'client'],
    [{ prefix: 'a{b' }, 'prefix'],
    [{ prefix: 42 }, 'prefix'],
    [{ flushIntervalMs: 0 }, 'flushIntervalMs'],
    [{ flushIntervalMs: 'often' }, 'flushIntervalMs'],
    [{ keyTtlMs: 10 }, 'keyTtlMs'],
    [{ probeLeaseMs: -1 }, 'probeLeaseMs'],
    [{ claimTimeoutMs: '2h' }, 'claimTimeoutMs'],
    [{ commandTimeoutMs: 0 }, 'commandTimeoutMs'],
    [{ commandTimeoutMs: '2m' }, 'commandTimeoutMs'],
    [{ quietPeriodMs: -1 }, 'quietPeriodMs'],
    [{ clock: Date }, 'clock'],
    [{ shardedPubSub: 'yes' }, 'shardedPubSub'],
    [{ onError: 'log' }, 'onError'],
    [{ subscriber: 'redis://localhost' }, 'subscriber'],
    [{ flushInterval: 100 }, 'flushInterval'],
  ])('rejects %j naming %s', (options, path) => {
    const error = configError(
      () => new RedisBreakerStore({ client, ...options } as unknown as RedisBreakerStoreOptions),
    );
    expect(error.path).toBe(path);
    expect(error.message).toContain('RedisBreakerStore');
  });

  it('rejects the command client as its subscriber', () => {
    expect(configError(() => new RedisBreakerStore({ client, subscriber: client })).path).toBe(
      'subscriber',
    );
  });

  it('ready() rejects within its bound while Redis cannot be reached', async () => {
    const nowhere = new Redis({ port: 1, lazyConnect: true, retryStrategy: () => 20 });
    nowhere.on('error', () => {});
    const store = new RedisBreakerStore({ client: nowhere });
    const started = performance.now();
    await expect(store.ready(100)).rejects.toMatchObject({ code: 'EREDISUNAVAILABLE' });
    expect(performance.now() - started).toBeLessThan(1_000);
    await store.close();
    nowhere.disconnect();
  });

  it('accepts durations as strings and exposes its prefix and channel', async () => {
    const subscriber = new Redis({ lazyConnect: true });
    const store = new RedisBreakerStore({
      client,
      subscriber,
      prefix: 'app:cb:',
      flushIntervalMs: '100ms',
    });
    expect(store.flushIntervalMs).toBe(100);
    expect(store.channel).toBe('app:cb:events');
    expect(store.redisKeys('plant-id')).toEqual(['app:cb:{plant-id}', 'app:cb:{plant-id}:probes']);
    // A `}` cannot end the hash tag early (an empty tag puts the two keys in different slots).
    expect(store.redisKeys('}edge')).toEqual(['app:cb:{%7Dedge}', 'app:cb:{%7Dedge}:probes']);
    expect(store.redisKeys('')[0]).toBe('app:cb:{%}');
    expect(store.available).toBe(false);
    await store.close();
  });
});

describeRedis.each(CLIENTS)(
  `RedisBreakerStore with breakers on %s${skipReason}`,
  (_label, createClient) => {
    const clients: Redis[] = [];
    const stores: RedisBreakerStore[] = [];
    let admin: Redis;

    async function newStore(options: Partial<RedisBreakerStoreOptions> = {}) {
      const client = createClient(redisUrl!);
      clients.push(client);
      await whenReady(client);
      const store = new RedisBreakerStore({ client, ...options });
      stores.push(store);
      await until(() => Promise.resolve(store.available), 'the store to subscribe', 3_000);
      return store;
    }

    beforeAll(async () => {
      admin = createClient(redisUrl!);
      await whenReady(admin);
    });

    afterEach(async () => {
      await Promise.all(stores.splice(0).map((s) => s.close()));
      for (const client of clients.splice(0)) client.disconnect();
    });

    afterAll(() => admin?.disconnect());

    const pair = async (options: Omit<CircuitBreakerOptions, 'name' | 'store'>) => {
      const name = uniqueName('pair');
      const [s1, s2] = [await newStore(), await newStore()];
      const b1 = new CircuitBreaker({ ...options, name, store: s1 });
      const b2 = new CircuitBreaker({ ...options, name, store: s2 });
      return { name, s1, s2, b1, b2 };
    };

    it('defaults to shared scope, and writes prefixed keys with the name as hash tag', async () => {
      const store = await newStore({ prefix: `t${runId}:` });
      const name = uniqueName('keys');
      const breaker = new CircuitBreaker({ name, store });
      await breaker.execute(() => Promise.resolve(1));
      await until(
        async () => (await admin.exists(`t${runId}:{${name}}`)) === 1,
        'the batch to be flushed',
        2_000,
      );
      expect(await admin.pttl(`t${runId}:{${name}}`)).toBeGreaterThan(0);
      expect(await admin.hget(`t${runId}:{${name}}`, 'wc')).toBe('1');
    });

    it('shares nothing in local scope', async () => {
      const store = await newStore();
      const name = uniqueName('local');
      const breaker = new CircuitBreaker({ name, store, scope: 'local', failureThreshold: 1 });
      await breaker.execute(() => Promise.reject(new Error('x'))).catch(() => undefined);
      expect(breaker.state).toBe('open');
      await sleep(store.flushIntervalMs + 50);
      expect(await admin.exists(store.redisKeys(name)[0])).toBe(0);
    });

    it('opens on a consecutive run once it held for two flush intervals, with no further calls', async () => {
      const { b1, b2 } = await pair({ failureThreshold: 3, openDurationMs: 60_000 });
      const seen: string[] = [];
      b2.on('stateChange', ({ to, reason }) => seen.push(`${to}: ${reason}`));
      for (let i = 0; i < 3; i++) {
        await b1.execute(() => Promise.reject(new Error('x'))).catch(() => undefined);
      }
      // The shared circuit decides: the local count alone does not open it.
      expect(b1.state).toBe('closed');
      const waited = await until(
        () => Promise.resolve(b1.state === 'open' && b2.state === 'open'),
        'both breakers to open',
        3_000,
      );
      expect(waited).toBeGreaterThan(300);
      expect(seen).toEqual(['open: 3 consecutive failures (cluster)']);
    });

    it('gives tryAcquire() a shared probe permit claimed in the background', async () => {
      const { b1, b2 } = await pair({ openDurationMs: 60_000, halfOpen: { maxConcurrent: 1 } });
      b1.openFor(50);
      await until(() => Promise.resolve(b2.state === 'open'), 'b2 to follow', 2_000);
      await sleep(80);
      // Due for a probe: the first call claims a permit and is turned away...
      expect(b1.tryAcquire()).toBeUndefined();
      const permit = await until(
        () => Promise.resolve(b1.state === 'half_open'),
        'b1 half-open',
        1_000,
      ).then(async () => {
        for (let i = 0; i < 100; i++) {
          const p = b1.tryAcquire();
          if (p !== undefined) return p;
          await sleep(5);
        }
        return undefined;
      });
      // ...a later one gets it, and it is the only permit anywhere.
      expect(permit).toBeDefined();
      expect(b2.tryAcquire()).toBeUndefined();
      await sleep(60);
      expect(b2.tryAcquire()).toBeUndefined();
      permit!.success();
      await until(
        () => Promise.resolve(b1.state === 'closed' && b2.state === 'closed'),
        'both breakers to close',
        2_000,
      );
    });

    it('gives back a permit claimed ahead and never used', async () => {
      const { b1, b2 } = await pair({ openDurationMs: 60_000 });
      b1.openFor(0);
      await until(() => Promise.resolve(b2.state !== 'closed'), 'b2 to follow', 2_000);
      expect(b1.tryAcquire()).toBeUndefined(); // claims ahead, then nobody calls b1 again
      await sleep(100);
      const refused = await b2.execute(() => Promise.resolve('probe')).catch((e: unknown) => e);
      expect(refused).toMatchObject({ code: 'ECIRCUITOPEN' });
      // Given back within about a second: b2 can probe.
      let result: unknown;
      await until(
        async () => {
          result = await b2.execute(() => Promise.resolve('probe')).catch(() => undefined);
          return result === 'probe';
        },
        'b2 to get a permit',
        3_000,
      );
      await until(() => Promise.resolve(b1.state === 'closed'), 'the probe to close b1', 2_000);
    });

    it('lets operator actions from either side apply to both', async () => {
      const { b1, b2 } = await pair({});
      b1.disable();
      await until(() => Promise.resolve(b2.state === 'disabled'), 'disable', 2_000);
      b2.openFor(60_000);
      await until(() => Promise.resolve(b1.state === 'open'), 'openFor', 2_000);
      expect(b1.retryAfterMs).toBeGreaterThan(59_000);
      b1.reset();
      await until(() => Promise.resolve(b2.state === 'closed'), 'reset', 2_000);
    });

    it('shares breakers created by registries from their defaults', async () => {
      const [s1, s2] = [await newStore(), await newStore()];
      const name = uniqueName('registry');
      const r1 = new CircuitBreakerRegistry({ defaults: { store: s1 } });
      const r2 = new CircuitBreakerRegistry({ defaults: { store: s2 } });
      r1.get(name).open();
      await until(
        () => Promise.resolve(r2.get(name).state === 'forced_open'),
        'r2 to follow',
        2_000,
      );
      r2.reset(name);
      await until(() => Promise.resolve(r1.get(name).state === 'closed'), 'r1 to follow', 2_000);
    });

    it('stops following once closed, and the breaker keeps working alone', async () => {
      const { s1, b1, b2 } = await pair({ failureThreshold: 1 });
      await s1.close();
      expect(s1.available).toBe(false);
      b2.open();
      await sleep(100);
      expect(b1.state).toBe('closed');
      await b1.execute(() => Promise.reject(new Error('x'))).catch(() => undefined);
      expect(b1.state).toBe('open');
    });
  },
);
