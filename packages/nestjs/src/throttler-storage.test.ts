import { describe, expect, it, jest } from '@jest/globals';
import {
  CircuitBreaker,
  MemoryRateLimitStore,
  isConfigError,
  type RateLimitDecision,
  type RateLimitStore,
} from '@breakwater/core';
import { BreakwaterThrottlerStorage } from './throttler-storage';

function clockAt(time: number): { now(): number; time: number } {
  return {
    time,
    now() {
      return this.time;
    },
  };
}

describe('BreakwaterThrottlerStorage', () => {
  it('takes ttl and blockDuration in milliseconds and answers in seconds', async () => {
    const clock = clockAt(0);
    const storage = new BreakwaterThrottlerStorage({
      clock,
      store: new MemoryRateLimitStore({ clock }),
    });
    const hit = () => storage.increment('k', 60_000, 2, 60_000, 'default');
    await expect(hit()).resolves.toEqual({
      totalHits: 1,
      timeToExpire: 60,
      isBlocked: false,
      timeToBlockExpire: 0,
    });
    clock.time = 10_500;
    await expect(hit()).resolves.toEqual({
      totalHits: 2,
      timeToExpire: 50,
      isBlocked: false,
      timeToBlockExpire: 0,
    });
    clock.time = 20_000;
    // Blocked for blockDuration from the refusal, as the throttler's own storage does.
    await expect(hit()).resolves.toEqual({
      totalHits: 3,
      timeToExpire: 60,
      isBlocked: true,
      timeToBlockExpire: 60,
    });
    clock.time = 79_000;
    await expect(hit()).resolves.toMatchObject({ isBlocked: true, timeToBlockExpire: 1 });
    clock.time = 80_000;
    await expect(hit()).resolves.toMatchObject({ isBlocked: false, totalHits: 1 });
    await storage.close();
  });

  it('keeps throttlers and rules apart and reuses one limiter per rule', async () => {
    const clock = clockAt(0);
    const storage = new BreakwaterThrottlerStorage({
      clock,
      store: new MemoryRateLimitStore({ clock }),
      maxRules: 2,
    });
    await storage.increment('k', 1_000, 1, 0, 'short');
    await expect(storage.increment('k', 1_000, 1, 0, 'short')).resolves.toMatchObject({
      isBlocked: true,
    });
    await expect(storage.increment('k', 60_000, 5, 0, 'long')).resolves.toMatchObject({
      isBlocked: false,
      totalHits: 1,
    });
    // A third rule evicts the oldest; the store still holds its counts.
    await storage.increment('k', 5_000, 9, 0, 'other');
    await expect(storage.increment('k', 1_000, 1, 0, 'short')).resolves.toMatchObject({
      isBlocked: true,
    });
    await storage.close();
  });

  it('never rejects while the store is down, and shares one breaker across throttlers', async () => {
    const consume = jest.fn<RateLimitStore['consume']>(() =>
      Promise.reject(new Error('ECONNREFUSED')),
    );
    const store: RateLimitStore = { consume, reset: () => Promise.resolve() };
    const clock = clockAt(0);
    const breaker = new CircuitBreaker({ name: 'redis', failureThreshold: 2, clock });
    const storage = new BreakwaterThrottlerStorage({ store, breaker, clock });
    for (const name of ['a', 'b', 'c', 'd']) {
      await expect(storage.increment('k', 60_000, 1, 0, name)).resolves.toMatchObject({
        isBlocked: false,
      });
    }
    expect(consume).toHaveBeenCalledTimes(2);
    expect(storage.health()).toMatchObject({ status: 'warn', store: 'fallback', breaker: 'open' });
    await storage.close();
  });

  it.each([
    [
      { storage: { increment: () => Promise.resolve({}) }, store: new MemoryRateLimitStore() },
      'storage',
    ],
    [{ storage: {} }, 'storage'],
    [{ fallbackStore: new MemoryRateLimitStore() }, 'fallbackStore'],
    [{ maxKeys: 0 }, 'maxKeys'],
    [
      { storage: { increment: () => Promise.reject(new Error('x')) }, onStoreFailure: 'ignore' },
      'onStoreFailure',
    ],
    [
      { storage: { increment: () => Promise.reject(new Error('x')) }, storeTimeoutMs: -1 },
      'storeTimeoutMs',
    ],
    [
      {
        storage: { increment: () => Promise.reject(new Error('x')) },
        breaker: { failureThreshold: 0 },
      },
      'breaker.failureThreshold',
    ],
    [{ clock: {} }, 'clock'],
  ])('names the option at fault: %p', (options, path) => {
    try {
      new BreakwaterThrottlerStorage(options as never);
      throw new Error('no error');
    } catch (error) {
      expect(isConfigError(error) && error.path).toBe(path);
    }
  });

  it('logs once when the storage fails and once when it recovers, even through a throwing logger', async () => {
    let failing = true;
    const lines: string[] = [];
    const storage = new BreakwaterThrottlerStorage({
      storage: {
        increment: () =>
          failing
            ? Promise.reject(new Error('ECONNREFUSED'))
            : Promise.resolve({
                totalHits: 1,
                timeToExpire: 1,
                isBlocked: false,
                timeToBlockExpire: 0,
              }),
      },
      breaker: { failureThreshold: 10 },
      logger: {
        info: (line: string) => lines.push(line),
        warn: (line: string) => {
          lines.push(line);
          throw new Error('logger down');
        },
        error: () => undefined,
      },
    });
    await storage.increment('k', 1_000, 5, 1_000, 'default');
    await storage.increment('k', 1_000, 5, 1_000, 'default');
    failing = false;
    await storage.increment('k', 1_000, 5, 1_000, 'default');
    expect(lines).toEqual([
      '[THROTTLER] throttler storage failing -> fallback (ECONNREFUSED)',
      '[THROTTLER] throttler storage recovered',
    ]);
    expect(storage.health()).toMatchObject({ status: 'pass', store: 'primary' });
  });

  it('rejects bad options at construction', () => {
    expect(() => new BreakwaterThrottlerStorage({ maxRules: 0 })).toThrow(/maxRules/);
    expect(() => new BreakwaterThrottlerStorage({ algorithm: 'leaky' as never })).toThrow(
      /algorithm/,
    );
    try {
      new BreakwaterThrottlerStorage({ ttl: 5 } as never);
      throw new Error('no error');
    } catch (error) {
      expect(isConfigError(error) && error.path).toBe('ttl');
    }
  });

  it('maps a sliding-window decision', async () => {
    const decision: RateLimitDecision = {
      allowed: true,
      limit: 10,
      remaining: 7,
      resetMs: 1_200,
      retryAfterMs: 0,
    };
    const store: RateLimitStore = {
      local: true,
      consume: () => Promise.resolve(decision),
      reset: () => Promise.resolve(),
    };
    const storage = new BreakwaterThrottlerStorage({ store, algorithm: 'sliding-window' });
    await expect(storage.increment('k', 60_000, 10, 0, 'default')).resolves.toEqual({
      totalHits: 3,
      timeToExpire: 2,
      isBlocked: false,
      timeToBlockExpire: 0,
    });
    await storage.close();
  });
});
