import {
  ConfigError,
  RateLimiter,
  type RateLimiterHealth,
  type RateLimiterOptions,
  type RateLimitStore,
} from '@breakwater/core';

/** Options of {@link expressRateLimitStore}. */
export interface ExpressRateLimitStoreOptions extends Pick<
  RateLimiterOptions,
  'onStoreFailure' | 'fallbackStore' | 'storeTimeoutMs' | 'breaker' | 'clock'
> {
  /** The Breakwater store that keeps the counts (e.g. a `RedisRateLimitStore`). */
  store: RateLimitStore;
  /**
   * Namespaces the keys in the store (it is the name of the limiter wrapped around it) and tells
   * express-rate-limit's double-count check apart from other limiters. Give every
   * express-rate-limit instance its own prefix. @defaultValue `'rl:'`
   */
  prefix?: string;
}

/** What express-rate-limit passes to `init()` (only `windowMs` is used). */
export interface ExpressRateLimitInitOptions {
  windowMs: number;
  skipFailedRequests?: boolean;
  skipSuccessfulRequests?: boolean;
}

/** A client's count as express-rate-limit expects it. */
export interface ExpressRateLimitClientInfo {
  totalHits: number;
  resetTime: Date | undefined;
}

const OWNER = 'expressRateLimitStore';
const KNOWN_OPTIONS = new Set([
  'store',
  'onStoreFailure',
  'fallbackStore',
  'storeTimeoutMs',
  'breaker',
  'clock',
]);
/** A limit express-rate-limit never reaches: it compares `totalHits` with its own `limit`. */
const UNREACHABLE_LIMIT = 2 ** 50;
/** express-rate-limit's default `windowMs`, used until `init()` says otherwise. */
const DEFAULT_WINDOW_MS = 60_000;

/**
 * An express-rate-limit (v7/v8) `Store` backed by a Breakwater {@link RateLimitStore}: counts live
 * in that store (e.g. Redis), and every call goes through a {@link RateLimiter} that protects the
 * backend with a circuit breaker, a store timeout and `onStoreFailure` (a memory fallback by
 * default), so a backend outage never fails a request. Counting is a fixed window of
 * express-rate-limit's `windowMs`; express-rate-limit keeps its own `limit`, headers and handler.
 *
 * `decrement()` gives a hit back through the store's `refund` (so `skipFailedRequests` and
 * `skipSuccessfulRequests` work); with a store that has no `refund` the hit stays counted. The
 * object is also a health reporter: pass it in `healthRoutes({ limiters: [store] })`.
 */
export class ExpressRateLimitStore {
  /** Counts are shared across processes (for express-rate-limit's misconfiguration checks). */
  readonly localKeys = false;
  /** The key prefix (and the wrapped limiter's name). */
  readonly prefix: string;
  private readonly options: Omit<ExpressRateLimitStoreOptions, 'prefix'>;
  private current: RateLimiter;
  private readonly warned = new Set<string>();

  /** @throws ConfigError when an option is invalid */
  constructor(options: ExpressRateLimitStoreOptions) {
    const { prefix = 'rl:', ...rest } = options;
    if (typeof prefix !== 'string' || prefix === '' || prefix.length > 200) {
      throw new ConfigError(OWNER, 'prefix', prefix, 'must be a non-empty string of at most 200');
    }
    for (const key of Object.keys(rest)) {
      if (!KNOWN_OPTIONS.has(key)) {
        throw new ConfigError(OWNER, key, rest[key as keyof typeof rest], 'is not an option');
      }
    }
    this.prefix = prefix;
    this.options = rest;
    this.current = this.build(DEFAULT_WINDOW_MS);
  }

  /** The limiter the store counts through (rebuilt when `init()` brings another `windowMs`). */
  get limiter(): RateLimiter {
    return this.current;
  }

  /** The limiter's name (for health reports). */
  get name(): string {
    return this.current.name;
  }

  /** The backend's health: `warn` while counts do not come from the primary store. */
  health(): RateLimiterHealth {
    return this.current.health();
  }

  /** Called once by express-rate-limit with its options: adopts `windowMs`. */
  init(options: ExpressRateLimitInitOptions): void {
    if (options.windowMs === this.current.rule.windowMs) return;
    const previous = this.current;
    this.current = this.build(options.windowMs);
    void previous.close();
  }

  /** Counts a hit for `key`. Never rejects because of the backend. */
  async increment(key: string): Promise<ExpressRateLimitClientInfo> {
    const decision = await this.current.consume(key, 1);
    return {
      totalHits: Math.max(1, decision.limit - decision.remaining),
      resetTime: new Date(Date.now() + decision.resetMs),
    };
  }

  /** The count for `key`, without counting. */
  async get(key: string): Promise<ExpressRateLimitClientInfo | undefined> {
    const decision = await this.current.consume(key, 0);
    const totalHits = decision.limit - decision.remaining;
    if (totalHits <= 0) return undefined;
    return { totalHits, resetTime: new Date(Date.now() + decision.resetMs) };
  }

  /**
   * Gives one hit back (express-rate-limit calls it for `skipFailedRequests` /
   * `skipSuccessfulRequests`), through the limiter's backend protection. Never rejects.
   */
  async decrement(key: string): Promise<void> {
    try {
      await this.current.refund(key, 1);
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error);
      this.warnOnce('decrement', `decrement() failed (${reason})`);
    }
  }

  /** Forgets `key`. Never rejects: a backend that cannot be reached is reported once. */
  async resetKey(key: string): Promise<void> {
    try {
      await this.current.reset(key);
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error);
      this.warnOnce('reset', `resetKey() could not reach the store (${reason})`);
    }
  }

  /** Releases what the wrapped limiter created (the store passed in is left to its owner). */
  async shutdown(): Promise<void> {
    await this.current.close();
  }

  private build(windowMs: number): RateLimiter {
    return new RateLimiter({
      ...this.options,
      name: this.prefix,
      algorithm: 'fixed-window',
      limit: UNREACHABLE_LIMIT,
      window: windowMs,
    });
  }

  private warnOnce(topic: string, message: string): void {
    if (this.warned.has(topic)) return;
    this.warned.add(topic);
    process.emitWarning(`${OWNER}: ${message}; further occurrences are not reported`, {
      code: 'BREAKWATER_EXPRESS_RATE_LIMIT_STORE',
    });
  }
}

/**
 * Lets express-rate-limit keep counts in a Breakwater store, with backend protection: a
 * `RedisRateLimitStore` or a `FailoverRateLimitStore`, wrapped in a circuit breaker, a store
 * timeout and a memory fallback.
 *
 * @throws ConfigError when an option is invalid
 * @example
 * ```ts
 * import { rateLimit } from 'express-rate-limit';
 * app.use(rateLimit({ windowMs: 60_000, limit: 100, store: expressRateLimitStore(redisStore) }));
 * ```
 */
export function expressRateLimitStore(
  options: RateLimitStore | ExpressRateLimitStoreOptions,
): ExpressRateLimitStore {
  if (typeof options !== 'object' || options === null) {
    throw new ConfigError(OWNER, 'options', options, 'must be a rate-limit store or options');
  }
  const isStore = typeof (options as Partial<RateLimitStore>).consume === 'function';
  return new ExpressRateLimitStore(
    isStore ? { store: options as RateLimitStore } : (options as ExpressRateLimitStoreOptions),
  );
}
