import { describe, expect, it } from '@jest/globals';
import { Gradient2Limit } from './gradient2';

describe('Gradient2Limit', () => {
  it('rises by queueSize * smoothing per sample under steady latency, up to maxLimit', () => {
    const limit = new Gradient2Limit({ initialLimit: 10, minLimit: 1, maxLimit: 20 });
    // gradient = min(1, 1.5 * 10 / 10) = 1; estimate = 10 * 1 + 4; limit = 10 * 0.8 + 14 * 0.2 = 10.8
    const trace = Array.from({ length: 16 }, () => limit.update(10, 20));
    expect(trace).toEqual([10, 11, 12, 13, 14, 14, 15, 16, 17, 18, 18, 19, 20, 20, 20, 20]);
  });

  it('falls when latency inflates past rttTolerance times its long-term average', () => {
    const limit = new Gradient2Limit({ initialLimit: 10, minLimit: 2, maxLimit: 40 });
    for (let i = 0; i < 10; i++) limit.update(10, 40); // warm-up: long average 10, limit 18
    expect(limit.limit).toBe(18);
    expect(limit.estimates().noLoadRttMs).toBe(10);
    // long = 10 + 20 * 2/601; gradient = 1.5 * long / 30 = 0.5033; 18 * 0.8 + (18 * 0.5033 + 4) * 0.2
    const trace = Array.from({ length: 8 }, () => limit.update(30, 40));
    expect(trace).toEqual([17, 16, 15, 14, 14, 13, 13, 12]);
    expect(limit.estimates().lastRttMs).toBe(30);
  });

  it('never goes below minLimit however bad the latency', () => {
    const limit = new Gradient2Limit({ initialLimit: 30, minLimit: 12, maxLimit: 40 });
    for (let i = 0; i < 10; i++) limit.update(10, 40);
    // gradient 0.5 at worst: the limit tends to queueSize / (1 - 0.5) = 8, below minLimit
    const trace = Array.from({ length: 40 }, () => limit.update(10_000, 40));
    expect(Math.min(...trace)).toBe(12);
    expect(trace.at(-1)).toBe(12);
  });

  it('holds while fewer than half the limit are in flight (the caller is the bottleneck)', () => {
    const limit = new Gradient2Limit({ initialLimit: 10, minLimit: 1, maxLimit: 40 });
    expect([limit.update(10, 4), limit.update(10, 4), limit.update(100, 4)]).toEqual([10, 10, 10]);
  });

  it('pulls the long-term average down 5 % when it is more than twice the latest latency', () => {
    const limit = new Gradient2Limit({ initialLimit: 10, minLimit: 1, maxLimit: 40 });
    for (let i = 0; i < 10; i++) limit.update(100, 1);
    limit.update(40, 1);
    // 100 * (1 - 2/601) + 40 * 2/601 = 99.8003; 99.8003 / 40 > 2, so * 0.95
    expect(limit.estimates().noLoadRttMs).toBeCloseTo(94.8103, 3);
  });

  it('ignores a sample of zero latency', () => {
    const limit = new Gradient2Limit({ initialLimit: 10, minLimit: 1, maxLimit: 40 });
    expect(limit.update(0, 10)).toBe(10);
    expect(limit.estimates()).toEqual({ noLoadRttMs: 0, lastRttMs: 0 });
  });
});
