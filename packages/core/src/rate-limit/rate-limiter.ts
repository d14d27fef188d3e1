import type { CircuitBreaker, CircuitState } from '../breaker/circuit-breaker';
import { systemClock, type Clock } from '../time/clock';
import { durationOption, type Duration } from '../time/duration';
import { CircuitOpenError, ConfigError, RateLimitError } from '../errors';
import {
  FailoverRateLimitStore,
  GuardedStore,
  checkStore,
  storeBreakerOption,
  type StoreBreakerOptions,
} from './failover-rate-limit-store';
import { Listeners } from '../internal/listeners';
import { describeError, log, loggerOption, type Logger } from '../internal/log';
import { neverAbortedSignal } from '../internal/never-aborted';
import { MAX_SCALED } from './algorithms';
import {
  checkClock,
  checkKnownKeys,
  checkObject,
  integerOption,
  oneOf,
  stringOption,
} from '../internal/validate';
import { MemoryRateLimitStore } from './memory-rate-limit-store';
import type { Policy } from '../policy';
import { rateOption, type Rate } from './rate';
import type {
  RateLimitAlgorithm,
  RateLimitDecision,
  RateLimitRule,
  RateLimitStore,
} from './rate-limit-store';

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

/** A limiter's health: `warn` while decisions do not come from its primary store. */
export interface RateLimiterHealth {
  name: string;
  /** `pass` while the primary store answers, `warn` while it is failing. */
  status: 'pass' | 'warn';
  /** Where decisions come from now (`fallback` also covers `allow` and `deny`). */
  store: 'primary' | 'fallback';
  /** The state of the store's circuit (`closed` for a local store, which has none). */
  breaker: CircuitState;
  onStoreFailure: StoreFailurePolicy;
  /** Whether the primary store is in-process (no breaker, no timeout). */
  local: boolean;
}

/** Events of a {@link RateLimiter}. */
export interface RateLimiterEvents {
  /** A store call failed or timed out. */
  storeFailure: { error: unknown };
  /**
   * Decisions stopped coming from the primary store. `error` is the store's error, or a
   * `CircuitOpenError` when the store's circuit was already open.
   */
  fallbackEntered: { policy: StoreFailurePolicy; error: unknown };
  /** Decisions come from the primary store again. */
  fallbackLeft: { policy: StoreFailurePolicy };
  /**
   * A decision of `consume()` (and so of `check()` and `execute()`), peeks included. Opt-in:
   * while nobody listens, decisions are neither observed nor allocated for.
   */
  decision: { key: string; cost: number; decision: RateLimitDecision };
}

const OWNER = 'RateLimiter';
const KNOWN_OPTIONS = [
  'name',
  'algorithm',
  'rate',
  'limit',
  'window',
  'burst',
  'blockDurationMs',
  'store',
  'onStoreFailure',
  'fallbackStore',
  'storeTimeoutMs',
  'breaker',
  'clock',
  'logger',
] as const;
const ALGORITHMS: readonly RateLimitAlgorithm[] = [
  'fixed-window',
  'sliding-window',
  'token-bucket',
];
const POLICIES: readonly StoreFailurePolicy[] = ['fallback', 'allow', 'deny'];
/** The key `execute()` counts under. */
const POLICY_KEY = '*';

/**
 * A rate limiter: fixed window, sliding window or token bucket, over a memory or shared store,
 * with its store protected by a circuit breaker and a time limit.
 *
 * A local store (memory) is called directly. A remote store is called through the limiter's own
 * breaker and `storeTimeoutMs`; when it fails, times out or its circuit is open, `onStoreFailure`
 * decides, and while the circuit is open the store is not called at all. A store outage never
 * rejects `consume()`.
 *
 * @throws ConfigError at construction when an option is invalid
 * @example
 * ```ts
 * const limiter = new RateLimiter({ name: 'api', rate: '100/m' });
 * const d = await limiter.consume(clientIp);
 * if (!d.allowed) reply.status(429).header('Retry-After', Math.ceil(d.retryAfterMs / 1000));
 * ```
 */
export class RateLimiter implements Policy {
  /** The limiter's name. */
  readonly name: string;
  /** The resolved policy (frozen) passed to the store on every call. */
  readonly rule: RateLimitRule;
  /** The primary store. */
  readonly store: RateLimitStore;
  /** The store used while the primary is unavailable (`onStoreFailure: 'fallback'`). */
  readonly fallbackStore: RateLimitStore | undefined;
  /** What happens when the primary store is unavailable. */
  readonly onStoreFailure: StoreFailurePolicy;
  /** The breaker in front of the primary store (`undefined` for a local store). */
  readonly breaker: CircuitBreaker | undefined;
  /** Time limit of each primary store call (0 for a local store). */
  readonly storeTimeoutMs: number;

  private readonly local: boolean;
  private readonly guard: GuardedStore | undefined;
  private readonly capacity: number;
  private readonly owned: RateLimitStore[] = [];
  private degraded = false;
  private listeners: Listeners<RateLimiterEvents> | undefined;
  /** Whether someone listens to `decision` (checked once per decision). */
  private observed = false;

  constructor(options: RateLimiterOptions) {
    checkObject(OWNER, 'options', options);
    checkKnownKeys(OWNER, '', options, KNOWN_OPTIONS);
    const name = stringOption(OWNER, 'name', options.name);
    this.name = name;
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
    this.rule = Object.freeze({ name, algorithm, limit, windowMs, burst, blockDurationMs });
    this.capacity = algorithm === 'token-bucket' ? burst : limit;

    if (options.store === undefined) {
      this.store = new MemoryRateLimitStore({ clock });
      this.owned.push(this.store);
    } else {
      checkStore(OWNER, 'store', options.store);
      this.store = options.store;
    }
    this.local = this.store.local === true;
    this.onStoreFailure =
      options.onStoreFailure === undefined
        ? 'fallback'
        : oneOf(OWNER, 'onStoreFailure', options.onStoreFailure, POLICIES);
    if (options.fallbackStore !== undefined) {
      if (this.onStoreFailure !== 'fallback') {
        throw new ConfigError(
          OWNER,
          'fallbackStore',
          'a store',
          "only applies to onStoreFailure 'fallback'",
        );
      }
      checkStore(OWNER, 'fallbackStore', options.fallbackStore);
    }

    const defaultTimeout =
      this.store instanceof FailoverRateLimitStore ? this.store.worstCaseMs + 100 : 100;
    const storeTimeoutMs =
      options.storeTimeoutMs === undefined
        ? defaultTimeout
        : durationOption(OWNER, 'storeTimeoutMs', options.storeTimeoutMs, {
            allowZero: false,
            timer: true,
          });

    if (this.local) {
      this.storeTimeoutMs = 0;
      this.breaker = undefined;
      this.guard = undefined;
      this.fallbackStore = undefined;
      if (options.breaker !== undefined)
        storeBreakerOption(OWNER, 'breaker', options.breaker, `${name}.store`, clock);
    } else {
      this.storeTimeoutMs = storeTimeoutMs;
      this.breaker = storeBreakerOption(OWNER, 'breaker', options.breaker, `${name}.store`, clock);
      this.guard = new GuardedStore(this.store, this.breaker, storeTimeoutMs);
      if (this.onStoreFailure === 'fallback') {
        if (options.fallbackStore === undefined) {
          this.fallbackStore = new MemoryRateLimitStore({ clock });
          this.owned.push(this.fallbackStore);
        } else {
          this.fallbackStore = options.fallbackStore;
        }
      } else {
        this.fallbackStore = undefined;
      }
    }
    if (options.logger !== undefined) this.attachLogger(loggerOption(OWNER, options.logger));
  }

  /**
   * Applies `cost` to `key` and returns the decision. Never rejects because of the store: when a
   * non-local store is unavailable, `onStoreFailure` decides.
   * @param cost - an integer >= 0; 0 peeks without counting. @defaultValue 1
   * @throws TypeError (as a rejection) when `key` is not a string or `cost` not an integer >= 0
   */
  consume(key: string, cost = 1): Promise<RateLimitDecision> {
    if (
      typeof key !== 'string' ||
      typeof cost !== 'number' ||
      !(cost >= 0) ||
      !Number.isSafeInteger(cost)
    ) {
      return Promise.reject(badArgument(key, cost));
    }
    const pending = this.local
      ? this.store.consume(key, cost, this.rule)
      : this.consumeGuarded(key, cost);
    return this.observed ? this.observe(pending, key, cost) : pending;
  }

  /**
   * Like {@link consume}, but rejects with a {@link RateLimitError} when the request is refused.
   * @throws RateLimitError when the request is refused
   */
  async check(key: string, cost = 1): Promise<RateLimitDecision> {
    const decision = await this.consume(key, cost);
    if (!decision.allowed) {
      throw new RateLimitError(
        decision.retryAfterMs,
        decision.limit,
        decision.remaining,
        this.name,
      );
    }
    return decision;
  }

  /**
   * Runs `fn` if one more call fits (every call counts under the key `'*'`), so a limiter composes
   * with other policies.
   * @throws RateLimitError when the call is refused
   */
  async execute<T>(
    fn: (signal: AbortSignal) => PromiseLike<T> | T,
    signal?: AbortSignal,
  ): Promise<T> {
    if (signal?.aborted === true) throw signal.reason;
    await this.check(POLICY_KEY, 1);
    return fn(signal ?? neverAbortedSignal);
  }

  /**
   * Forgets `key` in the primary store (and in the fallback store).
   * @throws CircuitOpenError (as a rejection) when the primary store's circuit is open, or the
   * store's error when it fails or times out
   */
  async reset(key: string): Promise<void> {
    if (typeof key !== 'string') throw badArgument(key, 0);
    if (this.guard === undefined) return this.store.reset(key, this.rule);
    if (this.fallbackStore !== undefined) await this.fallbackStore.reset(key, this.rule);
    const pending = this.guard.reset(key, this.rule);
    if (pending === undefined) {
      const breaker = this.guard.breaker;
      throw CircuitOpenError.create(breaker.name, breaker.retryAfterMs);
    }
    await pending;
  }

  /**
   * Gives back `cost` units that an allowed `consume(key, cost)` took (what
   * `skipSuccessfulRequests` / `skipFailedRequests` need). It goes through the same backend
   * protection as `consume()`: while the primary store is unavailable it is given to the fallback
   * store (`onStoreFailure: 'fallback'`) or dropped. A store without `refund` skips it. Never
   * rejects because of the store.
   * @param cost - an integer >= 0. @defaultValue 1
   * @throws TypeError (as a rejection) when `key` is not a string or `cost` not an integer >= 0
   */
  async refund(key: string, cost = 1): Promise<void> {
    if (
      typeof key !== 'string' ||
      typeof cost !== 'number' ||
      !(cost >= 0) ||
      !Number.isSafeInteger(cost)
    ) {
      throw badArgument(key, cost);
    }
    if (cost === 0) return;
    const rule = this.rule;
    if (this.guard === undefined) {
      try {
        await this.store.refund?.(key, cost, rule);
      } catch (error) {
        this.listeners?.emit('storeFailure', { error });
      }
      return;
    }
    const pending = this.guard.refund(key, cost, rule);
    if (pending !== undefined) {
      try {
        return await pending;
      } catch (error) {
        this.listeners?.emit('storeFailure', { error });
      }
    }
    try {
      await this.fallbackStore?.refund?.(key, cost, rule);
    } catch (error) {
      this.listeners?.emit('storeFailure', { error });
    }
  }

  /**
   * The decision of `consume(key, cost)` made synchronously, when the store can make it so (a
   * local `MemoryRateLimitStore`) and nobody listens to `decision`; otherwise `undefined`, and the
   * caller uses `consume()`. The arguments are trusted (an integer `cost >= 0`).
   */
  consumeNow(key: string, cost: number): RateLimitDecision | undefined {
    const store = this.store;
    if (this.observed || !(store instanceof MemoryRateLimitStore)) return undefined;
    return store.consumeSync(key, cost, this.rule);
  }

  /** The limiter's health: `warn` while decisions do not come from the primary store. */
  health(): RateLimiterHealth {
    const breaker = this.breaker;
    const state: CircuitState = breaker === undefined ? 'closed' : breaker.state;
    const failing =
      breaker !== undefined && (this.degraded || (state !== 'closed' && state !== 'disabled'));
    return {
      name: this.name,
      status: failing ? 'warn' : 'pass',
      store: failing ? 'fallback' : 'primary',
      breaker: state,
      onStoreFailure: this.onStoreFailure,
      local: this.local,
    };
  }

  /**
   * Subscribes to an event; returns the function that unsubscribes. Nothing is emitted (or
   * allocated) for events nobody listens to.
   */
  on<K extends keyof RateLimiterEvents>(
    event: K,
    listener: (event: RateLimiterEvents[K]) => void,
  ): () => void {
    const listeners = (this.listeners ??= new Listeners<RateLimiterEvents>());
    const off = listeners.add(event, listener);
    if (event !== 'decision') return off;
    this.observed = true;
    return () => {
      off();
      this.observed = listeners.has('decision');
    };
  }

  /** Closes the stores the limiter created itself (stores passed in are left to their owner). */
  async close(): Promise<void> {
    await Promise.all(this.owned.map((store) => Promise.resolve(store.close?.())));
  }

  private attachLogger(logger: Logger): void {
    const name = this.name;
    this.on('fallbackEntered', ({ policy, error }) =>
      log(
        logger,
        'warn',
        `[RATELIMIT] ${name} store failing -> ${FALLBACK_LINE[policy]} (${describeStoreError(error)})`,
      ),
    );
    this.on('fallbackLeft', () => log(logger, 'info', `[RATELIMIT] ${name} store recovered`));
  }

  private observe(
    pending: Promise<RateLimitDecision>,
    key: string,
    cost: number,
  ): Promise<RateLimitDecision> {
    return pending.then((decision) => {
      this.listeners?.emit('decision', { key, cost, decision });
      return decision;
    });
  }

  private async consumeGuarded(key: string, cost: number): Promise<RateLimitDecision> {
    const pending = (this.guard as GuardedStore).consume(key, cost, this.rule);
    let failure: unknown;
    if (pending !== undefined) {
      try {
        const decision = await pending;
        if (this.degraded) {
          this.degraded = false;
          this.listeners?.emit('fallbackLeft', { policy: this.onStoreFailure });
        }
        return decision;
      } catch (error) {
        failure = error;
        this.listeners?.emit('storeFailure', { error });
      }
    }
    if (!this.degraded) {
      this.degraded = true;
      if (this.listeners?.has('fallbackEntered')) {
        const breaker = this.breaker as CircuitBreaker;
        const error =
          pending === undefined
            ? CircuitOpenError.create(breaker.name, breaker.retryAfterMs)
            : failure;
        this.listeners.emit('fallbackEntered', { policy: this.onStoreFailure, error });
      }
    }
    return this.decideWithoutStore(key, cost);
  }

  private async decideWithoutStore(key: string, cost: number): Promise<RateLimitDecision> {
    const capacity = this.capacity;
    switch (this.onStoreFailure) {
      case 'fallback':
        try {
          return await (this.fallbackStore as RateLimitStore).consume(key, cost, this.rule);
        } catch (error) {
          this.listeners?.emit('storeFailure', { error });
          return {
            allowed: true,
            limit: capacity,
            remaining: capacity,
            resetMs: 0,
            retryAfterMs: 0,
          };
        }
      case 'allow':
        return { allowed: true, limit: capacity, remaining: capacity, resetMs: 0, retryAfterMs: 0 };
      case 'deny': {
        const wait = (this.breaker as CircuitBreaker).retryAfterMs;
        const retryAfterMs = wait > 1_000 ? Math.ceil(wait) : 1_000;
        return {
          allowed: false,
          limit: capacity,
          remaining: 0,
          resetMs: retryAfterMs,
          retryAfterMs,
        };
      }
    }
  }
}

const FALLBACK_LINE: Record<StoreFailurePolicy, string> = {
  fallback: 'answering from fallback',
  allow: 'allowing every request',
  deny: 'refusing every request',
};

/** A short reason for a log line: the message when it names the error code, else code and message. */
function describeStoreError(error: unknown): string {
  if (error instanceof Error) {
    const code = (error as { code?: unknown }).code;
    if (typeof code === 'string' && code !== '') {
      return error.message.includes(code) ? error.message : `${code}: ${error.message}`;
    }
  }
  return describeError(error);
}

function badArgument(key: unknown, cost: unknown): TypeError {
  return typeof key !== 'string'
    ? new TypeError(`RateLimiter: key must be a string, got ${typeof key}`)
    : new TypeError(`RateLimiter: cost must be an integer >= 0, got ${String(cost)}`);
}
