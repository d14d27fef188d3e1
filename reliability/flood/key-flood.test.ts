import { describe, expect, it, jest } from '@jest/globals';
import { CircuitBreakerRegistry, MemoryRateLimitStore, RateLimiter } from '@breakwater/core';
import * as expressAdapter from '@breakwater/express';
import * as koaAdapter from '@breakwater/koa';
import { FakeResponse, fakeContext, fakeRequest } from '../support/fakes';
import { mb, settledHeapUsed } from '../support/heap';
import { LONG } from '../support/paths';
import { report, type Figures } from '../support/report';

/**
 * Floods of distinct keys, the way a scan or a botnet produces them: a million client addresses
 * through a memory rate-limit store, a hundred thousand distinct URLs through the route breakers.
 * Memory must stay under the configured bounds; the heap is measured after forced collections.
 */

const KEYS = LONG ? 5_000_000 : 1_000_000;
const PATHS = LONG ? 1_000_000 : 100_000;
const MAX_KEYS = 10_000;
const MAX_ROUTES = 1_000;
/** What the bounded structures may add to the heap; unbounded, the floods need hundreds of MB. */
const HEAP_BOUND = 32 * 1_048_576;

const figures: Figures[] = [];

class ManualClock {
  constructor(public time = 1_700_000_000_000) {}
  now(): number {
    return this.time;
  }
}

function ipv4(i: number): string {
  return `${(i >>> 24) & 255}.${(i >>> 16) & 255}.${(i >>> 8) & 255}.${i & 255}`;
}

describe('key flood', () => {
  it(`keeps ${KEYS.toLocaleString('en')} distinct client keys within maxKeys, recent keys kept`, async () => {
    const clock = new ManualClock();
    const heapBefore = settledHeapUsed();
    const store = new MemoryRateLimitStore({ maxKeys: MAX_KEYS, sweepIntervalMs: 0, clock });
    const limiter = new RateLimiter({ name: 'flood', rate: '1000000/h', store, clock });
    let hotHits = 0;
    let largest = 0;
    const started = performance.now();
    for (let i = 0; i < KEYS; i++) {
      const decision = await limiter.consume(ipv4(0x0a000000 + i));
      if (!decision.allowed) throw new Error(`key ${i} refused: every key is new`);
      if (i % 1_000 === 0) {
        // A client that keeps coming back stays among the recently used keys.
        await limiter.consume('hot-client');
        hotHits++;
      }
      if (i % 10_000 === 0) largest = Math.max(largest, store.size);
    }
    const seconds = (performance.now() - started) / 1_000;
    largest = Math.max(largest, store.size);
    const heapAfter = settledHeapUsed();

    expect(largest).toBeLessThanOrEqual(MAX_KEYS);
    expect(store.size).toBe(MAX_KEYS);
    // The hot key was never evicted: every one of its hits is still counted.
    const hot = await limiter.consume('hot-client', 0);
    expect(hot.remaining).toBe(1_000_000 - hotHits);
    // The first keys, never used again, were evicted (least recently used first).
    expect((await limiter.consume(ipv4(0x0a000000), 0)).remaining).toBe(1_000_000);
    expect(heapAfter - heapBefore).toBeLessThan(HEAP_BOUND);
    figures.push({
      flood: 'client keys, no expiry (LRU eviction)',
      keys: KEYS,
      bound: `maxKeys ${MAX_KEYS}`,
      'largest size': largest,
      'heap growth': mb(heapAfter - heapBefore),
      'decisions/s': Math.round((KEYS + hotHits) / seconds),
    });
    await limiter.close();
  }, 120_000);

  it('drops expired keys with its one background sweep as the clock moves on', async () => {
    jest.useFakeTimers();
    try {
      const clock = new ManualClock();
      const heapBefore = settledHeapUsed();
      const store = new MemoryRateLimitStore({ maxKeys: MAX_KEYS, sweepIntervalMs: 1_000, clock });
      const limiter = new RateLimiter({ name: 'expiring', rate: '5/s', store, clock });
      let largest = 0;
      const count = KEYS / 4;
      for (let i = 0; i < count; i++) {
        clock.time += 1; // one new client per millisecond, each window one second long
        await limiter.consume(`client-${i}`);
        if (i % 1_000 === 999) {
          largest = Math.max(largest, store.size);
          jest.advanceTimersByTime(1_000); // the sweep's turn
        }
      }
      const heapAfter = settledHeapUsed();
      expect(largest).toBeLessThanOrEqual(MAX_KEYS);
      // The sweep keeps about two windows' worth of keys: the expired ones are gone.
      expect(store.size).toBeLessThanOrEqual(2_000);
      // The newest client is still counted.
      expect((await limiter.consume(`client-${count - 1}`, 0)).remaining).toBe(4);
      expect(heapAfter - heapBefore).toBeLessThan(HEAP_BOUND);
      figures.push({
        flood: 'client keys, 1 s windows, sweep every 1 s',
        keys: count,
        bound: `maxKeys ${MAX_KEYS}`,
        'largest size': largest,
        'heap growth': mb(heapAfter - heapBefore),
        'decisions/s': '',
      });
      await limiter.close();
    } finally {
      jest.useRealTimers();
    }
  }, 120_000);

  it(`keeps ${PATHS.toLocaleString('en')} distinct paths through Express circuitBreaker within maxRoutes + overflow`, () => {
    const registry = new CircuitBreakerRegistry();
    const middleware = expressAdapter.circuitBreaker({ registry, maxRoutes: MAX_ROUTES });
    const heapBefore = settledHeapUsed();
    let passed = 0;
    let largest = 0;
    for (let i = 0; i < PATHS; i++) {
      const method = i % 3 === 0 ? 'POST' : i % 3 === 1 ? 'HEAD' : 'GET';
      const res = new FakeResponse();
      let next = false;
      middleware(fakeRequest({ method, url: `/files/${i.toString(36)}/x` }), res.express, () => {
        next = true;
      });
      if (next) {
        passed++;
        res.end('ok'); // settles the permit as a success
      }
      if (i % 1_000 === 0) largest = Math.max(largest, registry.size);
    }
    const heapAfter = settledHeapUsed();
    largest = Math.max(largest, registry.size);
    // HEAD shares GET's breakers; the overflow breakers are 'GET *' and 'POST *'.
    expect(largest).toBeLessThanOrEqual(MAX_ROUTES + 2);
    expect(registry.has('GET *')).toBe(true);
    expect(registry.has('POST *')).toBe(true);
    expect(passed).toBe(PATHS);
    expect(heapAfter - heapBefore).toBeLessThan(HEAP_BOUND);
    figures.push({
      flood: 'paths through Express circuitBreaker',
      keys: PATHS,
      bound: `maxRoutes ${MAX_ROUTES} + 2 overflow`,
      'largest size': largest,
      'heap growth': mb(heapAfter - heapBefore),
      'decisions/s': '',
    });
  }, 120_000);

  it(`keeps ${PATHS.toLocaleString('en')} distinct paths through Koa circuitBreaker within maxRoutes + overflow`, async () => {
    const registry = new CircuitBreakerRegistry();
    const middleware = koaAdapter.circuitBreaker({ registry, maxRoutes: MAX_ROUTES });
    const heapBefore = settledHeapUsed();
    let largest = 0;
    for (let i = 0; i < PATHS; i++) {
      const ctx = fakeContext({ method: i % 2 === 0 ? 'GET' : 'DELETE', url: `/u/${i}` });
      await middleware(ctx.koa, () => {
        ctx.status = 200;
        return Promise.resolve();
      });
      if (ctx.status !== 200) throw new Error(`request ${i} answered ${ctx.status}`);
      if (i % 1_000 === 0) largest = Math.max(largest, registry.size);
    }
    const heapAfter = settledHeapUsed();
    largest = Math.max(largest, registry.size);
    expect(largest).toBeLessThanOrEqual(MAX_ROUTES + 2);
    expect(heapAfter - heapBefore).toBeLessThan(HEAP_BOUND);
    figures.push({
      flood: 'paths through Koa circuitBreaker',
      keys: PATHS,
      bound: `maxRoutes ${MAX_ROUTES} + 2 overflow`,
      'largest size': largest,
      'heap growth': mb(heapAfter - heapBefore),
      'decisions/s': '',
    });
  }, 120_000);

  it('reports its figures', () => {
    expect(figures).toHaveLength(4);
    report('key-flood', figures);
  });
});
