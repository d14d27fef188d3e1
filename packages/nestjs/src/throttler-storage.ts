import type { OnApplicationShutdown } from '@nestjs/common';
import type { ThrottlerStorage } from '@nestjs/throttler';
import {
  ConfigError,
  RateLimiter,
  retryAfterSeconds,
  type RateLimiterHealth,
  type RateLimiterOptions,
} from '@breakwater/core';
import { checkKnownKeys, checkObject, checkName } from './internal/validate';

/** What `ThrottlerStorage.increment()` resolves to (`@nestjs/throttler` 6). */
export interface ThrottlerStorageRecord {
  totalHits: number;
  /** Seconds until the window resets. */
  timeToExpire: number;
  isBlocked: boolean;
  /** Seconds until a blocked key is let through again (0 when not blocked). */
  timeToBlockExpire: number;
}

/** Options of {@link BreakwaterThrottlerStorage}: where counts live and how the store is protected. */
export interface BreakwaterThrottlerStorageOptions extends Pick<
  RateLimiterOptions,
  | 'algorithm'
  | 'store'
  | 'onStoreFailure'
  | 'fallbackStore'
  | 'storeTimeoutMs'
  | 'breaker'
  | 'clock'
  | 'logger'
> {
  /** Prefix of the limiter names (store keys are `<prefix>:<throttler name>`). @defaultValue `'throttler'` */
  prefix?: string;
  /** Most distinct throttler rules kept at once (a rule is name, limit, ttl, block). @defaultValue 1000 */
  maxRules?: number;
}

const OWNER = 'BreakwaterThrottlerStorage';
const KNOWN = [
  'algorithm',
  'store',
  'onStoreFailure',
  'fallbackStore',
  'storeTimeoutMs',
  'breaker',
  'clock',
  'logger',
  'prefix',
  'maxRules',
];

/**
 * A `@nestjs/throttler` 6 `ThrottlerStorage` backed by a Breakwater store (memory, Redis,
 * failover): throttler users gain the store's circuit breaker, time limit and
 * `onStoreFailure` policy unchanged. One breaker and one fallback store serve every throttler.
 * A store outage never rejects `increment()`.
 *
 * @throws ConfigError at construction when an option is invalid
 * @example
 * ```ts
 * ThrottlerModule.forRoot({
 *   throttlers: [{ ttl: 60_000, limit: 100 }],
 *   storage: new BreakwaterThrottlerStorage({ store: new RedisRateLimitStore({ client: redis }) }),
 * });
 * ```
 */
export class BreakwaterThrottlerStorage implements ThrottlerStorage, OnApplicationShutdown {
  private readonly template: RateLimiter;
  private readonly shared: Omit<RateLimiterOptions, 'name'>;
  private readonly prefix: string;
  private readonly maxRules: number;
  private readonly rules = new Map<string, RateLimiter>();
  private lastId = '';
  private last: RateLimiter | undefined;

  constructor(options: BreakwaterThrottlerStorageOptions = {}) {
    checkKnownKeys(OWNER, '', checkObject(OWNER, 'options', options), KNOWN);
    const { prefix = 'throttler', maxRules = 1000, ...limiter } = options;
    this.prefix = checkName(OWNER, 'prefix', prefix);
    if (!Number.isSafeInteger(maxRules) || maxRules < 1) {
      throw new ConfigError(OWNER, 'maxRules', maxRules, 'must be an integer >= 1');
    }
    this.maxRules = maxRules;
    // Validates the options and owns the breaker and fallback store every rule shares.
    this.template = new RateLimiter({ ...limiter, name: this.prefix, rate: '1/s' });
    const { breaker, fallbackStore, storeTimeoutMs } = this.template;
    this.shared = {
      ...limiter,
      store: this.template.store,
      ...(breaker === undefined ? {} : { breaker, storeTimeoutMs }),
      ...(fallbackStore === undefined ? {} : { fallbackStore }),
    };
  }

  /** Counts a hit of `key` under the throttler rule; `ttl` and `blockDuration` in milliseconds. */
  async increment(
    key: string,
    ttl: number,
    limit: number,
    blockDuration: number,
    throttlerName: string,
  ): Promise<ThrottlerStorageRecord> {
    const decision = await this.limiter(throttlerName, limit, ttl, blockDuration).consume(key);
    const timeToExpire = Math.max(0, Math.ceil(decision.resetMs / 1000));
    if (decision.allowed) {
      return {
        totalHits: limit - decision.remaining,
        timeToExpire,
        isBlocked: false,
        timeToBlockExpire: 0,
      };
    }
    const timeToBlockExpire = retryAfterSeconds(decision.retryAfterMs);
    return { totalHits: limit + 1, timeToExpire, isBlocked: true, timeToBlockExpire };
  }

  /** Whether decisions come from the primary store (`warn` while it is failing). */
  health(): RateLimiterHealth {
    return this.template.health();
  }

  /** Closes the stores the storage created (stores passed in are left to their owner). */
  async close(): Promise<void> {
    const limiters = [...this.rules.values(), this.template];
    this.rules.clear();
    this.last = undefined;
    await Promise.all(limiters.map((limiter) => limiter.close()));
  }

  /** Called by Nest when the storage is a provider; closes it. */
  onApplicationShutdown(): Promise<void> {
    return this.close();
  }

  private limiter(name: string, limit: number, ttl: number, block: number): RateLimiter {
    const id = `${name}\u0000${limit}\u0000${ttl}\u0000${block}`;
    if (id === this.lastId && this.last !== undefined) return this.last;
    let limiter = this.rules.get(id);
    if (limiter === undefined) {
      if (this.rules.size >= this.maxRules) this.rules.delete(this.rules.keys().next().value!);
      limiter = new RateLimiter({
        ...this.shared,
        name: `${this.prefix}:${name}`,
        limit,
        window: ttl,
        ...(block > 0 ? { blockDurationMs: block } : {}),
      });
      this.rules.set(id, limiter);
    }
    this.lastId = id;
    this.last = limiter;
    return limiter;
  }
}
