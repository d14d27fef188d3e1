/** The rate-limiting algorithms every store implements. */
export type RateLimitAlgorithm = 'fixed-window' | 'sliding-window' | 'token-bucket';

/**
 * A limiter's resolved policy, built once by the limiter and passed (as the same object) to its
 * store on every call.
 */
export interface RateLimitRule {
  /** The limiter's name; stores namespace keys by it. */
  readonly name: string;
  readonly algorithm: RateLimitAlgorithm;
  /** Requests (or cost units) allowed per window; the refill amount per window for a token bucket. */
  readonly limit: number;
  /** Window length in milliseconds; for a token bucket, the time to refill `limit` tokens. */
  readonly windowMs: number;
  /** Token-bucket capacity (burst); equals `limit` unless configured. */
  readonly burst: number;
  /** After a refusal, keep the key refused for this long (0: off). */
  readonly blockDurationMs: number;
}

/** The outcome of one rate-limit decision. */
export interface RateLimitDecision {
  /** Whether the request may proceed. */
  allowed: boolean;
  /** The policy's limit (the bucket capacity for a token bucket). */
  limit: number;
  /** What is left after this decision (never negative). */
  remaining: number;
  /** Milliseconds until the quota is fully available again. */
  resetMs: number;
  /** Milliseconds until a refused request could be allowed (0 when allowed). */
  retryAfterMs: number;
}

/**
 * Where rate-limit state lives. A store runs the whole algorithm for one decision atomically.
 *
 * Implementations: `MemoryRateLimitStore` (core), `RedisRateLimitStore` (@breakwater/redis),
 * `FailoverRateLimitStore` (core).
 */
export interface RateLimitStore {
  /**
   * `true` for an in-process store that cannot fail remotely (e.g. `MemoryRateLimitStore`): a
   * limiter calls it directly, with no circuit breaker and no timeout.
   */
  readonly local?: boolean;
  /** Applies `cost` to `key` under `rule` and returns the decision. */
  consume(key: string, cost: number, rule: RateLimitRule): Promise<RateLimitDecision>;
  /**
   * Gives back `cost` units that an earlier allowed `consume(key, cost, rule)` took (what
   * `skipSuccessfulRequests` / `skipFailedRequests` and the express-rate-limit bridge's
   * `decrement()` need): the key's current count never drops below zero and a token bucket never
   * rises above its burst; a key the store no longer holds is left alone. Stores without it
   * cannot refund, and a refund is then skipped.
   */
  refund?(key: string, cost: number, rule: RateLimitRule): Promise<void>;
  /** Forgets everything stored for `key` under `rule`. */
  reset(key: string, rule: RateLimitRule): Promise<void>;
  /**
   * Resolves once the store can answer (a remote store's first connection), or rejects when it
   * cannot within its own bound. A limiter awaits it once, before its first store call and outside
   * its store timeout, so a store that is still connecting does not trip the limiter's breaker.
   */
  ready?(): Promise<void>;
  /** Releases timers and connections the store owns. */
  close?(): Promise<void> | void;
}
