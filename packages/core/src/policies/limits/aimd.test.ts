import { describe, expect, it } from '@jest/globals';
import { AimdLimit } from './aimd';

describe('AimdLimit', () => {
  it('adds one per call while half the limit is in flight, up to maxLimit', () => {
    const limit = new AimdLimit({ initialLimit: 10, minLimit: 5, maxLimit: 12 });
    expect([
      limit.update(5, 5, false),
      limit.update(5, 6, false),
      limit.update(5, 6, false),
    ]).toEqual([11, 12, 12]);
  });

  it('multiplies by backoffRatio on a drop or a call slower than timeoutMs, down to minLimit', () => {
    const limit = new AimdLimit(
      { initialLimit: 12, minLimit: 5, maxLimit: 12 },
      { backoffRatio: 0.9, timeoutMs: 100 },
    );
    expect(limit.update(5, 12, true)).toBe(10); // floor(12 * 0.9)
    expect(limit.update(150, 12, false)).toBe(9); // slower than the timeout
    expect(limit.update(5, 2, false)).toBe(9); // 2 * 2 < 9: app-limited, holds
    const trace = Array.from({ length: 5 }, () => limit.update(5, 1, true));
    expect(trace).toEqual([8, 7, 6, 5, 5]);
    expect(limit.estimates().lastRttMs).toBe(5);
  });
});
