import type { OnApplicationShutdown } from '@nestjs/common';
import type { ThrottlerStorage } from '@nestjs/throttler';
import {
  CircuitBreaker,
  isCircuitBreaker,
  ConfigError,
  RateLimiter,
  TimeoutPolicy,
  retryAfterSeconds,
  systemClock,
  type Logger,
  type RateLimiterHealth,
  type RateLimiterOptions,
  type StoreFailurePolicy,
} from '@breakwater/core';
import { ThrottlerRecords, type ThrottlerStorageRecord } from './internal/throttler-records';
import { checkKnownKeys, checkObject, checkName, nested } from './internal/validate';

export type { ThrottlerStorageRecord } from './internal/throttler-records';

/**
 * Options of {@link BreakwaterThrottlerStorage}: where counts live and how their backend is
 * protected. Without `store`, counting follows the throttler's own rules exactly.
 */
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
  /**
   * A throttler storage to protect (e.g. one backed by Redis): its calls run behind the breaker
   * and `storeTimeoutMs`, and while it fails `onStoreFailure` decides, `'fallback'` counting in
   * memory by the throttler's rules. Not with `store`. @defaultValue none: counts in memory
   */
  storage?: ThrottlerStorage;
  /**
   * Most keys counted in memory (without `store`); idle keys go first. @defaultValue 100 000
   */
  maxKeys?: number;
  /** Prefix of the limiter names (store keys are `<prefix>:<throttler name>`). @defaultValue `'throttler'` */
  prefix?: string;
  /** Most distinct throttler rules kept at once with `store` (a rule is name, limit, ttl, block). @defaultValue 1000 */
  maxRules?: number;
}

const OWNER = 'BreakwaterThrottlerStorage';
const KNOWN = Object.keys({
  algorithm: true,
  store: true,
  onStoreFailure: true,
  fallbackStore: true,
  storeTimeoutMs: true,
  breaker: true,
  clock: true,
  logger: true,
  storage: true,
  maxKeys: true,
  prefix: true,
  maxRules: true,
} satisfies Record<keyof BreakwaterThrottlerStorageOptions, true>);
const POLICIES: readonly StoreFailurePolicy[] = ['fallback', 'allow', 'deny'];
/** Options that only apply to core stores (`store`). */
const CORE_ONLY = ['algorithm', 'fallbackStore', 'maxRules'] as const;

/**
 * A `@nestjs/throttler` 6 `ThrottlerStorage` with Breakwater's backend protection.
 *
 * - Without `store`, it counts by the throttler's own rules (those of its in-memory
 *   `ThrottlerStorageService`: windows start at a key's first hit, `blockDuration` is honoured
 *   even when shorter than `ttl`), in memory with a bounded key count, or in a `storage` of
 *   yours (e.g. Redis-backed) protected by a circuit breaker, `storeTimeoutMs` and
 *   `onStoreFailure` (`'fallback'`: count in memory by the same rules meanwhile).
 * - With `store` (a Breakwater `RateLimitStore`: memory, Redis, failover), the store's
 *   algorithm counts (`fixed-window` windows are aligned to the clock) behind the limiter's
 *   protection; one breaker and one fallback store serve every throttler.
 *
 * A backend outage never rejects `increment()`.
 *
 * @throws ConfigError at construction when an option is invalid
 * @example
 * ```ts
 * ThrottlerModule.forRoot({
 *   throttlers: [{ ttl: 60_000, limit: 100 }],
 *   storage: new BreakwaterThrottlerStorage({ storage: new RedisThrottlerStorage(redis) }),
 * });
 * ```
 */
export class BreakwaterThrottlerStorage implements ThrottlerStorage, OnApplicationShutdown {
  private readonly backend: Backend;

  constructor(options: BreakwaterThrottlerStorageOptions = {}) {
    checkKnownKeys(OWNER, '', checkObject(OWNER, 'options', options), KNOWN);
    const { prefix = 'throttler', storage, maxKeys = 100_000, maxRules, ...rest } = options;
    checkName(OWNER, 'prefix', prefix);
    if (options.store !== undefined || options.algorithm !== undefined) {
      if (storage !== undefined) {
        throw new ConfigError(OWNER, 'storage', storage, 'cannot be combined with store');
      }
      this.backend = new CoreStoreBackend(prefix, maxRules, rest);
      return;
    }
    for (const key of CORE_ONLY) {
      if (options[key] !== undefined) {
        throw new ConfigError(OWNER, key, options[key], 'only applies with store');
      }
    }
    if (!Number.isSafeInteger(maxKeys) || maxKeys < 1) {
      throw new ConfigError(OWNER, 'maxKeys', maxKeys, 'must be an integer >= 1');
    }
    const clock = rest.clock ?? systemClock;
    if (typeof (clock as { now?: unknown }).now !== 'function') {
      throw new ConfigError(OWNER, 'clock', clock, 'must have a now() method');
    }
    const records = new ThrottlerRecords(clock, maxKeys);
    this.backend =
      storage === undefined
        ? new MemoryBackend(prefix, records)
        : new ProtectedBackend(prefix, storage, records, { ...rest, clock });
  }

  /** Counts a hit of `key` under the throttler rule; `ttl` and `blockDuration` in milliseconds. */
  increment(
    key: string,
    ttl: number,
    limit: number,
    blockDuration: number,
    throttlerName: string,
  ): Promise<ThrottlerStorageRecord> {
    return this.backend.increment(key, ttl, limit, blockDuration, throttlerName);
  }

  /** Whether decisions come from the primary backend (`warn` while it is failing). */
  health(): RateLimiterHealth {
    return this.backend.health();
  }

  /** Closes what the storage created (stores and storages passed in are left to their owner). */
  close(): Promise<void> {
    return this.backend.close();
  }

  /** Called by Nest when the storage is a provider; closes it. */
  onApplicationShutdown(): Promise<void> {
    return this.close();
  }
}

/** The arguments of `ThrottlerStorage.increment()`. */
type IncrementArgs = [
  key: string,
  ttl: number,
  limit: number,
  blockDuration: number,
  throttlerName: string,
];

interface Backend {
  increment(...args: IncrementArgs): Promise<ThrottlerStorageRecord>;
  health(): RateLimiterHealth;
  close(): Promise<void>;
}

/** The throttler's own rules, in memory. */
class MemoryBackend implements Backend {
  constructor(
    private readonly name: string,
    private readonly records: ThrottlerRecords,
  ) {}

  increment(...args: IncrementArgs): Promise<ThrottlerStorageRecord> {
    return Promise.resolve(this.records.increment(...args));
  }

  health(): RateLimiterHealth {
    return {
      name: this.name,
      status: 'pass',
      store: 'primary',
      breaker: 'closed',
      onStoreFailure: 'fallback',
      local: true,
    };
  }

  close(): Promise<void> {
    this.records.clear();
    return Promise.resolve();
  }
}

/** A throttler storage of the user's behind a breaker and a time limit, with a policy for outages. */
class ProtectedBackend implements Backend {
  private readonly breaker: CircuitBreaker;
  private readonly timeout: TimeoutPolicy;
  private readonly onStoreFailure: StoreFailurePolicy;
  private readonly logger: Logger | undefined;
  private degraded = false;

  constructor(
    private readonly name: string,
    private readonly storage: ThrottlerStorage,
    private readonly records: ThrottlerRecords,
    options: Pick<
      BreakwaterThrottlerStorageOptions,
      'onStoreFailure' | 'storeTimeoutMs' | 'breaker' | 'logger'
    > & { clock: NonNullable<BreakwaterThrottlerStorageOptions['clock']> },
  ) {
    if (typeof (storage as { increment?: unknown }).increment !== 'function') {
      throw new ConfigError(OWNER, 'storage', storage, 'must be a ThrottlerStorage (increment)');
    }
    const policy = options.onStoreFailure ?? 'fallback';
    if (!POLICIES.includes(policy)) {
      throw new ConfigError(
        OWNER,
        'onStoreFailure',
        policy,
        `must be one of ${POLICIES.join(', ')}`,
      );
    }
    this.onStoreFailure = policy;
    this.timeout = nested(
      OWNER,
      'storeTimeoutMs',
      () => new TimeoutPolicy(options.storeTimeoutMs ?? 100),
      { timeoutMs: '' },
    );
    const breaker = options.breaker;
    this.breaker = isCircuitBreaker(breaker)
      ? breaker
      : nested(
          OWNER,
          'breaker',
          () =>
            new CircuitBreaker({
              failureThreshold: 3,
              openDurationMs: 5_000,
              clock: options.clock,
              ...checkObject(OWNER, 'breaker', breaker ?? {}),
              name: `${name}.storage`,
            }),
        );
    this.logger = options.logger;
  }

  async increment(...args: IncrementArgs): Promise<ThrottlerStorageRecord> {
    try {
      const record = await this.breaker.execute(() =>
        this.timeout.execute(() => this.storage.increment(...args)),
      );
      if (this.degraded) {
        this.degraded = false;
        this.log('info', `[THROTTLER] ${this.name} storage recovered`);
      }
      return record;
    } catch (error) {
      if (!this.degraded) {
        this.degraded = true;
        const reason = error instanceof Error ? error.message : String(error);
        this.log(
          'warn',
          `[THROTTLER] ${this.name} storage failing -> ${this.onStoreFailure} (${reason})`,
        );
      }
    }
    const [, ttl, limit] = args;
    const timeToExpire = Math.ceil(ttl / 1000);
    if (this.onStoreFailure === 'fallback') return this.records.increment(...args);
    if (this.onStoreFailure === 'allow') {
      return { totalHits: 0, timeToExpire, isBlocked: false, timeToBlockExpire: 0 };
    }
    const timeToBlockExpire = retryAfterSeconds(this.breaker.retryAfterMs);
    return { totalHits: limit + 1, timeToExpire, isBlocked: true, timeToBlockExpire };
  }

  health(): RateLimiterHealth {
    const breaker = this.breaker.state;
    const failing = this.degraded || breaker !== 'closed';
    return {
      name: this.name,
      status: failing ? 'warn' : 'pass',
      store: failing ? 'fallback' : 'primary',
      breaker,
      onStoreFailure: this.onStoreFailure,
      local: false,
    };
  }

  close(): Promise<void> {
    this.records.clear();
    return Promise.resolve();
  }

  private log(level: 'info' | 'warn', line: string): void {
    try {
      this.logger?.[level](line);
    } catch {
      // A logger must not change a decision.
    }
  }
}

/** Counts with a Breakwater `RateLimitStore` and its algorithm, one limiter per throttler rule. */
class CoreStoreBackend implements Backend {
  private readonly template: RateLimiter;
  private readonly shared: Omit<RateLimiterOptions, 'name'>;
  private readonly maxRules: number;
  private readonly rules = new Map<string, RateLimiter>();
  private lastId = '';
  private last: RateLimiter | undefined;

  constructor(
    private readonly prefix: string,
    maxRules = 1000,
    limiter: Omit<RateLimiterOptions, 'name'>,
  ) {
    if (!Number.isSafeInteger(maxRules) || maxRules < 1) {
      throw new ConfigError(OWNER, 'maxRules', maxRules, 'must be an integer >= 1');
    }
    this.maxRules = maxRules;
    // Validates the options and owns the breaker and fallback store every rule shares.
    this.template = new RateLimiter({ ...limiter, name: prefix, rate: '1/s' });
    const { breaker, fallbackStore, storeTimeoutMs } = this.template;
    this.shared = {
      ...limiter,
      store: this.template.store,
      ...(breaker === undefined ? {} : { breaker, storeTimeoutMs }),
      ...(fallbackStore === undefined ? {} : { fallbackStore }),
    };
  }

  async increment(...args: IncrementArgs): Promise<ThrottlerStorageRecord> {
    const [key, ttl, limit, blockDuration, name] = args;
    const decision = await this.limiter(name, limit, ttl, blockDuration).consume(key);
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

  health(): RateLimiterHealth {
    return this.template.health();
  }

  async close(): Promise<void> {
    const limiters = [...this.rules.values(), this.template];
    this.rules.clear();
    this.last = undefined;
    await Promise.all(limiters.map((limiter) => limiter.close()));
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
