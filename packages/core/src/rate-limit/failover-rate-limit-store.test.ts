import { afterEach, beforeEach, describe, expect, it, jest } from '@jest/globals';
import { CircuitBreaker } from '../breaker/circuit-breaker';
import { ConfigError, isCircuitOpenError } from '../errors';
import {
  FailoverRateLimitStore,
  type FailoverRateLimitStoreOptions,
} from './failover-rate-limit-store';
import { MemoryRateLimitStore } from './memory-rate-limit-store';
import type { RateLimitDecision, RateLimitRule, RateLimitStore } from './rate-limit-store';
import { RateLimiter } from './rate-limiter';

type Mode = 'ok' | 'reject' | 'hang';

class FakeStore implements RateLimitStore {
  mode: Mode = 'ok';
  calls = 0;
  closed = 0;
  readonly inner = new MemoryRateLimitStore({ sweepIntervalMs: 0 });

  consume(key: string, cost: number, rule: RateLimitRule): Promise<RateLimitDecision> {
    this.calls++;
    if (this.mode === 'reject') return Promise.reject(new Error(`down`));
    if (this.mode === 'hang') return new Promise<RateLimitDecision>(() => {});
    return this.inner.consume(key, cost, rule);
  }

  reset(key: string, rule: RateLimitRule): Promise<void> {
    if (this.mode === 'reject') return Promise.reject(new Error('down'));
    return this.inner.reset(key, rule);
  }

  close(): void {
    this.closed++;
  }
}

const rule: RateLimitRule = Object.freeze({
  name: 'api',
  algorithm: 'fixed-window',
  limit: 5,
  windowMs: 3_600_000,
  burst: 5,
  blockDurationMs: 0,
});

afterEach(() => {
  jest.useRealTimers();
});

describe('FailoverRateLimitStore options', () => {
  it.each([
    [[], {}, 'stores'],
    ['nope', {}, 'stores'],
    [[{}], {}, 'stores[0]'],
    [[new FakeStore(), { consume: () => 1 }], {}, 'stores[1]'],
    [[new FakeStore()], { storeTimeoutMs: 0 }, 'storeTimeoutMs'],
    [[new FakeStore()], { breaker: { failureThreshold: -1 } }, 'breaker.failureThreshold'],
    [[new FakeStore()], { breaker: new CircuitBreaker({ name: 'x' }) }, 'breaker'],
    [[new FakeStore()], { name: '' }, 'name'],
    [[new FakeStore()], { timeout: 5 }, 'timeout'],
  ])('rejects %j %j naming %s', (stores, options, path) => {
    let error: unknown;
    try {
      new FailoverRateLimitStore(
        stores as RateLimitStore[],
        options as FailoverRateLimitStoreOptions,
      );
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).path).toBe(path);
  });

  it('is not local; gives each remote member its own breaker and none to a local one', () => {
    const store = new FailoverRateLimitStore(
      [new FakeStore(), new FakeStore(), new MemoryRateLimitStore()],
      { name: 'limits' },
    );
    expect(store.local).toBe(false);
    expect(store.breakers.map((b) => b?.name)).toEqual(['limits[0]', 'limits[1]', undefined]);
    expect(store.worstCaseMs).toBe(200);
  });
});

describe('FailoverRateLimitStore over three stores', () => {
  let first: FakeStore;
  let second: FakeStore;
  let third: FakeStore;
  let store: FailoverRateLimitStore;
  beforeEach(() => {
    jest.useFakeTimers({ now: 0 });
    first = new FakeStore();
    second = new FakeStore();
    third = new FakeStore();
    store = new FailoverRateLimitStore([first, second, third]);
  });

  it('uses the first store while it answers', async () => {
    await expect(store.consume('k', 1, rule)).resolves.toMatchObject({ remaining: 4 });
    expect([first.calls, second.calls, third.calls]).toEqual([1, 0, 0]);
  });

  it('moves on when a store fails, and stops calling it once its circuit opens', async () => {
    first.mode = 'reject';
    for (let i = 1; i <= 5; i++) {
      await expect(store.consume('k', 1, rule)).resolves.toMatchObject({ remaining: 5 - i });
    }
    expect(first.calls).toBe(3);
    expect(second.calls).toBe(5);
    expect(third.calls).toBe(0);
    expect(store.health()).toEqual([
      { index: 0, local: false, breaker: 'open' },
      { index: 1, local: false, breaker: 'closed' },
      { index: 2, local: false, breaker: 'closed' },
    ]);
  });

  it('reaches the third store when the first two are down', async () => {
    first.mode = 'reject';
    second.mode = 'reject';
    await expect(store.consume('k', 2, rule)).resolves.toMatchObject({ remaining: 3 });
    expect(third.calls).toBe(1);
  });

  it('a hanging store costs storeTimeoutMs until its circuit opens, then nothing', async () => {
    first.mode = 'hang';
    for (let i = 0; i < 3; i++) {
      let done = false;
      void store.consume('k', 1, rule).then(() => (done = true));
      await jest.advanceTimersByTimeAsync(99);
      expect(done).toBe(false);
      await jest.advanceTimersByTimeAsync(1);
      expect(done).toBe(true);
    }
    let done = false;
    void store.consume('k', 1, rule).then(() => (done = true));
    await jest.advanceTimersByTimeAsync(0);
    expect(done).toBe(true);
    expect(first.calls).toBe(3);
  });

  it('returns to the first store once a probe succeeds', async () => {
    first.mode = 'reject';
    for (let i = 0; i < 3; i++) await store.consume('k', 1, rule);
    first.mode = 'ok';
    await jest.advanceTimersByTimeAsync(5_000);
    await expect(store.consume('k', 1, rule)).resolves.toMatchObject({ remaining: 4 });
    expect(first.calls).toBe(4);
    expect(store.breakers[0]?.state).toBe('closed');
  });

  it('rejects with the last error when every store fails, and CircuitOpenError when all are open', async () => {
    first.mode = second.mode = third.mode = 'reject';
    for (let i = 0; i < 3; i++) {
      await expect(store.consume('k', 1, rule)).rejects.toThrow('down');
    }
    const error = await store.consume('k', 1, rule).catch((e: unknown) => e);
    expect(isCircuitOpenError(error)).toBe(true);
    expect(error).toMatchObject({ retryAfterMs: 5_000 });
  });

  it('resets every member that answers and fails only when none does', async () => {
    await store.consume('k', 5, rule);
    second.mode = 'reject';
    await store.reset('k', rule);
    await expect(first.inner.consume('k', 0, rule)).resolves.toMatchObject({ remaining: 5 });
    first.mode = third.mode = 'reject';
    await expect(store.reset('k', rule)).rejects.toThrow('down');
  });

  it('closes every member', async () => {
    await store.close();
    expect([first.closed, second.closed, third.closed]).toEqual([1, 1, 1]);
  });

  it('behind a limiter, a dead first store does not put the limiter in fallback', async () => {
    const limiter = new RateLimiter({ name: 'api', rate: '5/h', store });
    first.mode = 'reject';
    for (let i = 1; i <= 5; i++) {
      await expect(limiter.consume('k')).resolves.toMatchObject({ remaining: 5 - i });
    }
    expect(second.calls).toBe(5);
    expect(limiter.health()).toMatchObject({ status: 'pass', store: 'primary' });
  });
});
