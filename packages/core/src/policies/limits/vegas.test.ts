import { describe, expect, it } from '@jest/globals';
import { log10Root, VegasLimit } from './vegas';

const never = { probeMultiplier: 1_000_000 };

describe('VegasLimit', () => {
  it('log10Root is max(1, floor(log10(n)))', () => {
    expect([1, 9, 10, 99, 100, 999, 1000, 12_345].map(log10Root)).toEqual([1, 1, 1, 1, 2, 2, 3, 4]);
  });

  it('takes the first latency as no-load, then rises by beta while nothing queues', () => {
    const limit = new VegasLimit({ initialLimit: 10, minLimit: 1, maxLimit: 40 }, never);
    expect(limit.update(10, 10, false)).toBe(10); // no-load latency = 10
    // queue = ceil(10 * (1 - 10 / 10)) = 0 <= log10Root(10) = 1: limit + beta (6)
    const trace = Array.from({ length: 6 }, () => limit.update(10, 40, false));
    expect(trace).toEqual([16, 22, 28, 34, 40, 40]);
    expect(limit.estimates()).toEqual({ noLoadRttMs: 10, lastRttMs: 10 });
  });

  it('falls by log10(limit) while the queue estimate exceeds beta, then holds between alpha and beta', () => {
    const limit = new VegasLimit({ initialLimit: 22, minLimit: 1, maxLimit: 100 }, never);
    limit.update(10, 22, false);
    // queue = ceil(22 * (1 - 10 / 20)) = 11 > beta 6: 21; ... until ceil(12 * 0.5) = 6 <= beta
    const trace = Array.from({ length: 12 }, () => limit.update(20, 22, false));
    expect(trace).toEqual([21, 20, 19, 18, 17, 16, 15, 14, 13, 12, 12, 12]);
  });

  it('grows by log10(limit) while the queue is between log10(limit) and alpha', () => {
    const limit = new VegasLimit({ initialLimit: 10, minLimit: 1, maxLimit: 100 }, never);
    limit.update(10, 10, false);
    // queue = ceil(10 * (1 - 10 / 12.5)) = 2: above 1, below alpha 3
    expect(limit.update(12.5, 10, false)).toBe(11);
  });

  it('falls on every drop, down to minLimit', () => {
    const limit = new VegasLimit({ initialLimit: 5, minLimit: 3, maxLimit: 100 }, never);
    limit.update(10, 5, false);
    const trace = Array.from({ length: 4 }, () => limit.update(10, 1, true));
    expect(trace).toEqual([4, 3, 3, 3]);
  });

  it('does not grow while fewer than half the limit are in flight', () => {
    const limit = new VegasLimit({ initialLimit: 10, minLimit: 1, maxLimit: 100 }, never);
    limit.update(10, 10, false);
    expect(limit.update(10, 4, false)).toBe(10);
  });

  it('takes a lower latency as the new no-load latency without moving the limit', () => {
    const limit = new VegasLimit({ initialLimit: 10, minLimit: 1, maxLimit: 100 }, never);
    limit.update(10, 10, false);
    expect(limit.update(5, 10, false)).toBe(10);
    expect(limit.estimates().noLoadRttMs).toBe(5);
  });

  it('re-measures the no-load latency every probeMultiplier * limit * jitter samples', () => {
    // jitter = 0.5 + 0 * 0.5; probe after 0.5 * 2 * 10 = 10 samples
    const limit = new VegasLimit(
      { initialLimit: 10, minLimit: 1, maxLimit: 10 },
      { probeMultiplier: 2 },
      () => 0,
    );
    limit.update(10, 10, false);
    for (let i = 0; i < 8; i++) limit.update(30, 1, false);
    expect(limit.estimates().noLoadRttMs).toBe(10);
    limit.update(30, 1, false); // the 10th sample
    expect(limit.estimates().noLoadRttMs).toBe(30);
  });

  it('blends with smoothing', () => {
    const limit = new VegasLimit(
      { initialLimit: 10, minLimit: 1, maxLimit: 100 },
      { ...never, smoothing: 0.5 },
    );
    limit.update(10, 10, false);
    expect(limit.update(10, 10, false)).toBe(13); // 10 * 0.5 + 16 * 0.5
  });
});
