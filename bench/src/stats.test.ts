import { describe, expect, it } from '@jest/globals';
import { median, spreadPct } from './stats';

describe('median', () => {
  it('takes the middle value of an odd list whatever its order', () => {
    expect(median([5, 1, 3])).toBe(3);
  });

  it('averages the two middle values of an even list', () => {
    expect(median([4, 1, 3, 2])).toBe(2.5);
  });

  it('refuses an empty list', () => {
    expect(() => median([])).toThrow('empty');
  });
});

describe('spreadPct', () => {
  it('is zero when every round agrees', () => {
    expect(spreadPct([10, 10, 10])).toBe(0);
  });

  it('is the median absolute deviation relative to the median', () => {
    // median 10, deviations 0, 1, 0, 1, 10 -> median deviation 1 -> 10 %
    expect(spreadPct([10, 9, 10, 11, 20])).toBeCloseTo(10);
  });

  it('ignores a single outlier round', () => {
    expect(spreadPct([100, 100, 100, 100, 100, 100, 1_000])).toBe(0);
  });
});
