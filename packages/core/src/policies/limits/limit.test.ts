import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { AimdLimit } from './aimd';
import { Gradient2Limit } from './gradient2';
import type { LimitAlgorithm, LimitBounds } from './limit';
import { VegasLimit } from './vegas';

const algorithms: [string, (bounds: LimitBounds, random: () => number) => LimitAlgorithm][] = [
  ['gradient2', (bounds) => new Gradient2Limit(bounds, { longWindow: 20 })],
  ['vegas', (bounds, random) => new VegasLimit(bounds, { probeMultiplier: 2 }, random)],
  ['aimd', (bounds) => new AimdLimit(bounds, { timeoutMs: 500 })],
];

const bounds = fc
  .tuple(
    fc.integer({ min: 1, max: 50 }),
    fc.integer({ min: 0, max: 50 }),
    fc.integer({ min: 0, max: 50 }),
  )
  .map(([minLimit, span, offset]) => ({
    minLimit,
    maxLimit: minLimit + span,
    initialLimit: minLimit + Math.min(span, offset),
  }));
const sample = fc.record({
  rttMs: fc.oneof(fc.constant(0), fc.double({ min: 0.001, max: 5_000, noNaN: true })),
  inFlight: fc.integer({ min: 1, max: 200 }),
  dropped: fc.boolean(),
});

describe.each(algorithms)('%s limit', (_name, create) => {
  it('is always a whole number within [minLimit, maxLimit], whatever the samples', () => {
    fc.assert(
      fc.property(
        bounds,
        fc.array(sample, { maxLength: 300 }),
        fc.double({ min: 0, max: 0.999_999, noNaN: true }),
        (b, samples, r) => {
          const limit = create(b, () => r);
          expect(limit.limit).toBe(b.initialLimit);
          for (const s of samples) {
            const next = limit.update(s.rttMs, s.inFlight, s.dropped);
            expect(next).toBe(limit.limit);
            expect(Number.isInteger(next)).toBe(true);
            expect(next).toBeGreaterThanOrEqual(b.minLimit);
            expect(next).toBeLessThanOrEqual(b.maxLimit);
          }
          const estimates = limit.estimates();
          expect(Number.isFinite(estimates.noLoadRttMs)).toBe(true);
          expect(Number.isFinite(estimates.lastRttMs)).toBe(true);
        },
      ),
      { numRuns: 200 },
    );
  });
});
