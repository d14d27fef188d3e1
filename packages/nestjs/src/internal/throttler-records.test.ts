import { describe, expect, it } from '@jest/globals';
import { ThrottlerRecords } from './throttler-records';

describe('ThrottlerRecords', () => {
  it('holds at most maxKeys keys, dropping idle keys first, then the oldest', () => {
    const clock = { now: () => time };
    let time = 0;
    const records = new ThrottlerRecords(clock, 2);
    records.increment('a', 1_000, 5, 1_000, 'default');
    time = 500;
    records.increment('b', 1_000, 5, 1_000, 'default');
    time = 1_200; // 'a' is idle now, 'b' is not.
    records.increment('c', 1_000, 5, 1_000, 'default');
    expect(records.size).toBe(2);
    // 'b' kept its count: a second hit is its second.
    expect(records.increment('b', 1_000, 5, 1_000, 'default').totalHits).toBe(2);
    // Nothing idle: the oldest key ('b') goes.
    records.increment('d', 1_000, 5, 1_000, 'default');
    expect(records.size).toBe(2);
    expect(records.increment('b', 1_000, 5, 1_000, 'default').totalHits).toBe(1);
  });

  it('reports 0 s to the end of a block when not blocked', () => {
    const records = new ThrottlerRecords({ now: () => 0 }, 10);
    expect(records.increment('k', 1_000, 1, 500, 'x')).toEqual({
      totalHits: 1,
      timeToExpire: 1,
      isBlocked: false,
      timeToBlockExpire: 0,
    });
    expect(records.increment('k', 1_000, 1, 500, 'x')).toEqual({
      totalHits: 2,
      timeToExpire: 1,
      isBlocked: true,
      timeToBlockExpire: 1,
    });
  });
});
