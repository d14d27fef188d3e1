// Test helpers for users and for the packages that implement Breakwater contracts.
import type {
  RateLimitAlgorithm,
  RateLimitDecision,
  RateLimitRule,
  RateLimitStore,
} from './rate-limit/rate-limit-store';
import type { PressureMonitor, PressureReading } from './http/process-pressure';

/** One case of the rate-limit store conformance suite: `run` throws an Error on failure. */
export interface RateLimitStoreConformanceCase {
  /** What the case checks, e.g. `fixed-window: allows up to the limit, then refuses`. */
  name: string;
  /** Runs the case against `store`; rejects with an Error describing the first failure. */
  run(store: RateLimitStore): Promise<void>;
}

/** Options of {@link rateLimitStoreConformance}. */
export interface RateLimitStoreConformanceOptions {
  /**
   * Prefix of every rule name the suite uses. Each call of {@link rateLimitStoreConformance}
   * adds a unique run id after it, so a shared server needs no flush between runs.
   * @defaultValue `'conformance'`
   */
  prefix?: string;
  /** The algorithms to check. @defaultValue all three */
  algorithms?: readonly RateLimitAlgorithm[];
  /**
   * Whether to check `refund()` (a store that does not implement it then fails those cases).
   * @defaultValue true
   */
  refund?: boolean;
}

/** The test-runner functions {@link describeRateLimitStore} registers cases with (Jest, Vitest, node:test). */
export interface TestRunnerApi {
  describe: (name: string, fn: () => void) => void;
  it: (name: string, fn: () => Promise<void>) => void;
}

/** Options of {@link describeRateLimitStore}. */
export interface DescribeRateLimitStoreOptions
  extends TestRunnerApi, RateLimitStoreConformanceOptions {
  /**
   * Called after each case with the store it used.
   * @defaultValue `store.close?.()`
   */
  cleanup?: (store: RateLimitStore) => void | Promise<void>;
}

const ALL_ALGORITHMS: readonly RateLimitAlgorithm[] = [
  'fixed-window',
  'sliding-window',
  'token-bucket',
];
/**
 * One hour: long enough that no window edge or measurable refill falls inside a case (windows
 * are aligned to multiples of the window, so a case could only straddle an hour boundary).
 */
const WINDOW_MS = 3_600_000;
const LIMIT = 5;

let runCounter = 0;

/**
 * The conformance suite every {@link RateLimitStore} must pass: a list of named cases, usable
 * from any test runner. Cases never wait for time to pass (a shared store may use its server's
 * clock), and use rule names unique to this call, so a shared server needs no flush.
 *
 * @example
 * ```ts
 * import { rateLimitStoreConformance } from '@breakwater/core/testing';
 *
 * for (const c of rateLimitStoreConformance()) {
 *   test(c.name, async () => {
 *     const store = new MyStore();
 *     try { await c.run(store); } finally { await store.close?.(); }
 *   });
 * }
 * ```
 */
export function rateLimitStoreConformance(
  options: RateLimitStoreConformanceOptions = {},
): RateLimitStoreConformanceCase[] {
  const runId = `${Date.now().toString(36)}${(runCounter++).toString(36)}${Math.random().toString(36).slice(2, 8)}`;
  const prefix = `${options.prefix ?? 'conformance'}:${runId}`;
  const algorithms = options.algorithms ?? ALL_ALGORITHMS;
  let ruleCounter = 0;
  const rule = (
    algorithm: RateLimitAlgorithm,
    overrides: Partial<Omit<RateLimitRule, 'name' | 'algorithm'>> = {},
  ): RateLimitRule => {
    const limit = overrides.limit ?? LIMIT;
    return Object.freeze({
      name: `${prefix}:${ruleCounter++}`,
      algorithm,
      limit,
      windowMs: overrides.windowMs ?? WINDOW_MS,
      burst: overrides.burst ?? limit,
      blockDurationMs: overrides.blockDurationMs ?? 0,
    });
  };

  const cases: RateLimitStoreConformanceCase[] = [];
  const add = (name: string, run: (store: RateLimitStore) => Promise<void>): void => {
    cases.push({ name, run });
  };

  for (const algorithm of algorithms) {
    const maxRetryMs = algorithm === 'sliding-window' ? 2 * WINDOW_MS : WINDOW_MS;

    add(`${algorithm}: allows up to the limit, then refuses`, async (store) => {
      const r = rule(algorithm);
      for (let i = 1; i <= LIMIT; i++) {
        const d = await consume(store, 'k', 1, r);
        expect(d.allowed, `request ${i} of ${LIMIT} to be allowed`, d);
      }
      const refused = await consume(store, 'k', 1, r);
      expect(!refused.allowed, `request ${LIMIT + 1} to be refused`, refused);
      expect(refused.remaining === 0, 'remaining 0 when refused', refused);
      expect(refused.retryAfterMs > 0, 'retryAfterMs > 0 when refused', refused);
    });

    add(`${algorithm}: remaining counts down and limit is reported`, async (store) => {
      const r = rule(algorithm);
      for (let i = 1; i <= LIMIT; i++) {
        const d = await consume(store, 'k', 1, r);
        expect(d.remaining === LIMIT - i, `remaining ${LIMIT - i} after ${i} requests`, d);
        expect(d.limit === LIMIT, `limit ${LIMIT}`, d);
        expect(d.retryAfterMs === 0, 'retryAfterMs 0 when allowed', d);
      }
    });

    add(`${algorithm}: a cost above 1 counts that many`, async (store) => {
      const r = rule(algorithm);
      const first = await consume(store, 'k', 3, r);
      expect(first.allowed && first.remaining === 2, 'cost 3 allowed with 2 remaining', first);
      const second = await consume(store, 'k', 3, r);
      expect(!second.allowed, 'cost 3 refused with 2 remaining', second);
      expect(second.remaining === 2, 'a refusal counts nothing (remaining stays 2)', second);
      const third = await consume(store, 'k', 2, r);
      expect(third.allowed && third.remaining === 0, 'cost 2 allowed with 0 remaining', third);
    });

    add(`${algorithm}: a cost above the limit is refused and counts nothing`, async (store) => {
      const r = rule(algorithm);
      const refused = await consume(store, 'k', LIMIT + 1, r);
      expect(!refused.allowed, `cost ${LIMIT + 1} refused`, refused);
      expect(refused.retryAfterMs > 0, 'retryAfterMs > 0', refused);
      const full = await consume(store, 'k', LIMIT, r);
      expect(full.allowed && full.remaining === 0, `cost ${LIMIT} still allowed afterwards`, full);
    });

    add(`${algorithm}: a cost of 0 peeks without counting`, async (store) => {
      const r = rule(algorithm);
      const fresh = await consume(store, 'k', 0, r);
      expect(
        fresh.allowed && fresh.remaining === LIMIT,
        'a peek on a new key sees the full limit',
        fresh,
      );
      await consume(store, 'k', 2, r);
      for (let i = 0; i < 3; i++) {
        const peek = await consume(store, 'k', 0, r);
        expect(peek.remaining === LIMIT - 2, 'peeks leave remaining unchanged', peek);
      }
      const next = await consume(store, 'k', LIMIT - 2, r);
      expect(next.allowed && next.remaining === 0, 'peeks consumed nothing', next);
    });

    add(`${algorithm}: keys and rule names are independent`, async (store) => {
      const r = rule(algorithm);
      const other = rule(algorithm);
      await consume(store, 'a', LIMIT, r);
      const sameKey = await consume(store, 'a', 1, r);
      expect(!sameKey.allowed, 'key a exhausted', sameKey);
      const otherKey = await consume(store, 'b', 1, r);
      expect(
        otherKey.allowed && otherKey.remaining === LIMIT - 1,
        'key b unaffected by key a',
        otherKey,
      );
      const otherRule = await consume(store, 'a', 1, other);
      expect(
        otherRule.allowed && otherRule.remaining === LIMIT - 1,
        'the same key under another rule name is unaffected',
        otherRule,
      );
    });

    add(`${algorithm}: reset forgets the key`, async (store) => {
      const r = rule(algorithm);
      await consume(store, 'k', LIMIT, r);
      await consume(store, 'other', 1, r);
      await store.reset('k', r);
      const after = await consume(store, 'k', 1, r);
      expect(after.allowed && after.remaining === LIMIT - 1, 'a reset key starts afresh', after);
      const untouched = await consume(store, 'other', 0, r);
      expect(untouched.remaining === LIMIT - 1, 'reset leaves other keys alone', untouched);
      await store.reset('never-used', r);
    });

    add(`${algorithm}: retryAfterMs and resetMs stay within their bounds`, async (store) => {
      const r = rule(algorithm);
      const allowed = await consume(store, 'k', LIMIT, r);
      expect(
        allowed.resetMs > 0 && allowed.resetMs <= maxRetryMs,
        `resetMs in (0, ${maxRetryMs}] after counting`,
        allowed,
      );
      const refused = await consume(store, 'k', 1, r);
      expect(!refused.allowed, 'refused once exhausted', refused);
      expect(
        refused.retryAfterMs > 0 && refused.retryAfterMs <= maxRetryMs,
        `retryAfterMs in (0, ${maxRetryMs}]`,
        refused,
      );
      expect(
        refused.resetMs >= refused.retryAfterMs && refused.resetMs <= maxRetryMs,
        `resetMs in [retryAfterMs, ${maxRetryMs}]`,
        refused,
      );
      expect(
        isInteger(refused.retryAfterMs) && isInteger(refused.resetMs),
        'integer milliseconds',
        refused,
      );
    });

    add(`${algorithm}: concurrent calls never over-admit`, async (store) => {
      const r = rule(algorithm, { limit: 10 });
      const decisions = await Promise.all(
        Array.from({ length: 50 }, () => consume(store, 'k', 1, r)),
      );
      const allowed = decisions.filter((d) => d.allowed).length;
      if (allowed !== 10) {
        throw new Error(`expected exactly 10 of 50 concurrent requests allowed, got ${allowed}`);
      }
      const remaining = decisions
        .filter((d) => d.allowed)
        .map((d) => d.remaining)
        .sort((a, b) => a - b);
      if (remaining.join() !== '0,1,2,3,4,5,6,7,8,9') {
        throw new Error(
          `expected the allowed decisions to count down 9..0, got ${remaining.join()}`,
        );
      }
    });

    add(`${algorithm}: a block keeps the key refused for blockDurationMs`, async (store) => {
      const blockDurationMs = 3 * WINDOW_MS;
      const r = rule(algorithm, { blockDurationMs });
      await consume(store, 'k', LIMIT, r);
      const first = await consume(store, 'k', 1, r);
      expect(!first.allowed, 'refused once exhausted', first);
      expect(
        first.retryAfterMs > maxRetryMs && first.retryAfterMs <= blockDurationMs,
        `retryAfterMs is the time to the block end (in (${maxRetryMs}, ${blockDurationMs}])`,
        first,
      );
      const peek = await consume(store, 'k', 0, r);
      expect(!peek.allowed && peek.remaining === 0, 'even a peek is refused while blocked', peek);
      expect(peek.retryAfterMs <= first.retryAfterMs, 'a refusal does not extend the block', peek);
      const other = await consume(store, 'other', 1, r);
      expect(other.allowed, 'other keys are not blocked', other);
      await store.reset('k', r);
      const after = await consume(store, 'k', 1, r);
      expect(after.allowed, 'reset lifts the block', after);
    });

    if (options.refund !== false) addRefundCases(add, algorithm, rule);
  }

  if (algorithms.includes('token-bucket')) {
    add('token-bucket: the burst is the capacity', async (store) => {
      const r = rule('token-bucket', { limit: 1, burst: 4 });
      for (let i = 1; i <= 4; i++) {
        const d = await consume(store, 'k', 1, r);
        expect(
          d.allowed && d.remaining === 4 - i && d.limit === 4,
          `burst request ${i} allowed`,
          d,
        );
      }
      const refused = await consume(store, 'k', 1, r);
      expect(!refused.allowed, 'refused after the burst', refused);
      // One token per hour: the next one is due within the window.
      expect(
        refused.retryAfterMs > 0 && refused.retryAfterMs <= WINDOW_MS,
        `retryAfterMs in (0, ${WINDOW_MS}] for one token`,
        refused,
      );
      const tooBig = await consume(store, 'other', 5, r);
      expect(!tooBig.allowed, 'a cost above the burst is refused', tooBig);
      const fits = await consume(store, 'other', 4, r);
      expect(
        fits.allowed,
        'a cost equal to the burst (above the refill limit) fits a full bucket',
        fits,
      );
    });
  }

  return cases;
}

type RuleFactory = (
  algorithm: RateLimitAlgorithm,
  overrides?: Partial<Omit<RateLimitRule, 'name' | 'algorithm'>>,
) => RateLimitRule;

function addRefundCases(
  add: (name: string, run: (store: RateLimitStore) => Promise<void>) => void,
  algorithm: RateLimitAlgorithm,
  rule: RuleFactory,
): void {
  const refund = (store: RateLimitStore, key: string, cost: number, r: RateLimitRule) => {
    if (typeof store.refund !== 'function') throw new Error('expected the store to have refund()');
    return store.refund(key, cost, r);
  };

  add(`${algorithm}: refund gives back what was counted`, async (store) => {
    const r = rule(algorithm);
    await consume(store, 'k', LIMIT, r);
    const refused = await consume(store, 'k', 1, r);
    expect(!refused.allowed, 'refused once exhausted', refused);
    await refund(store, 'k', 2, r);
    const peek = await consume(store, 'k', 0, r);
    expect(peek.allowed && peek.remaining === 2, 'remaining 2 after a refund of 2', peek);
    const again = await consume(store, 'k', 2, r);
    expect(again.allowed && again.remaining === 0, 'the refunded units can be used again', again);
  });

  add(`${algorithm}: refund never goes below an empty count`, async (store) => {
    const r = rule(algorithm);
    await consume(store, 'k', 1, r);
    await refund(store, 'k', LIMIT * 3, r);
    const peek = await consume(store, 'k', 0, r);
    expect(peek.remaining === LIMIT, `remaining capped at ${LIMIT}`, peek);
    const full = await consume(store, 'k', LIMIT, r);
    expect(full.allowed && full.remaining === 0, 'exactly the limit fits afterwards', full);
    const refused = await consume(store, 'k', 1, r);
    expect(!refused.allowed, 'and no more than the limit', refused);
  });

  add(`${algorithm}: refund of an unknown key leaves it unknown`, async (store) => {
    const r = rule(algorithm);
    await refund(store, 'never-used', 3, r);
    const fresh = await consume(store, 'never-used', 0, r);
    expect(fresh.allowed && fresh.remaining === LIMIT, 'an unknown key is still full', fresh);
    const counted = await consume(store, 'never-used', LIMIT, r);
    expect(counted.allowed && counted.remaining === 0, 'no credit above the limit', counted);
  });

  add(`${algorithm}: refund leaves other keys and a block alone`, async (store) => {
    const r = rule(algorithm, { blockDurationMs: 3 * WINDOW_MS });
    await consume(store, 'k', LIMIT, r);
    await consume(store, 'other', 2, r);
    const blocked = await consume(store, 'k', 1, r);
    expect(!blocked.allowed, 'refused and blocked once exhausted', blocked);
    await refund(store, 'k', LIMIT, r);
    const still = await consume(store, 'k', 1, r);
    expect(!still.allowed, 'a refund does not lift a block', still);
    const other = await consume(store, 'other', 0, r);
    expect(other.remaining === LIMIT - 2, 'other keys keep their count', other);
  });
}

/**
 * Registers the conformance suite with a Jest-like API passed in (`describe`, `it`). `makeStore`
 * is called once per case; the store is closed after the case unless `cleanup` says otherwise.
 *
 * @example
 * ```ts
 * import { describe, it } from '@jest/globals';
 * import { describeRateLimitStore } from '@breakwater/core/testing';
 *
 * describeRateLimitStore('MyStore', () => new MyStore(), { describe, it });
 * ```
 */
export function describeRateLimitStore(
  name: string,
  makeStore: () => RateLimitStore | Promise<RateLimitStore>,
  options: DescribeRateLimitStoreOptions,
): void {
  const { describe, it, cleanup, ...suiteOptions } = options;
  const cases = rateLimitStoreConformance(suiteOptions);
  describe(name, () => {
    for (const testCase of cases) {
      it(testCase.name, async () => {
        const store = await makeStore();
        try {
          await testCase.run(store);
        } finally {
          if (cleanup === undefined) await store.close?.();
          else await cleanup(store);
        }
      });
    }
  });
}

async function consume(
  store: RateLimitStore,
  key: string,
  cost: number,
  rule: RateLimitRule,
): Promise<RateLimitDecision> {
  const d = await store.consume(key, cost, rule);
  if (
    typeof d !== 'object' ||
    d === null ||
    typeof d.allowed !== 'boolean' ||
    !isInteger(d.limit) ||
    !isInteger(d.remaining) ||
    !isInteger(d.resetMs) ||
    !isInteger(d.retryAfterMs) ||
    d.remaining < 0 ||
    d.resetMs < 0 ||
    d.retryAfterMs < 0 ||
    (d.allowed && d.retryAfterMs !== 0)
  ) {
    throw new Error(
      `expected a decision with integer fields >= 0 (retryAfterMs 0 when allowed), got ${JSON.stringify(d)}`,
    );
  }
  return d;
}

function isInteger(value: unknown): boolean {
  return typeof value === 'number' && Number.isInteger(value);
}

function expect(condition: boolean, what: string, decision: RateLimitDecision): void {
  if (!condition) throw new Error(`expected ${what}, got ${JSON.stringify(decision)}`);
}

/**
 * A {@link PressureMonitor} set by hand, for testing load shedding without loading the process:
 * pass it as a load shedder's `monitor` and call {@link ManualPressureMonitor.set}.
 *
 * @example
 * ```ts
 * const monitor = new ManualPressureMonitor();
 * app.use(loadShed({ maxEventLoopDelayMs: 100, monitor }));
 * monitor.set({ eventLoopDelayMs: 250 }); // every non-critical request is shed now
 * ```
 */
export class ManualPressureMonitor implements PressureMonitor {
  /** The latest reading. */
  current: PressureReading = {
    eventLoopDelayMs: 0,
    eventLoopUtilization: 0,
    heapUsedBytes: 0,
    heapUsedRatio: 0,
  };
  /** The intervals subscribers asked for, in subscription order. */
  readonly intervals: number[] = [];
  private readonly subscribers = new Set<(reading: PressureReading) => void>();

  /** Number of active subscriptions. */
  get subscriberCount(): number {
    return this.subscribers.size;
  }

  subscribe(intervalMs: number, onSample: (reading: PressureReading) => void): () => void {
    this.intervals.push(intervalMs);
    this.subscribers.add(onSample);
    return () => {
      this.subscribers.delete(onSample);
    };
  }

  /** Changes the reading and delivers it to every subscriber, as a sample would. */
  set(reading: Partial<PressureReading>): void {
    this.current = { ...this.current, ...reading };
    for (const subscriber of this.subscribers) subscriber(this.current);
  }
}
