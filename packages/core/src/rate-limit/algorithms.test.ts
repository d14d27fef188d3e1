import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import type { RateLimitAlgorithm, RateLimitRule } from './rate-limit-store';
import {
  applyRateLimit,
  createRateState,
  fixedWindow,
  slidingWindow,
  tokenBucket,
  type RateState,
} from './algorithms';

function rule(
  algorithm: RateLimitAlgorithm,
  limit: number,
  windowMs: number,
  extra: { burst?: number; blockDurationMs?: number } = {},
): RateLimitRule {
  return {
    name: 'test',
    algorithm,
    limit,
    windowMs,
    burst: extra.burst ?? limit,
    blockDurationMs: extra.blockDurationMs ?? 0,
  };
}

const clone = (state: RateState): RateState => ({ ...state });

describe('fixed-window', () => {
  const r = rule('fixed-window', 3, 1_000);

  it('allows up to the limit in a window aligned to multiples of windowMs', () => {
    const s = createRateState();
    expect(fixedWindow(s, r, 1, 10_500)).toEqual({
      allowed: true,
      limit: 3,
      remaining: 2,
      resetMs: 500,
      retryAfterMs: 0,
    });
    expect(fixedWindow(s, r, 1, 10_600).remaining).toBe(1);
    expect(fixedWindow(s, r, 1, 10_700).remaining).toBe(0);
    expect(fixedWindow(s, r, 1, 10_800)).toEqual({
      allowed: false,
      limit: 3,
      remaining: 0,
      resetMs: 200,
      retryAfterMs: 200,
    });
    expect(s.time).toBe(10_000);
    expect(s.value).toBe(3);
    expect(s.expiresAt).toBe(11_000);
  });

  it('refuses until the last millisecond of the window and resets at the edge', () => {
    const s = createRateState();
    fixedWindow(s, r, 3, 10_000);
    expect(fixedWindow(s, r, 1, 10_999)).toMatchObject({ allowed: false, retryAfterMs: 1 });
    expect(fixedWindow(s, r, 1, 11_000)).toEqual({
      allowed: true,
      limit: 3,
      remaining: 2,
      resetMs: 1_000,
      retryAfterMs: 0,
    });
  });

  it('a refusal counts nothing', () => {
    const s = createRateState();
    fixedWindow(s, r, 2, 0);
    expect(fixedWindow(s, r, 2, 1).allowed).toBe(false);
    expect(s.value).toBe(2);
    expect(fixedWindow(s, r, 1, 2)).toMatchObject({ allowed: true, remaining: 0 });
  });

  it('a cost above the limit is refused with retryAfterMs = windowMs and counts nothing', () => {
    const s = createRateState();
    expect(fixedWindow(s, r, 4, 100)).toEqual({
      allowed: false,
      limit: 3,
      remaining: 3,
      resetMs: 900,
      retryAfterMs: 1_000,
    });
    expect(s.expiresAt).toBe(0);
  });

  it('a cost of 0 peeks: allowed, nothing counted, nothing to keep for a new key', () => {
    const s = createRateState();
    expect(fixedWindow(s, r, 0, 100)).toMatchObject({ allowed: true, remaining: 3 });
    expect(s.expiresAt).toBe(0);
    fixedWindow(s, r, 3, 100);
    expect(fixedWindow(s, r, 0, 200)).toMatchObject({ allowed: true, remaining: 0 });
    expect(s.value).toBe(3);
  });

  it('a clock that moves backwards never rolls the window back', () => {
    const s = createRateState();
    fixedWindow(s, r, 2, 5_500);
    expect(fixedWindow(s, r, 1, 4_900)).toMatchObject({ allowed: true, remaining: 0 });
    expect(s.time).toBe(5_000);
    expect(fixedWindow(s, r, 1, 4_900).allowed).toBe(false);
  });
});

describe('blockDurationMs', () => {
  it('keeps the key refused until the block ends, across window edges', () => {
    const r = rule('fixed-window', 2, 1_000, { blockDurationMs: 5_000 });
    const s = createRateState();
    fixedWindow(s, r, 2, 0);
    expect(fixedWindow(s, r, 1, 100)).toEqual({
      allowed: false,
      limit: 2,
      remaining: 0,
      resetMs: 5_000,
      retryAfterMs: 5_000,
    });
    expect(s.blockedUntil).toBe(5_100);
    expect(s.expiresAt).toBe(5_100);
    // A new window does not lift the block, and a refusal during it does not extend it.
    expect(fixedWindow(s, r, 1, 1_000)).toMatchObject({
      allowed: false,
      remaining: 0,
      retryAfterMs: 4_100,
    });
    expect(fixedWindow(s, r, 0, 3_000)).toMatchObject({ allowed: false, retryAfterMs: 2_100 });
    expect(s.blockedUntil).toBe(5_100);
    expect(fixedWindow(s, r, 1, 5_099).allowed).toBe(false);
    expect(fixedWindow(s, r, 1, 5_100)).toMatchObject({ allowed: true, remaining: 1 });
  });

  it('reports the algorithm wait when it outlasts the block', () => {
    const r = rule('fixed-window', 1, 10_000, { blockDurationMs: 1_000 });
    const s = createRateState();
    fixedWindow(s, r, 1, 0);
    expect(fixedWindow(s, r, 1, 100)).toMatchObject({ allowed: false, retryAfterMs: 9_900 });
  });

  it('a cost above the limit never starts a block', () => {
    const r = rule('token-bucket', 2, 1_000, { blockDurationMs: 5_000 });
    const s = createRateState();
    expect(tokenBucket(s, r, 3, 0).allowed).toBe(false);
    expect(s.blockedUntil).toBe(0);
    expect(tokenBucket(s, r, 1, 0).allowed).toBe(true);
  });

  it('applies to every algorithm', () => {
    for (const algorithm of ['sliding-window', 'token-bucket'] as const) {
      const r = rule(algorithm, 1, 1_000, { blockDurationMs: 60_000 });
      const s = createRateState();
      applyRateLimit(s, r, 1, 0);
      expect(applyRateLimit(s, r, 1, 10)).toMatchObject({ allowed: false, retryAfterMs: 60_000 });
      expect(applyRateLimit(s, r, 1, 30_000)).toMatchObject({
        allowed: false,
        retryAfterMs: 30_010,
      });
      expect(applyRateLimit(s, r, 1, 60_010).allowed).toBe(true);
    }
  });
});

describe('sliding-window', () => {
  const r = rule('sliding-window', 10, 1_000);

  it('counts the previous window by the share of it still inside the sliding window', () => {
    const s = createRateState();
    expect(slidingWindow(s, r, 10, 500)).toEqual({
      allowed: true,
      limit: 10,
      remaining: 0,
      resetMs: 1_500,
      retryAfterMs: 0,
    });
    // At 1 500 half of the previous window is inside: 10 × 0.5 = 5 used.
    expect(slidingWindow(s, r, 0, 1_500)).toMatchObject({ allowed: true, remaining: 5 });
    expect(slidingWindow(s, r, 5, 1_500)).toMatchObject({ allowed: true, remaining: 0 });
    expect(slidingWindow(s, r, 1, 1_500)).toMatchObject({ allowed: false, retryAfterMs: 100 });
    // At 1 600 the previous window weighs 0.4: 4 + 5 + 1 = 10 fits.
    expect(slidingWindow(s, r, 1, 1_599).allowed).toBe(false);
    expect(slidingWindow(s, r, 1, 1_600)).toMatchObject({ allowed: true, remaining: 0 });
  });

  it('retryAfterMs is the exact time until the request fits, across the window edge', () => {
    const s = createRateState();
    slidingWindow(s, r, 10, 500);
    // Nothing fits in this window; in the next, 10 × (1000 - e)/1000 + 1 <= 10 from e = 100.
    expect(slidingWindow(s, r, 1, 999)).toMatchObject({ allowed: false, retryAfterMs: 101 });
    expect(slidingWindow(clone(s), r, 1, 1_099).allowed).toBe(false);
    expect(slidingWindow(clone(s), r, 1, 1_100).allowed).toBe(true);
  });

  it('forgets the previous window two windows later', () => {
    const s = createRateState();
    slidingWindow(s, r, 10, 500);
    slidingWindow(s, r, 4, 1_900);
    expect(s.previous).toBe(10);
    expect(s.expiresAt).toBe(3_000);
    // At 2 500 the window [1000, 2000) is the previous one: 4 × 0.5 = 2 used.
    expect(slidingWindow(s, r, 0, 2_500)).toMatchObject({ remaining: 8, resetMs: 500 });
    expect(s.previous).toBe(4);
    slidingWindow(s, r, 0, 4_000);
    expect(s).toMatchObject({ previous: 0, value: 0, expiresAt: 0 });
  });

  it('when the whole limit is asked, waits until both windows have slid out', () => {
    const s = createRateState();
    slidingWindow(s, r, 1, 200);
    expect(slidingWindow(s, r, 10, 300)).toMatchObject({ allowed: false, retryAfterMs: 1_700 });
    expect(slidingWindow(clone(s), r, 10, 1_999).allowed).toBe(false);
    expect(slidingWindow(clone(s), r, 10, 2_000).allowed).toBe(true);
  });

  it('a cost above the limit is refused with retryAfterMs = windowMs', () => {
    expect(slidingWindow(createRateState(), r, 11, 0)).toMatchObject({
      allowed: false,
      remaining: 10,
      retryAfterMs: 1_000,
    });
  });
});

describe('token-bucket', () => {
  const r = rule('token-bucket', 10, 1_000);

  it('starts full, refuses when empty and refills continuously', () => {
    const s = createRateState();
    expect(tokenBucket(s, r, 10, 0)).toEqual({
      allowed: true,
      limit: 10,
      remaining: 0,
      resetMs: 1_000,
      retryAfterMs: 0,
    });
    expect(tokenBucket(s, r, 1, 50)).toEqual({
      allowed: false,
      limit: 10,
      remaining: 0,
      resetMs: 950,
      retryAfterMs: 50,
    });
    expect(tokenBucket(s, r, 1, 99).allowed).toBe(false);
    expect(tokenBucket(s, r, 1, 100)).toMatchObject({
      allowed: true,
      remaining: 0,
      resetMs: 1_000,
    });
  });

  it('keeps fractions of a token between calls', () => {
    const s = createRateState();
    tokenBucket(s, r, 5, 0);
    // 250 ms refill 2.5 tokens: 7.5 in the bucket, 7 usable.
    expect(tokenBucket(s, r, 0, 250)).toMatchObject({ remaining: 7, resetMs: 250 });
    expect(tokenBucket(s, r, 7, 250)).toMatchObject({ allowed: true, remaining: 0 });
    // Half a token left: the next one is due in 50 ms.
    expect(tokenBucket(s, r, 1, 250)).toMatchObject({ allowed: false, retryAfterMs: 50 });
  });

  it('holds up to burst tokens and reports the burst as the limit', () => {
    const b = rule('token-bucket', 1, 1_000, { burst: 5 });
    const s = createRateState();
    expect(tokenBucket(s, b, 5, 0)).toMatchObject({ allowed: true, limit: 5, remaining: 0 });
    expect(tokenBucket(s, b, 2, 0)).toMatchObject({ allowed: false, retryAfterMs: 2_000 });
    expect(tokenBucket(s, b, 0, 60_000)).toMatchObject({ remaining: 5, resetMs: 0 });
    expect(s.value).toBe(5_000);
    expect(s.expiresAt).toBe(0);
  });

  it('a full bucket expires: expiresAt is the time it is full again', () => {
    const s = createRateState();
    tokenBucket(s, r, 3, 1_000);
    expect(s.expiresAt).toBe(1_300);
  });

  it('a cost above the burst is refused with retryAfterMs = windowMs', () => {
    expect(tokenBucket(createRateState(), r, 11, 0)).toMatchObject({
      allowed: false,
      remaining: 10,
      retryAfterMs: 1_000,
    });
  });

  it('a clock that moves backwards refills nothing', () => {
    const s = createRateState();
    tokenBucket(s, r, 10, 5_000);
    expect(tokenBucket(s, r, 1, 4_000).allowed).toBe(false);
    expect(tokenBucket(s, r, 1, 5_099).allowed).toBe(false);
    expect(tokenBucket(s, r, 1, 5_100).allowed).toBe(true);
  });
});

describe('expiry', () => {
  it('an expired record behaves exactly like a new one', () => {
    for (const algorithm of ['fixed-window', 'sliding-window', 'token-bucket'] as const) {
      const r = rule(algorithm, 4, 1_000);
      const s = createRateState();
      applyRateLimit(s, r, 4, 100);
      const at = s.expiresAt;
      expect(at).toBeGreaterThan(100);
      expect(applyRateLimit(clone(s), r, 4, at)).toEqual(
        applyRateLimit(createRateState(), r, 4, at),
      );
    }
  });
});

// Properties -------------------------------------------------------------------------------

const algorithmArb = fc.constantFrom<RateLimitAlgorithm>(
  'fixed-window',
  'sliding-window',
  'token-bucket',
);
const ruleArb = fc
  .record({
    algorithm: algorithmArb,
    limit: fc.integer({ min: 1, max: 20 }),
    windowMs: fc.integer({ min: 1, max: 5_000 }),
    extraBurst: fc.integer({ min: 0, max: 10 }),
    blockDurationMs: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 10_000 })),
  })
  .map(({ algorithm, limit, windowMs, extraBurst, blockDurationMs }): RateLimitRule => ({
    name: 'p',
    algorithm,
    limit,
    windowMs,
    burst: algorithm === 'token-bucket' ? limit + extraBurst : limit,
    blockDurationMs,
  }));
const opsArb = fc.array(
  fc.record({ dt: fc.integer({ min: 0, max: 3_000 }), cost: fc.integer({ min: 0, max: 25 }) }),
  { maxLength: 80 },
);

describe('properties', () => {
  it('never allows more than the limit in any fixed window (fixed and sliding)', () => {
    fc.assert(
      fc.property(
        ruleArb.filter((r) => r.algorithm !== 'token-bucket'),
        fc.integer({ min: 0, max: 1e9 }),
        opsArb,
        (r, start, ops) => {
          const s = createRateState();
          const used = new Map<number, number>();
          let now = start;
          for (const { dt, cost } of ops) {
            now += dt;
            const d = applyRateLimit(s, r, cost, now);
            if (d.allowed) {
              const w = Math.floor(now / r.windowMs);
              const total = (used.get(w) ?? 0) + cost;
              used.set(w, total);
              expect(total).toBeLessThanOrEqual(r.limit);
            }
          }
        },
      ),
    );
  });

  it('the sliding window never allows more than the limit weighted over two windows', () => {
    fc.assert(
      fc.property(
        ruleArb.filter((r) => r.algorithm === 'sliding-window'),
        opsArb,
        (r, ops) => {
          const s = createRateState();
          const used = new Map<number, number>();
          let now = 0;
          for (const { dt, cost } of ops) {
            now += dt;
            const d = slidingWindow(s, r, cost, now);
            const w = Math.floor(now / r.windowMs);
            if (d.allowed) used.set(w, (used.get(w) ?? 0) + cost);
            const elapsed = now - w * r.windowMs;
            const estimate =
              ((used.get(w - 1) ?? 0) * (r.windowMs - elapsed)) / r.windowMs + (used.get(w) ?? 0);
            expect(estimate).toBeLessThanOrEqual(r.limit + 1e-9);
          }
        },
      ),
    );
  });

  it('a token bucket never goes negative or above its burst, nor admits more than it refills', () => {
    fc.assert(
      fc.property(
        ruleArb.filter((r) => r.algorithm === 'token-bucket'),
        opsArb,
        (r, ops) => {
          const s = createRateState();
          let now = 0;
          let admitted = 0;
          for (const { dt, cost } of ops) {
            now += dt;
            const d = tokenBucket(s, r, cost, now);
            if (d.allowed) admitted += cost;
            expect(s.value).toBeGreaterThanOrEqual(0);
            expect(s.value).toBeLessThanOrEqual(r.burst * r.windowMs);
            expect(Number.isInteger(s.value)).toBe(true);
            expect(admitted).toBeLessThanOrEqual(r.burst + (now * r.limit) / r.windowMs);
          }
        },
      ),
    );
  });

  it('decisions are well formed: remaining in [0, limit], integer times, exact remaining', () => {
    fc.assert(
      fc.property(ruleArb, fc.integer({ min: 0, max: 1e9 }), opsArb, (r, start, ops) => {
        const s = createRateState();
        const capacity = r.algorithm === 'token-bucket' ? r.burst : r.limit;
        let now = start;
        for (const { dt, cost } of ops) {
          now += dt;
          const d = applyRateLimit(s, r, cost, now);
          expect(d.limit).toBe(capacity);
          expect(d.remaining).toBeGreaterThanOrEqual(0);
          expect(d.remaining).toBeLessThanOrEqual(capacity);
          for (const ms of [d.remaining, d.resetMs, d.retryAfterMs]) {
            expect(Number.isInteger(ms)).toBe(true);
          }
          expect(d.resetMs).toBeGreaterThanOrEqual(0);
          if (d.allowed) expect(d.retryAfterMs).toBe(0);
          else expect(d.retryAfterMs).toBeGreaterThan(0);
          // remaining is exact: that much fits now, one more does not.
          if (s.blockedUntil <= now && d.remaining < capacity) {
            const peek = applyRateLimit(clone(s), r, 0, now);
            expect(applyRateLimit(clone(s), r, peek.remaining, now).allowed).toBe(true);
            expect(applyRateLimit(clone(s), r, peek.remaining + 1, now).allowed).toBe(false);
          }
        }
      }),
    );
  });

  it('retryAfterMs is exact: refused one millisecond earlier, allowed then', () => {
    fc.assert(
      fc.property(
        ruleArb,
        fc.integer({ min: 0, max: 1e9 }),
        opsArb,
        fc.integer({ min: 1, max: 25 }),
        (r, start, ops, probeCost) => {
          const capacity = r.algorithm === 'token-bucket' ? r.burst : r.limit;
          fc.pre(probeCost <= capacity);
          const s = createRateState();
          let now = start;
          for (const { dt, cost } of ops) {
            now += dt;
            applyRateLimit(s, r, cost, now);
          }
          const probe = clone(s);
          const d = applyRateLimit(probe, r, probeCost, now);
          if (d.allowed) return;
          const wait = d.retryAfterMs;
          // `probe` holds the block the refusal may have started.
          if (wait > 1) {
            expect(applyRateLimit(clone(probe), r, probeCost, now + wait - 1).allowed).toBe(false);
          }
          expect(applyRateLimit(clone(probe), r, probeCost, now + wait).allowed).toBe(true);
          expect(d.resetMs).toBeGreaterThanOrEqual(wait);
        },
      ),
    );
  });

  it('resetMs is the time until the full quota is available again', () => {
    fc.assert(
      fc.property(ruleArb, fc.integer({ min: 0, max: 1e9 }), opsArb, (r, start, ops) => {
        const capacity = r.algorithm === 'token-bucket' ? r.burst : r.limit;
        const s = createRateState();
        let now = start;
        let d = applyRateLimit(s, r, 0, now);
        for (const { dt, cost } of ops) {
          now += dt;
          d = applyRateLimit(s, r, cost, now);
        }
        const later = applyRateLimit(clone(s), r, 0, now + d.resetMs);
        expect(later.remaining).toBe(capacity);
        expect(later.allowed).toBe(true);
      }),
    );
  });
});
