import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { Redis } from 'ioredis';
import type { RateLimitAlgorithm, RateLimitDecision, RateLimitRule } from '@breakwater/core';
// The reference arithmetic the script must reproduce exactly.
import {
  applyRateLimit,
  createRateState,
  type RateState,
} from '../../core/src/rate-limit/algorithms';
import { ALGORITHM_CODE, RATE_LIMIT_SCRIPT } from '../src/internal/rate-limit-script';
import { redisUrl, skipReason } from './helpers';

const describeRedis = redisUrl ? describe : describe.skip;
const title = `rate-limit script against the reference algorithms${skipReason}`;

const SERVER_TIME = "redis.call('TIME')";
const EXPIRY = "'PX', expiresAt - serverNow";

/**
 * The production script with its clock taken from ARGV[7..8] (seconds, microseconds) instead of
 * TIME, and a long expiry (the test's clock does not follow the wall clock, so Redis must not
 * reap keys under it; freshness is decided by the stored expiresAt, which is what is compared).
 */
function scriptWithClock(): string {
  expect(RATE_LIMIT_SCRIPT.split(SERVER_TIME)).toHaveLength(2);
  // A decision and a refund each write with this expiry.
  expect(RATE_LIMIT_SCRIPT.split(EXPIRY)).toHaveLength(3);
  return RATE_LIMIT_SCRIPT.replace(SERVER_TIME, '{ ARGV[7], ARGV[8] }').replaceAll(
    EXPIRY,
    "'PX', 3600000",
  );
}

/**
 * What a refund does to a key, as the store's contract states it: on the record as a decision
 * at `now` would see it, a window's count never below zero, a bucket never above its burst, a
 * block kept, a missing or expired key left alone.
 */
function refundReference(state: RateState, rule: RateLimitRule, amount: number, now: number) {
  if (state.expiresAt <= now) return;
  const { windowMs, limit } = rule;
  if (rule.algorithm === 'token-bucket') {
    const cap = rule.burst * windowMs;
    if (now > state.time) {
      state.value = Math.min(cap, state.value + (now - state.time) * limit);
      state.time = now;
    }
    state.value = Math.min(cap, state.value + amount * windowMs);
    state.expiresAt = state.value < cap ? state.time + Math.ceil((cap - state.value) / limit) : 0;
  } else {
    const at = Math.max(now, state.time);
    const start = at - (at % windowMs);
    if (start > state.time) {
      if (rule.algorithm === 'sliding-window') {
        state.previous = start - state.time === windowMs ? state.value : 0;
      }
      state.value = 0;
      state.time = start;
    }
    state.value = Math.max(0, state.value - amount);
    if (state.value > 0) {
      state.expiresAt = state.time + (rule.algorithm === 'fixed-window' ? 1 : 2) * windowMs;
    } else if (rule.algorithm === 'sliding-window' && state.previous > 0) {
      state.expiresAt = state.time + windowMs;
    } else {
      state.expiresAt = 0;
    }
  }
  if (state.blockedUntil > state.expiresAt) state.expiresAt = state.blockedUntil;
  if (state.expiresAt <= now) Object.assign(state, createRateState());
}

interface Step {
  dt: number;
  cost: number;
  micros: number;
}

const ruleArbitrary = fc
  .record({
    algorithm: fc.constantFrom<RateLimitAlgorithm>(
      'fixed-window',
      'sliding-window',
      'token-bucket',
    ),
    limit: fc.oneof(fc.integer({ min: 1, max: 10 }), fc.integer({ min: 1, max: 1_000_000 })),
    windowMs: fc.oneof(fc.integer({ min: 1, max: 1_000 }), fc.integer({ min: 1, max: 86_400_000 })),
    extraBurst: fc.integer({ min: 0, max: 10 }),
    blockDurationMs: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 3_000 })),
  })
  .filter((r) => (r.limit + r.extraBurst) * r.windowMs <= 2 ** 50)
  .map((r): RateLimitRule => ({
    name: 'prop',
    algorithm: r.algorithm,
    limit: r.limit,
    windowMs: r.windowMs,
    burst: r.algorithm === 'token-bucket' ? r.limit + r.extraBurst : r.limit,
    blockDurationMs: r.blockDurationMs,
  }));

describeRedis(title, () => {
  let client: Redis;
  let sha: string;
  let run = 0;

  beforeAll(async () => {
    client = new Redis(redisUrl!, { lazyConnect: true });
    await client.connect();
    sha = (await client.script('LOAD', scriptWithClock())) as string;
  });

  afterAll(async () => {
    await client?.quit();
  });

  async function decide(
    key: string,
    rule: RateLimitRule,
    cost: number,
    now: number,
    micros: number,
  ) {
    const reply = (await client.evalsha(
      sha,
      1,
      key,
      ALGORITHM_CODE[rule.algorithm],
      rule.limit,
      rule.windowMs,
      rule.burst,
      rule.blockDurationMs,
      cost,
      Math.floor(now / 1000),
      (now % 1000) * 1000 + micros,
    )) as [number, number, number, number];
    return {
      allowed: reply[0] === 1,
      limit: rule.algorithm === 'token-bucket' ? rule.burst : rule.limit,
      remaining: reply[1],
      resetMs: reply[2],
      retryAfterMs: reply[3],
    };
  }

  function stepsArbitrary(backwards: boolean): fc.Arbitrary<Step[]> {
    const forward = [
      fc.integer({ min: 0, max: 50 }),
      fc.integer({ min: 0, max: 5_000 }),
      fc.integer({ min: 0, max: 200_000_000 }),
    ];
    return fc.array(
      fc.record<Step>({
        dt: backwards
          ? fc.oneof(...forward, fc.integer({ min: -100, max: -1 }))
          : fc.oneof(...forward),
        cost: fc.oneof(fc.integer({ min: 0, max: 3 }), fc.integer({ min: 0, max: 1_000_010 })),
        micros: fc.integer({ min: 0, max: 999 }),
      }),
      { minLength: 1, maxLength: 25 },
    );
  }

  /**
   * Runs the steps through the script and through `reference`, which returns the expected
   * decision for a step and updates its own model of the key.
   */
  function sameDecisions(
    backwards: boolean,
    reference: (
      state: RateState,
      rule: RateLimitRule,
      cost: number,
      now: number,
    ) => RateLimitDecision,
  ) {
    return fc.asyncProperty(
      ruleArbitrary,
      fc.integer({ min: 1_600_000_000_000, max: 1_900_000_000_000 }),
      stepsArbitrary(backwards),
      async (rule, start, sequence) => {
        const key = `bw:test:script:{${++run}}`;
        const state = createRateState();
        let now = start;
        for (const step of sequence) {
          now = Math.max(0, now + step.dt);
          const cost = Math.min(step.cost, rule.burst + 2);
          const expected = reference(state, rule, cost, now);
          const actual = await decide(key, rule, cost, now, step.micros);
          expect(actual).toEqual(expected);
        }
        await client.del(key);
      },
    );
  }

  it('gives the reference decision at every step while the clock moves forward', async () => {
    await fc.assert(sameDecisions(false, applyRateLimit), { numRuns: 150 });
  }, 60_000);

  it('keeps the last written time for a key when the clock steps back', async () => {
    // The script writes only when a decision counts a cost or starts a block (a peek or a plain
    // refusal leaves the stored record, which is equivalent while the clock moves forward).
    // After a backwards step the key resumes from its last written time: still no window rolls
    // back and no bucket refills twice. Model: the reference, persisted only on those writes.
    const written = (state: RateState, rule: RateLimitRule, cost: number, now: number) => {
      const next = { ...state };
      const decision = applyRateLimit(next, rule, cost, now);
      if ((decision.allowed && cost > 0) || next.blockedUntil !== state.blockedUntil) {
        Object.assign(state, next);
      }
      return decision;
    };
    await fc.assert(sameDecisions(true, written), { numRuns: 150 });
  }, 60_000);

  it('refunds as the reference would, between decisions that match the reference', async () => {
    // Steps with a negative cost are refunds of -cost, checked on the decisions that follow.
    const withRefunds = (state: RateState, rule: RateLimitRule, cost: number, now: number) => {
      if (cost >= 0) return applyRateLimit(state, rule, cost, now);
      refundReference(state, rule, -cost, now);
      return { allowed: true, limit: 0, remaining: 0, resetMs: 0, retryAfterMs: 0 };
    };
    await fc.assert(
      fc.asyncProperty(
        ruleArbitrary,
        fc.integer({ min: 1_600_000_000_000, max: 1_900_000_000_000 }),
        // Short steps and small costs: refunds land while the key still holds what they return.
        fc.array(
          fc.record({
            dt: fc.oneof(fc.integer({ min: 0, max: 50 }), fc.integer({ min: 0, max: 5_000 })),
            cost: fc.integer({ min: 0, max: 4 }),
            refund: fc.boolean(),
            micros: fc.integer({ min: 0, max: 999 }),
          }),
          { minLength: 1, maxLength: 30 },
        ),
        async (rule, start, sequence) => {
          const key = `bw:test:script:{${++run}}`;
          const state = createRateState();
          let now = start;
          for (const step of sequence) {
            now += step.dt;
            const signed = step.refund && step.cost > 0 ? -step.cost : step.cost;
            const expected = withRefunds(state, rule, signed, now);
            const actual = await decide(key, rule, signed, now, step.micros);
            if (signed >= 0) expect(actual).toEqual(expected);
            else expect(actual).toMatchObject({ allowed: true, remaining: 0, resetMs: 0 });
          }
          await client.del(key);
        },
      ),
      { numRuns: 150 },
    );
  }, 60_000);

  it('counts a record written by another algorithm as a missing key', async () => {
    const key = 'bw:test:script:{other-algorithm}';
    const fixed: RateLimitRule = {
      name: 'x',
      algorithm: 'fixed-window',
      limit: 2,
      windowMs: 1_000,
      burst: 2,
      blockDurationMs: 0,
    };
    const bucket: RateLimitRule = { ...fixed, algorithm: 'token-bucket' };
    const now = 1_700_000_000_000;
    await decide(key, fixed, 2, now, 0);
    expect((await decide(key, fixed, 1, now, 0)).allowed).toBe(false);
    expect(await decide(key, bucket, 1, now, 0)).toMatchObject({ allowed: true, remaining: 1 });
    await client.del(key);
  });

  it('counts a record of another size as a missing key and replaces it', async () => {
    const key = 'bw:test:script:{garbage}';
    await client.set(key, 'not a record');
    const rule: RateLimitRule = {
      name: 'x',
      algorithm: 'fixed-window',
      limit: 3,
      windowMs: 1_000,
      burst: 3,
      blockDurationMs: 0,
    };
    expect(await decide(key, rule, 1, 1_700_000_000_000, 0)).toMatchObject({
      allowed: true,
      remaining: 2,
    });
    // 41 bytes: algorithm code, then time, value, previous, blockedUntil, expiresAt as doubles.
    const record = (await client.getBuffer(key))!;
    expect(record).toHaveLength(41);
    const fields = [1, 9, 17, 25, 33].map((offset) => record.readDoubleLE(offset));
    expect([record[0], ...fields]).toEqual([1, 1_700_000_000_000, 1, 0, 0, 1_700_000_001_000]);
    await client.del(key);
  });
});
