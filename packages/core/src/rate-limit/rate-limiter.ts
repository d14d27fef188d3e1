import type { CircuitBreaker, CircuitState } from '../breaker/circuit-breaker';
import { CircuitOpenError, RateLimitError } from '../errors';
import { GuardedStore, storeBreakerOption } from './failover-rate-limit-store';
import { Listeners } from '../internal/listeners';
import { describeError, log, type Logger } from '../internal/log';
import { neverAbortedSignal } from '../internal/never-aborted';
import { MemoryRateLimitStore } from './memory-rate-limit-store';
import { TimeoutCall } from '../policies/timeout';
import type { Policy } from '../policy';
import type { RateLimitDecision, RateLimitRule, RateLimitStore } from './rate-limit-store';
import {
  resolveRateLimiterOptions,
  type RateLimiterOptions,
  type StoreFailurePolicy,
} from './rate-limiter-options';
import { brand, hasBrand } from '../brand';

export type { RateLimiterOptions, StoreFailurePolicy } from './rate-limiter-options';

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

/** The key `execute()` counts under. */
const OWNER = 'RateLimiter';
/** The longest the first decisions wait for a store's `ready()`. */
const READY_BOUND_MS = 5_000;
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
  /** The primary store when it can decide synchronously (a memory store of any copy). */
  private readonly syncStore: MemoryRateLimitStore | undefined;
  private readonly guard: GuardedStore | undefined;
  private readonly capacity: number;
  private readonly owned: RateLimitStore[] = [];
  private degraded = false;
  /**
   * The primary store's `ready()`, awaited by the first decisions outside the guard; null once it
   * settled (or when the store has none).
   */
  private starting: Promise<void> | undefined | null = undefined;
  private listeners: Listeners<RateLimiterEvents> | undefined;
  /** Whether someone listens to `decision` (checked once per decision). */
  private observed = false;

  constructor(options: RateLimiterOptions) {
    const o = resolveRateLimiterOptions(options);
    const { name, clock } = o;
    this.name = name;
    this.rule = o.rule;
    this.capacity = o.rule.algorithm === 'token-bucket' ? o.rule.burst : o.rule.limit;
    this.onStoreFailure = o.onStoreFailure;
    if (o.store === undefined) {
      this.store = new MemoryRateLimitStore({ clock });
      this.owned.push(this.store);
    } else {
      this.store = o.store;
    }
    this.local = this.store.local === true;
    this.syncStore = hasBrand(this.store, 'MemoryRateLimitStore') ? this.store : undefined;
    const storeTimeoutMs =
      o.storeTimeoutMs ??
      (hasBrand(this.store, 'FailoverRateLimitStore') ? this.store.worstCaseMs + 100 : 100);
    if (this.local) {
      this.storeTimeoutMs = 0;
      this.breaker = undefined;
      this.guard = undefined;
      this.fallbackStore = undefined;
      if (o.breaker !== undefined)
        storeBreakerOption(OWNER, 'breaker', o.breaker, `${name}.store`, clock);
    } else {
      this.storeTimeoutMs = storeTimeoutMs;
      this.breaker = storeBreakerOption(OWNER, 'breaker', o.breaker, `${name}.store`, clock);
      this.guard = new GuardedStore(this.store, this.breaker, storeTimeoutMs);
      if (this.onStoreFailure === 'fallback') {
        if (o.fallbackStore === undefined) {
          this.fallbackStore = new MemoryRateLimitStore({ clock });
          this.owned.push(this.fallbackStore);
        } else {
          this.fallbackStore = o.fallbackStore;
        }
      } else {
        this.fallbackStore = undefined;
      }
    }
    if (o.logger !== undefined) this.attachLogger(o.logger);
  }

  /** Waits (once) for a store that is still connecting; its failure is left to the guard. */
  private untilStarted(): Promise<void> {
    if (this.starting === undefined) {
      const store = this.store;
      if (typeof store.ready !== 'function') {
        this.starting = null;
        return Promise.resolve();
      }
      const settled = (): void => {
        this.starting = null;
      };
      let waiting: Promise<void>;
      try {
        // Bounded whatever the store does: a ready() that never settles holds nothing up.
        const bound = new TimeoutCall<void>(READY_BOUND_MS, undefined);
        waiting = bound.race(store.ready()).then(settled, settled);
      } catch {
        waiting = Promise.resolve(settled());
      }
      this.starting = waiting;
    }
    return this.starting ?? Promise.resolve();
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
    const store = this.syncStore;
    if (this.observed || store === undefined) return undefined;
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
    if (this.starting !== null) await this.untilStarted();
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
brand(RateLimiter, 'RateLimiter');

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
