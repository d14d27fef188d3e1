import { afterEach, describe, expect, it, jest } from '@jest/globals';
import { ConfigError } from '../errors';
import { MemoryRateLimitStore, type MemoryRateLimitStoreOptions } from './memory-rate-limit-store';
import type { RateLimitRule } from './rate-limit-store';

function fakeClock(start = 0): { now(): number; advance(ms: number): void } {
  let time = start;
  return {
    now: () => time,
    advance: (ms) => {
      time += ms;
    },
  };
}

const rule = (name: string, windowMs = 10_000, limit = 5): RateLimitRule =>
  Object.freeze({
    name,
    algorithm: 'fixed-window',
    limit,
    windowMs,
    burst: limit,
    blockDurationMs: 0,
  });

afterEach(() => {
  jest.useRealTimers();
});

describe('MemoryRateLimitStore options', () => {
  it.each([
    [{ maxKeys: 0 }, 'maxKeys'],
    [{ maxKeys: -1 }, 'maxKeys'],
    [{ maxKeys: 1.5 }, 'maxKeys'],
    [{ maxKeys: '10' }, 'maxKeys'],
    [{ sweepIntervalMs: -5 }, 'sweepIntervalMs'],
    [{ sweepIntervalMs: 'often' }, 'sweepIntervalMs'],
    [{ sweepIntervalMs: 3_000_000_000 }, 'sweepIntervalMs'],
    [{ clock: Date }, 'clock'],
    [{ maxkeys: 10 }, 'maxkeys'],
  ])('rejects %j naming %s', (options, path) => {
    expect(() => new MemoryRateLimitStore(options as MemoryRateLimitStoreOptions)).toThrow(
      ConfigError,
    );
    try {
      new MemoryRateLimitStore(options as MemoryRateLimitStoreOptions);
    } catch (error) {
      expect((error as ConfigError).path).toBe(path);
      expect((error as ConfigError).message).toContain(`MemoryRateLimitStore: option "${path}"`);
    }
  });

  it('defaults to 10 000 keys and is local', () => {
    const store = new MemoryRateLimitStore();
    expect(store.maxKeys).toBe(10_000);
    expect(store.local).toBe(true);
    store.close();
  });
});

describe('MemoryRateLimitStore', () => {
  it('runs the algorithm with its clock and resolves the decision', async () => {
    const clock = fakeClock(1_000);
    const store = new MemoryRateLimitStore({ clock, sweepIntervalMs: 0 });
    const r = rule('a', 1_000, 2);
    await expect(store.consume('k', 1, r)).resolves.toEqual({
      allowed: true,
      limit: 2,
      remaining: 1,
      resetMs: 1_000,
      retryAfterMs: 0,
    });
    clock.advance(400);
    expect(store.consumeSync('k', 2, r)).toMatchObject({ allowed: false, retryAfterMs: 600 });
    clock.advance(600);
    expect(store.consumeSync('k', 2, r)).toMatchObject({ allowed: true, remaining: 0 });
  });

  it('floors a fractional clock', () => {
    const store = new MemoryRateLimitStore({ clock: { now: () => 1_234.9 }, sweepIntervalMs: 0 });
    expect(store.consumeSync('k', 1, rule('a', 1_000))).toMatchObject({ resetMs: 766 });
  });

  it('namespaces keys by rule name, not by rule object', () => {
    const store = new MemoryRateLimitStore({ sweepIntervalMs: 0 });
    store.consumeSync('k', 5, rule('a'));
    expect(store.consumeSync('k', 1, rule('a')).allowed).toBe(false);
    expect(store.consumeSync('k', 1, rule('b')).allowed).toBe(true);
    expect(store.size).toBe(2);
  });

  it('stores nothing for a peek or an impossible cost on a new key', () => {
    const store = new MemoryRateLimitStore({ sweepIntervalMs: 0 });
    store.consumeSync('k', 0, rule('a'));
    store.consumeSync('k', 99, rule('a'));
    expect(store.size).toBe(0);
  });

  it('reset forgets one key; clear forgets all', async () => {
    const store = new MemoryRateLimitStore({ sweepIntervalMs: 0 });
    const r = rule('a');
    store.consumeSync('k', 5, r);
    store.consumeSync('j', 5, r);
    await store.reset('k', r);
    await store.reset('missing', r);
    expect(store.consumeSync('k', 1, r)).toMatchObject({ allowed: true, remaining: 4 });
    expect(store.consumeSync('j', 1, r).allowed).toBe(false);
    store.clear();
    expect(store.size).toBe(0);
    expect(store.consumeSync('j', 1, r).allowed).toBe(true);
  });

  it('drops a key that expired when it is next read', () => {
    const clock = fakeClock();
    const store = new MemoryRateLimitStore({ clock, sweepIntervalMs: 0 });
    store.consumeSync('k', 1, rule('a', 1_000));
    clock.advance(1_000);
    store.consumeSync('k', 0, rule('a', 1_000));
    expect(store.size).toBe(0);
  });
});

describe('MemoryRateLimitStore bounds', () => {
  it('never holds more than maxKeys, with 100 000 distinct keys', () => {
    const clock = fakeClock();
    const store = new MemoryRateLimitStore({ maxKeys: 1_000, clock, sweepIntervalMs: 0 });
    const r = rule('a', 60_000);
    let max = 0;
    for (let i = 0; i < 100_000; i++) {
      store.consumeSync(`key-${i}`, 1, r);
      if (store.size > max) max = store.size;
      if (i % 100 === 0) clock.advance(1);
    }
    expect(max).toBe(1_000);
    // The most recent keys are the ones kept.
    expect(store.consumeSync('key-99999', 0, r).remaining).toBe(4);
    expect(store.consumeSync('key-0', 0, r).remaining).toBe(5);
  });

  it('evicts the least recently used key when none has expired', () => {
    const store = new MemoryRateLimitStore({ maxKeys: 3, sweepIntervalMs: 0 });
    const r = rule('a');
    store.consumeSync('a', 1, r);
    store.consumeSync('b', 1, r);
    store.consumeSync('c', 1, r);
    store.consumeSync('a', 1, r); // a is now the most recent
    store.consumeSync('d', 1, r);
    expect(store.size).toBe(3);
    expect(store.consumeSync('a', 0, r).remaining).toBe(3);
    expect(store.consumeSync('c', 0, r).remaining).toBe(4);
    expect(store.consumeSync('d', 0, r).remaining).toBe(4);
    expect(store.consumeSync('b', 0, r).remaining).toBe(5); // evicted
  });

  it('evicts expired keys before live ones, even when a live key is older', () => {
    const clock = fakeClock();
    const store = new MemoryRateLimitStore({ maxKeys: 3, clock, sweepIntervalMs: 0 });
    const long = rule('long', 60_000);
    const short = rule('short', 1_000);
    store.consumeSync('c', 1, long); // oldest, live
    store.consumeSync('b', 1, short); // expires at 1 000
    store.consumeSync('a', 1, long);
    clock.advance(2_000);
    store.consumeSync('d', 1, long);
    expect(store.size).toBe(3);
    expect(store.consumeSync('c', 0, long).remaining).toBe(4); // kept
    expect(store.consumeSync('a', 0, long).remaining).toBe(4);
  });

  it('keeps at most one sweep timer, started with the first key, stopped when empty or closed', () => {
    jest.useFakeTimers({ now: 0 });
    const store = new MemoryRateLimitStore({ sweepIntervalMs: 10_000 });
    const r = rule('a', 1_000);
    expect(jest.getTimerCount()).toBe(0);
    for (let i = 0; i < 1_000; i++) store.consumeSync(`k${i}`, 1, r);
    expect(jest.getTimerCount()).toBe(1);
    jest.advanceTimersByTime(10_000);
    expect(store.size).toBe(0);
    expect(jest.getTimerCount()).toBe(0);
    store.consumeSync('again', 1, r);
    expect(jest.getTimerCount()).toBe(1);
    store.close();
    expect(jest.getTimerCount()).toBe(0);
    store.consumeSync('after-close', 1, r);
    expect(jest.getTimerCount()).toBe(0);
  });

  it('the sweep drops only expired keys', () => {
    jest.useFakeTimers({ now: 0 });
    const store = new MemoryRateLimitStore({ sweepIntervalMs: 5_000 });
    store.consumeSync('short', 1, rule('short', 1_000));
    store.consumeSync('long', 1, rule('long', 60_000));
    jest.advanceTimersByTime(5_000);
    expect(store.size).toBe(1);
    expect(store.consumeSync('long', 0, rule('long', 60_000)).remaining).toBe(4);
    store.close();
  });

  it('runs no timer when the sweep is off', () => {
    jest.useFakeTimers();
    const store = new MemoryRateLimitStore({ sweepIntervalMs: 0 });
    store.consumeSync('k', 1, rule('a'));
    expect(jest.getTimerCount()).toBe(0);
  });
});
