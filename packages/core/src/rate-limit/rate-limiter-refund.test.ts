import { describe, expect, it } from '@jest/globals';
import { MemoryRateLimitStore } from './memory-rate-limit-store';
import type { RateLimitDecision, RateLimitRule, RateLimitStore } from './rate-limit-store';
import { RateLimiter } from './rate-limiter';

/** A remote-looking store over a memory store, switchable between working and failing. */
class RemoteStore implements RateLimitStore {
  failing = false;
  refunds = 0;
  readonly inner = new MemoryRateLimitStore({ sweepIntervalMs: 0 });

  consume(key: string, cost: number, rule: RateLimitRule): Promise<RateLimitDecision> {
    if (this.failing) return Promise.reject(new Error('store down'));
    return this.inner.consume(key, cost, rule);
  }

  refund(key: string, cost: number, rule: RateLimitRule): Promise<void> {
    this.refunds++;
    if (this.failing) return Promise.reject(new Error('store down'));
    return this.inner.refund(key, cost, rule);
  }

  reset(key: string, rule: RateLimitRule): Promise<void> {
    return this.inner.reset(key, rule);
  }
}

describe('RateLimiter.refund', () => {
  it('gives units back on a local store', async () => {
    const limiter = new RateLimiter({ name: 'api', limit: 3, window: '1h' });
    await limiter.consume('k', 3);
    await limiter.refund('k', 2);
    expect((await limiter.consume('k', 0)).remaining).toBe(2);
    await limiter.refund('k');
    expect((await limiter.consume('k', 0)).remaining).toBe(3);
    await limiter.close();
  });

  it('goes through the guard to a remote store', async () => {
    const store = new RemoteStore();
    const limiter = new RateLimiter({ name: 'api', limit: 3, window: '1h', store });
    await limiter.consume('k', 3);
    await limiter.refund('k', 1);
    expect(store.refunds).toBe(1);
    expect((await limiter.consume('k', 0)).remaining).toBe(1);
    await limiter.close();
  });

  it('never rejects when the store fails, and refunds the fallback store instead', async () => {
    const store = new RemoteStore();
    const fallbackStore = new MemoryRateLimitStore({ sweepIntervalMs: 0 });
    const limiter = new RateLimiter({
      name: 'api',
      limit: 3,
      window: '1h',
      store,
      fallbackStore,
      breaker: { failureThreshold: 1 },
    });
    const failures: unknown[] = [];
    limiter.on('storeFailure', ({ error }) => failures.push(error));
    store.failing = true;
    await limiter.consume('k', 3); // answered by the fallback; opens the circuit
    await expect(limiter.refund('k', 3)).resolves.toBeUndefined();
    expect(store.refunds).toBe(0); // the circuit is open: the store is not called
    expect((await limiter.consume('k', 0)).remaining).toBe(3);
    expect(failures).toHaveLength(1);
    await limiter.close();
  });

  it('is skipped for a store without refund', async () => {
    const inner = new MemoryRateLimitStore({ sweepIntervalMs: 0 });
    const store: RateLimitStore = {
      consume: (key, cost, rule) => inner.consume(key, cost, rule),
      reset: (key, rule) => inner.reset(key, rule),
    };
    const limiter = new RateLimiter({ name: 'api', limit: 3, window: '1h', store });
    await limiter.consume('k', 2);
    await expect(limiter.refund('k', 2)).resolves.toBeUndefined();
    expect((await limiter.consume('k', 0)).remaining).toBe(1);
    await limiter.close();
  });

  it('rejects a bad key or cost', async () => {
    const limiter = new RateLimiter({ name: 'api', limit: 3, window: '1h' });
    await expect(limiter.refund(1 as unknown as string)).rejects.toThrow(TypeError);
    await expect(limiter.refund('k', -1)).rejects.toThrow(TypeError);
    await expect(limiter.refund('k', 1.5)).rejects.toThrow(TypeError);
    await limiter.close();
  });
});
