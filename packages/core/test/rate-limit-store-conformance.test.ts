import { describe, it } from '@jest/globals';
import {
  FailoverRateLimitStore,
  MemoryRateLimitStore,
  type RateLimitDecision,
  type RateLimitRule,
  type RateLimitStore,
} from '@breakwater/core';
import { describeRateLimitStore } from '@breakwater/core/testing';

/** A remote-looking store (not local, answers on a later tick) over a memory store. */
class AsyncStore implements RateLimitStore {
  private readonly inner = new MemoryRateLimitStore({ sweepIntervalMs: 0 });

  async consume(key: string, cost: number, rule: RateLimitRule): Promise<RateLimitDecision> {
    await new Promise<void>((resolve) => setImmediate(resolve));
    return this.inner.consumeSync(key, cost, rule);
  }

  async refund(key: string, cost: number, rule: RateLimitRule): Promise<void> {
    await new Promise<void>((resolve) => setImmediate(resolve));
    this.inner.refundSync(key, cost, rule);
  }

  async reset(key: string, rule: RateLimitRule): Promise<void> {
    await new Promise<void>((resolve) => setImmediate(resolve));
    await this.inner.reset(key, rule);
  }
}

/** A store that is always down. */
const deadStore: RateLimitStore = {
  consume: () => Promise.reject(new Error('connection refused')),
  reset: () => Promise.reject(new Error('connection refused')),
};

describeRateLimitStore('MemoryRateLimitStore', () => new MemoryRateLimitStore(), {
  describe,
  it,
});

describeRateLimitStore(
  'FailoverRateLimitStore (remote store first)',
  () => new FailoverRateLimitStore([new AsyncStore(), new MemoryRateLimitStore()]),
  { describe, it },
);

describeRateLimitStore(
  'FailoverRateLimitStore (dead store first)',
  () => new FailoverRateLimitStore([deadStore, new AsyncStore(), new MemoryRateLimitStore()]),
  { describe, it, cleanup: () => undefined },
);
