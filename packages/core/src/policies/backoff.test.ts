import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { constant, exponential, type Jitter } from './backoff';
import { isConfigError } from '../errors';

function configPath(fn: () => unknown): string {
  try {
    fn();
  } catch (error) {
    if (isConfigError(error)) return error.path;
    throw error;
  }
  throw new Error('expected a ConfigError');
}

/** Delays for attempts 1..n, each fed the previous delay, as retry does. */
function delays(backoff: ReturnType<typeof exponential>, n: number): number[] {
  const out: number[] = [];
  let previous = 0;
  for (let attempt = 1; attempt <= n; attempt++) {
    previous = backoff(attempt, previous, new Error('x'));
    out.push(previous);
  }
  return out;
}

describe('exponential', () => {
  it('doubles from 100 ms without jitter and stops at maxMs', () => {
    const backoff = exponential({ jitter: 'none', maxMs: 1_000 });
    expect(delays(backoff, 6)).toEqual([100, 200, 400, 800, 1_000, 1_000]);
  });

  it('uses initialMs and multiplier', () => {
    const backoff = exponential({ jitter: 'none', initialMs: 50, multiplier: 3, maxMs: '10s' });
    expect(delays(backoff, 4)).toEqual([50, 150, 450, 1_350]);
  });

  it('stays at maxMs for very large attempt numbers', () => {
    const backoff = exponential({ jitter: 'none' });
    expect(backoff(5_000, 30_000, undefined)).toBe(30_000);
    expect(backoff(Number.MAX_SAFE_INTEGER, 0, undefined)).toBe(30_000);
  });

  it('always returns 0 when initialMs is 0', () => {
    const backoff = exponential({ jitter: 'none', initialMs: 0 });
    expect(delays(backoff, 2_000).every((d) => d === 0)).toBe(true);
  });

  it('defaults to full jitter: a random share of the exponential delay', () => {
    const backoff = exponential({ random: () => 0.5 });
    expect(delays(backoff, 3)).toEqual([50, 100, 200]);
    const zero = exponential({ random: () => 0 });
    expect(zero(3, 0, undefined)).toBe(0);
  });

  it('draws decorrelated delays between initialMs and three times the previous delay', () => {
    const low = exponential({ jitter: 'decorrelated', random: () => 0 });
    expect(delays(low, 3)).toEqual([100, 100, 100]);
    const high = exponential({ jitter: 'decorrelated', random: () => 0.999_999, maxMs: 5_000 });
    const out = delays(high, 5);
    expect(out[0]).toBeCloseTo(300, 2);
    expect(out[1]).toBeCloseTo(900, 1);
    expect(out[2]).toBeCloseTo(2_700, 1);
    expect(out[3]).toBe(5_000);
    expect(out[4]).toBe(5_000);
  });

  it('keeps a misbehaving random source inside its bounds', () => {
    const above = exponential({ jitter: 'full', random: () => 7 });
    expect(above(1, 0, undefined)).toBe(100);
    const below = exponential({ jitter: 'decorrelated', random: () => -3 });
    expect(below(1, 0, undefined)).toBe(100);
    const nan = exponential({ jitter: 'full', random: () => Number.NaN });
    expect(nan(1, 0, undefined)).toBe(0);
  });

  it('rejects bad options naming the option', () => {
    expect(configPath(() => exponential({ initialMs: -1 }))).toBe('initialMs');
    expect(configPath(() => exponential({ maxMs: 'soon' as never }))).toBe('maxMs');
    expect(configPath(() => exponential({ initialMs: 500, maxMs: 100 }))).toBe('maxMs');
    expect(configPath(() => exponential({ maxMs: 3_000_000_000 }))).toBe('maxMs');
    expect(configPath(() => exponential({ multiplier: 0.5 }))).toBe('multiplier');
    expect(configPath(() => exponential({ jitter: 'equal' as Jitter }))).toBe('jitter');
    expect(configPath(() => exponential({ random: 0.5 as never }))).toBe('random');
    expect(configPath(() => exponential({ intialMs: 5 } as never))).toBe('intialMs');
    expect(configPath(() => exponential(null as never))).toBe('options');
  });
});

describe('constant', () => {
  it('returns the same delay for every attempt', () => {
    const backoff = constant(250);
    expect([1, 2, 10].map((a) => backoff(a, 0, undefined))).toEqual([250, 250, 250]);
    expect(constant('2s')(1, 0, undefined)).toBe(2_000);
  });

  it('rejects a value that is not a duration', () => {
    expect(configPath(() => constant(-5))).toBe('ms');
    expect(configPath(() => constant('later'))).toBe('ms');
    expect(configPath(() => constant(3_000_000_000))).toBe('ms');
  });
});

describe('backoff properties', () => {
  const options = fc.record({
    initialMs: fc.integer({ min: 0, max: 10_000 }),
    extraMs: fc.integer({ min: 0, max: 100_000 }),
    multiplier: fc.double({ min: 1, max: 10, noNaN: true }),
    jitter: fc.constantFrom<Jitter>('none', 'full', 'decorrelated'),
    randoms: fc.array(fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }), {
      minLength: 1,
      maxLength: 20,
    }),
  });

  it('every delay is within [0, maxMs]', () => {
    fc.assert(
      fc.property(options, fc.integer({ min: 1, max: 60 }), (o, attempts) => {
        let i = 0;
        const maxMs = o.initialMs + o.extraMs;
        const backoff = exponential({
          initialMs: o.initialMs,
          maxMs,
          multiplier: o.multiplier,
          jitter: o.jitter,
          random: () => o.randoms[i++ % o.randoms.length]!,
        });
        for (const delay of delays(backoff, attempts)) {
          expect(delay).toBeGreaterThanOrEqual(0);
          expect(delay).toBeLessThanOrEqual(maxMs);
        }
      }),
    );
  });

  it('without jitter, delays never decrease and reach the cap', () => {
    fc.assert(
      fc.property(options, (o) => {
        const maxMs = o.initialMs + o.extraMs;
        const backoff = exponential({
          initialMs: o.initialMs,
          maxMs,
          multiplier: o.multiplier,
          jitter: 'none',
        });
        const out = delays(backoff, 80);
        expect(out[0]).toBe(o.initialMs);
        for (let k = 1; k < out.length; k++) expect(out[k]!).toBeGreaterThanOrEqual(out[k - 1]!);
        if (o.multiplier >= 1.5 && o.initialMs > 0) expect(out[out.length - 1]).toBe(maxMs);
      }),
    );
  });

  it('decorrelated delays stay within [initialMs, min(maxMs, 3 × previous)]', () => {
    fc.assert(
      fc.property(options, fc.integer({ min: 1, max: 60 }), (o, attempts) => {
        let i = 0;
        const maxMs = o.initialMs + o.extraMs;
        const backoff = exponential({
          initialMs: o.initialMs,
          maxMs,
          jitter: 'decorrelated',
          random: () => o.randoms[i++ % o.randoms.length]!,
        });
        let previous = 0;
        for (let attempt = 1; attempt <= attempts; attempt++) {
          const delay = backoff(attempt, previous, undefined);
          const upper = Math.min(maxMs, 3 * Math.max(previous, o.initialMs));
          expect(delay).toBeGreaterThanOrEqual(o.initialMs);
          expect(delay).toBeLessThanOrEqual(upper + 1e-9);
          previous = delay;
        }
      }),
    );
  });

  it('full jitter never exceeds the delay without jitter', () => {
    fc.assert(
      fc.property(options, fc.integer({ min: 1, max: 60 }), (o, attempt) => {
        const maxMs = o.initialMs + o.extraMs;
        const common = { initialMs: o.initialMs, maxMs, multiplier: o.multiplier };
        const plain = exponential({ ...common, jitter: 'none' });
        const jittered = exponential({ ...common, jitter: 'full', random: () => o.randoms[0]! });
        expect(jittered(attempt, 0, undefined)).toBeLessThanOrEqual(plain(attempt, 0, undefined));
      }),
    );
  });
});
