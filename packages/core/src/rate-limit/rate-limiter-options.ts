import type { CircuitBreaker } from '../breaker/circuit-breaker';
import { systemClock, type Clock } from '../time/clock';
import { durationOption, type Duration } from '../time/duration';
import { ConfigError } from '../errors';
import { checkStore, type StoreBreakerOptions } from './failover-rate-limit-store';
import { loggerOption, type Logger } from '../internal/log';
import { MAX_SCALED } from './algorithms';
import {
  checkClock,
  checkKnownKeys,
  checkObject,
  integerOption,
  oneOf,
  stringOption,
} from '../internal/validate';
import { rateOption, type Rate } from './rate';
import type { RateLimitAlgorithm, RateLimitRule, RateLimitStore } from './rate-limit-store';

/** What a limiter does when its store fails, times out, or its circuit is open. */
export type StoreFailurePolicy = 'fallback' | 'allow' | 'deny';

/** Options of {@link RateLimiter}. Give either `rate`, or `limit` and `window`. */
export interface RateLimiterOptions {
  /** The limiter's name: namespaces its keys in the store and names it in health and errors. */
  name: string;
  /** The algorithm. @defaultValue `'fixed-window'` */
  algorithm?: RateLimitAlgorithm;
  /** The rate as a string (`'100/h'`, `'10/s'`, `'5/15m'`) or `{ limit, window }`. */
  rate?: Rate;
  /** Requests (or cost units) per window; for a token bucket, tokens refilled per window. */
  limit?: number;
  /** The window: milliseconds or a duration string such as `'1m'`. */
  window?: Duration;
  /** Token-bucket capacity (token-bucket only). @defaultValue `limit` */
  burst?: number;
  /** After a refusal, keep the key refused for this long. @defaultValue 0 (off) */
  blockDurationMs?: Duration;
  /** Where the counts live. @defaultValue a new `MemoryRateLimitStore` */
  store?: RateLimitStore;
  /**
   * What to do when a non-local store fails, times out, or its circuit is open: `'fallback'`
   * answers from `fallbackStore`, `'allow'` allows the request (fail open), `'deny'` refuses it
   * (fail closed) with `retryAfterMs` = the circuit's time to the next probe, at least 1 s.
   * @defaultValue `'fallback'`
   */
  onStoreFailure?: StoreFailurePolicy;
  /**
   * The store answering while the primary is unavailable (`onStoreFailure: 'fallback'`).
   * @defaultValue a new `MemoryRateLimitStore`
   */
  fallbackStore?: RateLimitStore;
  /**
   * Time limit of each call to a non-local store.
   * @defaultValue 100, or for a `FailoverRateLimitStore` its `worstCaseMs` + 100
   */
  storeTimeoutMs?: Duration;
  /**
   * The circuit breaker in front of a non-local store: options, or a breaker to use as is (e.g.
   * one from a registry, so it shows in health reports).
   * @defaultValue `{ name: '<name>.store', failureThreshold: 3, openDurationMs: 5_000 }`
   */
  breaker?: StoreBreakerOptions | CircuitBreaker;
  /** Time source of the default stores and breaker. @defaultValue `systemClock` */
  clock?: Clock;
  /**
   * Logs one line when decisions leave the primary store and one when they return
   * (`[RATELIMIT] api store failing -> answering from fallback (connect ECONNREFUSED ...)`,
   * `[RATELIMIT] api store recovered`). `console` or a pino-shaped logger; nothing is logged per
   * decision. @defaultValue silent
   */
  logger?: Logger;
}

/**
 * {@link RateLimiterOptions} resolved once at construction: the rule frozen, defaults filled in
 * where they do not depend on the store. Frozen.
 */
export interface ResolvedRateLimiterOptions {
  readonly name: string;
  readonly clock: Clock;
  /** The policy passed to the store on every call. */
  readonly rule: RateLimitRule;
  /** The given store; undefined: the limiter makes a memory store of its own. */
  readonly store: RateLimitStore | undefined;
  readonly onStoreFailure: StoreFailurePolicy;
  /** The given fallback store; undefined: a memory store of its own when the policy needs one. */
  readonly fallbackStore: RateLimitStore | undefined;
  /** The given store time limit; undefined: the store's default. */
  readonly storeTimeoutMs: number | undefined;
  readonly breaker: StoreBreakerOptions | CircuitBreaker | undefined;
  readonly logger: Logger | undefined;
}

const OWNER = 'RateLimiter';
const KNOWN_OPTIONS = Object.keys({
  name: true,
  algorithm: true,
  rate: true,
  limit: true,
  window: true,
  burst: true,
  blockDurationMs: true,
  store: true,
  onStoreFailure: true,
  fallbackStore: true,
  storeTimeoutMs: true,
  breaker: true,
  clock: true,
  logger: true,
} satisfies Record<keyof RateLimiterOptions, true>);
const ALGORITHMS: readonly RateLimitAlgorithm[] = [
  'fixed-window',
  'sliding-window',
  'token-bucket',
];
const POLICIES: readonly StoreFailurePolicy[] = ['fallback', 'allow', 'deny'];

/**
 * Validates and resolves a limiter's options once.
 * @throws ConfigError naming the option path and value when one is invalid
 * @internal
 */
export function resolveRateLimiterOptions(options: RateLimiterOptions): ResolvedRateLimiterOptions {
  checkObject(OWNER, 'options', options);
  checkKnownKeys(OWNER, '', options, KNOWN_OPTIONS);
  const name = stringOption(OWNER, 'name', options.name);
  const clock = options.clock === undefined ? systemClock : checkClock(OWNER, options.clock);
  const algorithm =
    options.algorithm === undefined
      ? 'fixed-window'
      : oneOf(OWNER, 'algorithm', options.algorithm, ALGORITHMS);

  let limit: number;
  let windowMs: number;
  if (options.rate !== undefined) {
    for (const key of ['limit', 'window'] as const) {
      if (options[key] !== undefined) {
        throw new ConfigError(OWNER, key, options[key], 'cannot be combined with rate');
      }
    }
    ({ limit, windowMs } = rateOption(OWNER, 'rate', options.rate));
  } else {
    if (options.limit === undefined && options.window === undefined) {
      throw new ConfigError(
        OWNER,
        'rate',
        undefined,
        "is required (or limit and window), e.g. '100/m'",
      );
    }
    limit = integerOption(OWNER, 'limit', options.limit, 1);
    windowMs = durationOption(OWNER, 'window', options.window, { allowZero: false });
    if (!Number.isSafeInteger(windowMs)) {
      throw new ConfigError(
        OWNER,
        'window',
        options.window,
        'must be a whole number of milliseconds',
      );
    }
  }
  let burst = limit;
  if (options.burst !== undefined) {
    if (algorithm !== 'token-bucket') {
      throw new ConfigError(
        OWNER,
        'burst',
        options.burst,
        "only applies to algorithm 'token-bucket'",
      );
    }
    burst = integerOption(OWNER, 'burst', options.burst, 1);
  }
  if (algorithm !== 'fixed-window') {
    if (limit * windowMs > MAX_SCALED) {
      throw new ConfigError(
        OWNER,
        options.rate === undefined ? 'limit' : 'rate',
        options.rate ?? limit,
        `times the window in ms must be at most 2^50 for '${algorithm}' (got ${limit} × ${windowMs} ms)`,
      );
    }
    if (burst * windowMs > MAX_SCALED) {
      throw new ConfigError(
        OWNER,
        'burst',
        burst,
        `times the window in ms must be at most 2^50 (window ${windowMs} ms)`,
      );
    }
  }
  let blockDurationMs = 0;
  if (options.blockDurationMs !== undefined) {
    blockDurationMs = durationOption(OWNER, 'blockDurationMs', options.blockDurationMs);
    if (!Number.isSafeInteger(blockDurationMs)) {
      throw new ConfigError(
        OWNER,
        'blockDurationMs',
        options.blockDurationMs,
        'must be a whole number of milliseconds',
      );
    }
  }
  const rule: RateLimitRule = Object.freeze({
    name,
    algorithm,
    limit,
    windowMs,
    burst,
    blockDurationMs,
  });
  if (options.store !== undefined) checkStore(OWNER, 'store', options.store);
  const onStoreFailure =
    options.onStoreFailure === undefined
      ? 'fallback'
      : oneOf(OWNER, 'onStoreFailure', options.onStoreFailure, POLICIES);
  if (options.fallbackStore !== undefined) {
    if (onStoreFailure !== 'fallback') {
      throw new ConfigError(
        OWNER,
        'fallbackStore',
        'a store',
        "only applies to onStoreFailure 'fallback'",
      );
    }
    checkStore(OWNER, 'fallbackStore', options.fallbackStore);
  }

  const storeTimeoutMs =
    options.storeTimeoutMs === undefined
      ? undefined
      : durationOption(OWNER, 'storeTimeoutMs', options.storeTimeoutMs, {
          allowZero: false,
          timer: true,
        });
  return Object.freeze({
    name,
    clock,
    rule,
    store: options.store,
    onStoreFailure,
    fallbackStore: options.fallbackStore,
    storeTimeoutMs,
    breaker: options.breaker,
    logger: options.logger === undefined ? undefined : loggerOption(OWNER, options.logger),
  });
}
