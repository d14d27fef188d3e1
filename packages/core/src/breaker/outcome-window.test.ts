import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { CALL, CountWindow, FAILURE, SLOW, TimeWindow } from './outcome-window';

const runs = Number(process.env.BREAKWATER_FC_RUNS ?? 1000);
const flags = fc.constantFrom(CALL, CALL | FAILURE, CALL | SLOW, CALL | FAILURE | SLOW);

function totals(samples: number[]): { calls: number; failures: number; slowCalls: number } {
  return {
    calls: samples.length,
    failures: samples.filter((f) => (f & FAILURE) !== 0).length,
    slowCalls: samples.filter((f) => (f & SLOW) !== 0).length,
  };
}

describe('CountWindow', () => {
  it('always equals the counts of the last `size` outcomes', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 20 }),
        fc.array(flags, { maxLength: 100 }),
        (size, outcomes) => {
          const window = new CountWindow(size);
          outcomes.forEach((f, i) => {
            window.record(f);
            const { calls, failures, slowCalls } = window;
            expect({ calls, failures, slowCalls }).toEqual(
              totals(outcomes.slice(Math.max(0, i + 1 - size), i + 1)),
            );
          });
          window.clear();
          expect(window.calls + window.failures + window.slowCalls).toBe(0);
        },
      ),
      { numRuns: runs },
    );
  });
});

describe('TimeWindow', () => {
  it('always equals the counts of the samples whose bucket is among the last `buckets`', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 10 }),
        fc.integer({ min: 1, max: 10 }),
        fc.array(fc.tuple(flags, fc.integer({ min: 0, max: 400 })), { maxLength: 80 }),
        (buckets, bucketMs, steps) => {
          const durationMs = buckets * bucketMs;
          const window = new TimeWindow(durationMs, buckets);
          let now = 0;
          const samples: { at: number; f: number }[] = [];
          for (const [f, gap] of steps) {
            now += gap;
            window.record(f, now);
            samples.push({ at: now, f });
            const head = Math.floor(now / bucketMs);
            const live = samples
              .filter((s) => Math.floor(s.at / bucketMs) > head - buckets)
              .map((s) => s.f);
            const { calls, failures, slowCalls } = window;
            expect({ calls, failures, slowCalls }).toEqual(totals(live));
          }
          window.refresh(now + durationMs);
          expect(window.calls).toBe(0);
        },
      ),
      { numRuns: runs },
    );
  });

  it('keeps counting into the newest bucket when the clock steps back', () => {
    const window = new TimeWindow(1000, 10);
    window.record(CALL, 5000);
    window.record(CALL | FAILURE, 4000);
    expect([window.calls, window.failures]).toEqual([2, 1]);
    window.refresh(5999);
    expect(window.calls).toBe(2);
    window.refresh(6000);
    expect(window.calls).toBe(0);
  });
});
