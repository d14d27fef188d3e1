/*
 * Rate-limiting algorithms: the reference semantics every RateLimitStore implements.
 *
 * The Redis store runs the same arithmetic in one Lua script; this comment is the contract
 * between the two. Every function takes a mutable per-key state record, the rule, an integer
 * `cost` >= 0 and `now`, updates the record in place and returns the decision. Nothing else is
 * allocated.
 *
 * ## Units and rounding
 *
 * - All times are integer milliseconds. `now` is an integer (the memory store floors a
 *   fractional clock; Redis uses TIME as `seconds * 1000 + floor(microseconds / 1000)`).
 * - `cost`, `limit`, `burst`, `windowMs` and `blockDurationMs` are integers; `cost >= 0`,
 *   `limit >= 1`, `burst >= 1`, `windowMs >= 1`, `blockDurationMs >= 0`.
 * - All stored values are integers. The sliding window and the token bucket compare in units
 *   scaled by `windowMs`, so no fractional value is ever stored. The limiter guarantees
 *   `limit * windowMs <= 2^50` and `burst * windowMs <= 2^50` for those two algorithms, so every
 *   product below is an exact integer in a double (Lua numbers included) and every quotient
 *   below rounds the way it is written.
 * - The only rounding: `floor(...)` and `ceil(...)` exactly where written below.
 *
 * ## State per key (RateState)
 *
 *   time          fixed/sliding: start of the current window; token bucket: time of the last refill
 *   value         fixed/sliding: count in the current window; token bucket: level (see below)
 *   previous      sliding: count of the window before `time`; 0 for the other algorithms
 *   blockedUntil  end of a block (0: never blocked)
 *   expiresAt     the time at which the record becomes equivalent to a missing key
 *
 * A missing key, or one with `expiresAt <= now`, is "fresh" and is initialised as stated per
 * algorithm. A store with native expiry (Redis) need not store `expiresAt`: it stores `time`,
 * `value`, `previous` (sliding only) and `blockedUntil`, and sets the key's expiry instead. A store may delete a key once `now >= expiresAt` (Redis: PEXPIREAT expiresAt, or
 * PEXPIRE expiresAt - now). When a decision leaves `expiresAt <= now` there is nothing to keep:
 * the store deletes the key or does not write it. A peek (cost 0) changes nothing a store must
 * write: the record may be normalised (window rolled, bucket refilled) but the normalised
 * record is equivalent to the stored one.
 *
 * If the key is live and `now < time` (a clock that moved backwards), `now` is taken as `time`:
 * time never runs backwards for a key, no window rolls back and no bucket refills twice.
 *
 * ## Common steps (all algorithms)
 *
 *   capacity = limit (fixed, sliding) or burst (token bucket); the decision's `limit` is capacity.
 *   1. Normalise the state (per algorithm, below).
 *   2. Compute `fits` and `wait` (the algorithm's retry time for this cost, 0 when it fits):
 *      - cost > capacity: never fits; wait = windowMs (a finite positive hint, waiting will not
 *        help); such a refusal never counts and never starts a block.
 *      - otherwise per algorithm.
 *   3. If `fits` and not blocked (blockedUntil <= now): apply the cost, allowed, retryAfterMs = 0.
 *   4. Otherwise refused, nothing is counted:
 *      - if not blocked, blockDurationMs > 0, 0 < cost <= capacity:
 *        blockedUntil = now + blockDurationMs (a refusal during a block does not extend it)
 *      - if blocked now (blockedUntil > now), with block = blockedUntil - now:
 *        retryAfterMs = max(wait, block), resetMs = max(resetMs, block), remaining = 0,
 *        expiresAt = max(expiresAt, blockedUntil)
 *      - else retryAfterMs = wait.
 *   A peek (cost 0) always fits, so it is allowed unless the key is blocked.
 *
 * ## fixed-window
 *
 *   start = now - (now mod windowMs)                  windows aligned to multiples of windowMs
 *   fresh:             time = start, value = 0, previous = 0, blockedUntil = 0
 *   live, start > time: time = start, value = 0       (new window)
 *   fits      = value + cost <= limit;      on allow: value += cost
 *   remaining = limit - value                        (after the decision; 0 while blocked)
 *   resetMs   = time + windowMs - now                (time to the window end)
 *   wait      = resetMs when it does not fit
 *   expiresAt = value > 0 ? time + windowMs : 0     (then max with blockedUntil, step 4)
 *
 * ## sliding-window (weighted two-window counter)
 *
 *   start = now - (now mod windowMs)
 *   fresh:              time = start, value = 0, previous = 0, blockedUntil = 0
 *   live, start > time: previous = (start - time == windowMs) ? value : 0; value = 0; time = start
 *   elapsed = now - time                              (0 <= elapsed < windowMs)
 *   The previous window counts with weight (windowMs - elapsed) / windowMs, so in scaled units:
 *     used  = previous * (windowMs - elapsed) + value * windowMs
 *     fits  = used + cost * windowMs <= limit * windowMs;   on allow: value += cost
 *   remaining = max(0, floor((limit * windowMs - used) / windowMs))   (used after the decision)
 *   resetMs   = value > 0 ? time + 2 * windowMs - now    (both windows slid out)
 *             : previous > 0 ? time + windowMs - now
 *             : 0
 *   wait (exact time until the same request would fit with no further traffic), with
 *     a = limit - value - cost and a2 = limit - cost (a2 >= 0 since cost <= limit):
 *     - still in this window: if a >= 0 and previous > 0, e = windowMs - floor(a * windowMs / previous);
 *       if e < windowMs then wait = e - elapsed
 *     - else in the next window (previous' = value, value' = 0):
 *       if value <= a2: wait = windowMs - elapsed
 *       else wait = 2 * windowMs - elapsed - floor(a2 * windowMs / value)
 *     so 0 < wait <= 2 * windowMs - elapsed.
 *   expiresAt = value > 0 ? time + 2 * windowMs : previous > 0 ? time + windowMs : 0
 *
 * ## token-bucket
 *
 *   One token is `windowMs` level units; the bucket refills `limit` units per millisecond
 *   (= limit tokens per windowMs, continuously), up to cap = burst * windowMs.
 *   fresh:               value = cap, time = now, previous = 0, blockedUntil = 0
 *   live, now > time:    value = min(cap, value + (now - time) * limit); time = now
 *   need = cost * windowMs
 *   fits      = value >= need;         on allow: value -= need
 *   remaining = floor(value / windowMs)                (0 while blocked)
 *   resetMs   = ceil((cap - value) / limit)            (time until full; 0 when full)
 *   wait      = ceil((need - value) / limit) when it does not fit
 *   expiresAt = value < cap ? time + resetMs : 0       (a full bucket equals a missing key)
 *
 * ## refund (give back what an allowed decision took)
 *
 *   A fresh key (missing, or expiresAt <= now) is left alone: there is nothing to give back.
 *   Otherwise normalise the state exactly as a decision would (window rolled, bucket refilled,
 *   a clock that moved backwards taken as `time`), then:
 *   fixed-window, sliding-window: value = max(0, value - cost)   (the current window only)
 *   token-bucket:                 value = min(cap, value + cost * windowMs)
 *   expiresAt is recomputed as on the allowed path above, then max with blockedUntil while a
 *   block runs (a refund never lifts a block). When it leaves expiresAt <= now, the store deletes
 *   the key.
 */

import type { RateLimitDecision, RateLimitRule } from './rate-limit-store';

/** The largest `limit * windowMs` (and `burst * windowMs`) the scaled algorithms accept. */
export const MAX_SCALED = 2 ** 50;

/** Mutable per-key state shared by all algorithms (see the file header for the meaning). */
export interface RateState {
  time: number;
  value: number;
  previous: number;
  blockedUntil: number;
  expiresAt: number;
}

/** A fresh (empty, expired) state record. */
export function createRateState(): RateState {
  return { time: 0, value: 0, previous: 0, blockedUntil: 0, expiresAt: 0 };
}

/** The capacity a decision reports as `limit`: the burst for a token bucket, else the limit. */
export function capacityOf(rule: RateLimitRule): number {
  return rule.algorithm === 'token-bucket' ? rule.burst : rule.limit;
}

/** Runs the rule's algorithm for one decision. */
export function applyRateLimit(
  state: RateState,
  rule: RateLimitRule,
  cost: number,
  now: number,
): RateLimitDecision {
  switch (rule.algorithm) {
    case 'fixed-window':
      return fixedWindow(state, rule, cost, now);
    case 'sliding-window':
      return slidingWindow(state, rule, cost, now);
    case 'token-bucket':
      return tokenBucket(state, rule, cost, now);
  }
}

/** Fixed window aligned to multiples of `windowMs`. */
export function fixedWindow(
  state: RateState,
  rule: RateLimitRule,
  cost: number,
  now: number,
): RateLimitDecision {
  const windowMs = rule.windowMs;
  const limit = rule.limit;
  if (state.expiresAt <= now) {
    state.time = now - (now % windowMs);
    state.value = 0;
    state.previous = 0;
    state.blockedUntil = 0;
  } else if (now < state.time) {
    now = state.time;
  } else if (now - state.time >= windowMs) {
    state.time = now - (now % windowMs);
    state.value = 0;
  }
  const resetMs = state.time + windowMs - now;
  let wait = 0;
  if (cost > limit) wait = windowMs;
  else if (state.value + cost > limit) wait = resetMs;
  if (wait === 0 && state.blockedUntil <= now) {
    const value = (state.value += cost);
    state.expiresAt = value > 0 ? state.time + windowMs : 0;
    return { allowed: true, limit, remaining: limit - value, resetMs, retryAfterMs: 0 };
  }
  const value = state.value;
  return refuse(
    state,
    rule,
    cost,
    now,
    limit,
    wait,
    limit - value > 0 ? limit - value : 0,
    resetMs,
    value > 0 ? state.time + windowMs : 0,
  );
}

/** Weighted two-window counter: O(1) state per key. */
export function slidingWindow(
  state: RateState,
  rule: RateLimitRule,
  cost: number,
  now: number,
): RateLimitDecision {
  const windowMs = rule.windowMs;
  const limit = rule.limit;
  if (state.expiresAt <= now) {
    state.time = now - (now % windowMs);
    state.value = 0;
    state.previous = 0;
    state.blockedUntil = 0;
  } else if (now < state.time) {
    now = state.time;
  } else if (now - state.time >= windowMs) {
    const start = now - (now % windowMs);
    state.previous = start - state.time === windowMs ? state.value : 0;
    state.value = 0;
    state.time = start;
  }
  const elapsed = now - state.time;
  const previous = state.previous;
  const scaledLimit = limit * windowMs;
  const prevUsed = previous * (windowMs - elapsed);
  let wait = 0;
  if (cost > limit) {
    wait = windowMs;
  } else if (prevUsed + (state.value + cost) * windowMs > scaledLimit) {
    wait = slidingWait(previous, state.value, cost, limit, windowMs, elapsed);
  }
  if (wait === 0 && state.blockedUntil <= now) {
    const value = (state.value += cost);
    const left = Math.floor((scaledLimit - prevUsed - value * windowMs) / windowMs);
    let resetMs = 0;
    let expiresAt = 0;
    if (value > 0) {
      expiresAt = state.time + 2 * windowMs;
      resetMs = expiresAt - now;
    } else if (previous > 0) {
      expiresAt = state.time + windowMs;
      resetMs = expiresAt - now;
    }
    state.expiresAt = expiresAt;
    return { allowed: true, limit, remaining: left > 0 ? left : 0, resetMs, retryAfterMs: 0 };
  }
  const value = state.value;
  const left = Math.floor((scaledLimit - prevUsed - value * windowMs) / windowMs);
  let expiresAt = 0;
  if (value > 0) expiresAt = state.time + 2 * windowMs;
  else if (previous > 0) expiresAt = state.time + windowMs;
  return refuse(
    state,
    rule,
    cost,
    now,
    limit,
    wait,
    left > 0 ? left : 0,
    expiresAt > now ? expiresAt - now : 0,
    expiresAt,
  );
}

/** Exact time until `cost` fits in a sliding window with no further traffic (cost <= limit). */
function slidingWait(
  previous: number,
  value: number,
  cost: number,
  limit: number,
  windowMs: number,
  elapsed: number,
): number {
  const a = limit - value - cost;
  if (a >= 0 && previous > 0) {
    const e = windowMs - Math.floor((a * windowMs) / previous);
    if (e < windowMs) return e - elapsed;
  }
  const a2 = limit - cost;
  if (value <= a2) return windowMs - elapsed;
  return 2 * windowMs - elapsed - Math.floor((a2 * windowMs) / value);
}

/** Token bucket: capacity `burst`, refilling `limit` tokens per `windowMs` continuously. */
export function tokenBucket(
  state: RateState,
  rule: RateLimitRule,
  cost: number,
  now: number,
): RateLimitDecision {
  const windowMs = rule.windowMs;
  const refill = rule.limit;
  const burst = rule.burst;
  const cap = burst * windowMs;
  if (state.expiresAt <= now) {
    state.value = cap;
    state.time = now;
    state.previous = 0;
    state.blockedUntil = 0;
  } else if (now > state.time) {
    const level = state.value + (now - state.time) * refill;
    state.value = level < cap ? level : cap;
    state.time = now;
  } else {
    now = state.time;
  }
  const need = cost * windowMs;
  let wait = 0;
  if (cost > burst) wait = windowMs;
  else if (state.value < need) wait = Math.ceil((need - state.value) / refill);
  if (wait === 0 && state.blockedUntil <= now) {
    const value = (state.value -= need);
    const resetMs = Math.ceil((cap - value) / refill);
    state.expiresAt = value < cap ? now + resetMs : 0;
    return {
      allowed: true,
      limit: burst,
      remaining: Math.floor(value / windowMs),
      resetMs,
      retryAfterMs: 0,
    };
  }
  const value = state.value;
  const resetMs = Math.ceil((cap - value) / refill);
  return refuse(
    state,
    rule,
    cost,
    now,
    burst,
    wait,
    Math.floor(value / windowMs),
    resetMs,
    value < cap ? now + resetMs : 0,
  );
}

/** Step 4 of the header: a refusal, with the block applied. Counts nothing. */
function refuse(
  state: RateState,
  rule: RateLimitRule,
  cost: number,
  now: number,
  capacity: number,
  retryAfterMs: number,
  remaining: number,
  resetMs: number,
  expiresAt: number,
): RateLimitDecision {
  let blockedUntil = state.blockedUntil;
  if (blockedUntil <= now && rule.blockDurationMs > 0 && cost > 0 && cost <= capacity) {
    blockedUntil = state.blockedUntil = now + rule.blockDurationMs;
  }
  if (blockedUntil > now) {
    const block = blockedUntil - now;
    if (block > retryAfterMs) retryAfterMs = block;
    if (block > resetMs) resetMs = block;
    remaining = 0;
    if (blockedUntil > expiresAt) expiresAt = blockedUntil;
  }
  state.expiresAt = expiresAt;
  return { allowed: false, limit: capacity, remaining, resetMs, retryAfterMs };
}

/**
 * Gives back `cost` units of an earlier allowed decision (see "refund" in the file header):
 * updates a live record in place; a fresh record is left alone.
 */
export function refundRateLimit(
  state: RateState,
  rule: RateLimitRule,
  cost: number,
  now: number,
): void {
  if (state.expiresAt <= now) return;
  const windowMs = rule.windowMs;
  if (now < state.time) now = state.time;
  let expiresAt: number;
  if (rule.algorithm === 'token-bucket') {
    const cap = rule.burst * windowMs;
    const level = state.value + (now - state.time) * rule.limit + cost * windowMs;
    const value = (state.value = level < cap ? level : cap);
    state.time = now;
    expiresAt = value < cap ? now + Math.ceil((cap - value) / rule.limit) : 0;
  } else {
    if (now - state.time >= windowMs) {
      const start = now - (now % windowMs);
      state.previous =
        rule.algorithm === 'sliding-window' && start - state.time === windowMs ? state.value : 0;
      state.value = 0;
      state.time = start;
    }
    const value = (state.value = state.value > cost ? state.value - cost : 0);
    if (rule.algorithm === 'fixed-window') expiresAt = value > 0 ? state.time + windowMs : 0;
    else if (value > 0) expiresAt = state.time + 2 * windowMs;
    else expiresAt = state.previous > 0 ? state.time + windowMs : 0;
  }
  state.expiresAt =
    state.blockedUntil > now && state.blockedUntil > expiresAt ? state.blockedUntil : expiresAt;
}
