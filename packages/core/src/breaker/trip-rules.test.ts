import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { CountWindow, FAILURE, SLOW, TimeWindow } from './outcome-window';
import { resolveBreakerOptions, type CircuitBreakerOptions } from './options';
import { WindowRates } from './trip-rules';

const runs = Number(process.env.BREAKWATER_FC_RUNS ?? 1000);

const rates = (options: Partial<CircuitBreakerOptions> = {}): WindowRates =>
  new WindowRates(resolveBreakerOptions({ name: 'rates', ...options }));

const counts = (r: WindowRates): { calls: number; failures: number; slowCalls: number } => {
  const { calls, failures, slowCalls } = r.window;
  return { calls, failures, slowCalls };
};

describe('WindowRates', () => {
  it('holds no window until the first outcome, and an idle one reports nothing', () => {
    for (const window of [undefined, { type: 'time', durationMs: 1_000, buckets: 10 }] as const) {
      const r = rates({ failureRateThreshold: 50, ...(window && { window }) });
      expect(counts(r)).toEqual({ calls: 0, failures: 0, slowCalls: 0 });
      expect(r.check(5_000)).toBeUndefined();
      r.clear();
      expect(r.window).not.toBeInstanceOf(CountWindow);
      expect(r.window).not.toBeInstanceOf(TimeWindow);
      r.record(FAILURE, 5_000);
      expect(r.window).toBeInstanceOf(window ? TimeWindow : CountWindow);
      expect(counts(r)).toEqual({ calls: 1, failures: 1, slowCalls: 0 });
    }
  });

  it('counts deferred successes (no rate rule) whether the window is read, checked or recorded', () => {
    const read = rates();
    read.recordSuccess(0);
    read.recordSuccess(0);
    expect(counts(read)).toEqual({ calls: 2, failures: 0, slowCalls: 0 });

    const checked = rates();
    checked.recordSuccess(0);
    expect(checked.check(0)).toBeUndefined();
    expect(counts(checked)).toEqual({ calls: 1, failures: 0, slowCalls: 0 });

    const recorded = rates();
    recorded.recordSuccess(0);
    recorded.record(SLOW, 0);
    expect(counts(recorded)).toEqual({ calls: 2, failures: 0, slowCalls: 1 });
  });

  it('opens on the same outcome as a window recorded from the start', () => {
    const outcome = fc.constantFrom(0, FAILURE, SLOW, FAILURE | SLOW);
    fc.assert(
      fc.property(fc.array(outcome, { maxLength: 60 }), (outcomes) => {
        const r = rates({
          failureRateThreshold: 50,
          minimumCalls: 5,
          window: { type: 'count', size: 20 },
        });
        const reference = new CountWindow(20);
        outcomes.forEach((flags) => {
          const reason = flags === 0 ? r.recordSuccess(0) : r.record(flags, 0);
          reference.record(flags | 1);
          const { calls, failures } = reference;
          const opens = calls >= 5 && failures * 100 >= 50 * calls;
          expect(reason !== undefined).toBe(opens);
        });
      }),
      { numRuns: runs },
    );
  });
});

describe('resolved windows', () => {
  it('share one frozen default window', () => {
    const a = resolveBreakerOptions({ name: 'a' }).window;
    const b = resolveBreakerOptions({ name: 'b', window: { type: 'count', size: 100 } }).window;
    const c = resolveBreakerOptions({ name: 'c', window: { type: 'count', size: 50 } }).window;
    expect(a).toBe(b);
    expect(Object.isFrozen(a)).toBe(true);
    expect(c).toEqual({ type: 'count', size: 50 });
    expect(c).not.toBe(a);
  });
});
