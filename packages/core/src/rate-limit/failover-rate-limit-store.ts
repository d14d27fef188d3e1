import {
  CircuitBreaker,
  type BreakerPermit,
  type CircuitBreakerOptions,
  type CircuitState,
} from '../breaker/circuit-breaker';
import { systemClock, type Clock } from '../time/clock';
import { durationOption, type Duration } from '../time/duration';
import { CircuitOpenError, ConfigError, isConfigError } from '../errors';
import { TimeoutCall } from '../policies/timeout';
import { checkClock, checkKnownKeys, checkObject, stringOption } from '../internal/validate';
import type { RateLimitDecision, RateLimitRule, RateLimitStore } from './rate-limit-store';
import { brand, hasBrand, isBranded } from '../brand';

/**
 * Options of the circuit breaker that protects a rate-limit store: every
 * {@link CircuitBreakerOptions} field except `timeoutMs` and `fallback` (the store timeout and
 * the failure policy are set on the limiter or failover store). The name defaults to one derived
 * from the owner.
 */
export type StoreBreakerOptions = Omit<CircuitBreakerOptions, 'name' | 'timeoutMs' | 'fallback'> & {
  /** The breaker's name. @defaultValue derived from the limiter or failover store name */
  name?: string;
};

/** Options of {@link FailoverRateLimitStore}. */
export interface FailoverRateLimitStoreOptions {
  /** Prefix of the member breakers' names (`<name>[0]`, `<name>[1]`, ...). @defaultValue `'failover'` */
  name?: string;
  /** Time limit of each member store call. @defaultValue 100 */
  storeTimeoutMs?: Duration;
  /**
   * Breaker options for every non-local member.
   * @defaultValue `{ failureThreshold: 3, openDurationMs: 5_000 }`
   */
  breaker?: StoreBreakerOptions;
  /** Time source of the member breakers. @defaultValue `systemClock` */
  clock?: Clock;
}

/** Health of one member of a {@link FailoverRateLimitStore}. */
export interface FailoverMemberHealth {
  /** Position in the failover order. */
  index: number;
  /** Whether the member is in-process (no breaker). */
  local: boolean;
  /** The member's circuit state (`closed` for a local member). */
  breaker: CircuitState;
}

/** The default breaker of a store: opens after 3 consecutive failures, probes after 5 s. */
export const STORE_BREAKER_DEFAULTS = { failureThreshold: 3, openDurationMs: 5_000 } as const;

/**
 * Builds the breaker that protects a store from `value` (options or a breaker instance).
 * @internal
 */
export function storeBreakerOption(
  owner: string,
  path: string,
  value: unknown,
  defaultName: string,
  clock: Clock,
): CircuitBreaker {
  if (isBranded(owner, path, value, 'CircuitBreaker')) return value;
  const options = value ?? {};
  checkObject(owner, path, options);
  for (const key of ['timeoutMs', 'fallback'] as const) {
    if (options[key] !== undefined) {
      throw new ConfigError(
        owner,
        `${path}.${key}`,
        options[key],
        key === 'timeoutMs'
          ? 'is not used for a store breaker (set storeTimeoutMs)'
          : 'is not used for a store breaker (set onStoreFailure)',
      );
    }
  }
  try {
    return new CircuitBreaker({
      ...STORE_BREAKER_DEFAULTS,
      clock,
      ...(options as Partial<CircuitBreakerOptions>),
      name: (options.name as string | undefined) ?? defaultName,
    });
  } catch (error) {
    if (isConfigError(error)) {
      throw new ConfigError(
        owner,
        `${path}.${error.path}`,
        error.value,
        `is invalid (${error.message})`,
      );
    }
    throw error;
  }
}

/**
 * Runs store calls behind a circuit breaker and a time limit.
 *
 * A call the breaker does not admit returns `undefined` without calling the store. An admitted
 * call settles its permit once: success when the store answers in time, failure on an error or a
 * timeout. A store promise that settles after the timeout is observed and ignored, so it never
 * becomes an unhandled rejection.
 * @internal
 */
export class GuardedStore {
  constructor(
    readonly store: RateLimitStore,
    readonly breaker: CircuitBreaker,
    readonly timeoutMs: number,
  ) {}

  /** The store's decision, or `undefined` when the circuit does not admit the call. */
  consume(key: string, cost: number, rule: RateLimitRule): Promise<RateLimitDecision> | undefined {
    const permit = this.breaker.tryAcquire();
    if (permit === undefined) return undefined;
    let pending: Promise<RateLimitDecision>;
    try {
      pending = this.store.consume(key, cost, rule);
    } catch (error) {
      pending = Promise.reject(error);
    }
    return settleWithin(pending, permit, this.timeoutMs, true);
  }

  /** Resets `key`, or returns `undefined` when the circuit does not admit the call. */
  reset(key: string, rule: RateLimitRule): Promise<void> | undefined {
    const permit = this.breaker.tryAcquire();
    if (permit === undefined) return undefined;
    let pending: Promise<void>;
    try {
      pending = this.store.reset(key, rule);
    } catch (error) {
      pending = Promise.reject(error);
    }
    return settleWithin(pending, permit, this.timeoutMs, false);
  }

  /**
   * Gives `cost` back to `key`, or returns `undefined` when the circuit does not admit the call.
   * A store without `refund` is not called and answers at once.
   */
  refund(key: string, cost: number, rule: RateLimitRule): Promise<void> | undefined {
    const store = this.store;
    if (store.refund === undefined) return Promise.resolve();
    const permit = this.breaker.tryAcquire();
    if (permit === undefined) return undefined;
    let pending: Promise<void>;
    try {
      pending = store.refund(key, cost, rule);
    } catch (error) {
      pending = Promise.reject(error);
    }
    return settleWithin(pending, permit, this.timeoutMs, false);
  }
}

function isDecision(value: unknown): value is RateLimitDecision {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as { allowed?: unknown }).allowed === 'boolean'
  );
}

/**
 * Settles `permit` with the store call's outcome within `timeoutMs`: success when the store
 * answers in time (with a decision, when one is expected), failure on an error, a malformed
 * reply or the time limit. A reply after the time limit is dropped.
 */
async function settleWithin<T>(
  pending: PromiseLike<T>,
  permit: BreakerPermit,
  timeoutMs: number,
  expectDecision: boolean,
): Promise<T> {
  let value: T;
  try {
    value = await new TimeoutCall<T>(timeoutMs, undefined).race(pending);
  } catch (error) {
    permit.failure(error);
    throw error;
  }
  if (expectDecision && !isDecision(value)) {
    const error = new TypeError('The rate-limit store did not return a decision');
    permit.failure(error);
    throw error;
  }
  permit.success();
  return value;
}

const OWNER = 'FailoverRateLimitStore';
const KNOWN_OPTIONS = ['name', 'storeTimeoutMs', 'breaker', 'clock'] as const;

/**
 * A {@link RateLimitStore} over several stores tried in order: each non-local member runs behind
 * its own circuit breaker and time limit, so a dead first store costs nothing once its circuit is
 * open, and decisions return to it once a probe succeeds. A local member (a memory store) is
 * called directly.
 *
 * When no member answers, `consume()` rejects with the last member's error (or a
 * `CircuitOpenError` when no member was admitted), and a limiter then applies its
 * `onStoreFailure` policy. The failover store itself is not local.
 *
 * @throws ConfigError at construction when a store or an option is invalid
 * @example
 * ```ts
 * const store = new FailoverRateLimitStore([
 *   new RedisRateLimitStore({ client: primary }),
 *   new RedisRateLimitStore({ client: replica }),
 *   new MemoryRateLimitStore(),
 * ]);
 * const limiter = new RateLimiter({ name: 'api', rate: '100/m', store });
 * ```
 */
export class FailoverRateLimitStore implements RateLimitStore {
  /** A failover store calls other stores, some remote. */
  readonly local = false;
  /** The member stores, in failover order. */
  readonly stores: readonly RateLimitStore[];
  /** Each member's breaker (`undefined` for a local member). */
  readonly breakers: readonly (CircuitBreaker | undefined)[];
  /** Time limit of each member call in milliseconds. */
  readonly storeTimeoutMs: number;
  /** The longest a decision can take: the sum of the non-local members' time limits. */
  readonly worstCaseMs: number;

  private readonly guards: readonly (GuardedStore | undefined)[];

  constructor(stores: readonly RateLimitStore[], options: FailoverRateLimitStoreOptions = {}) {
    const members: readonly RateLimitStore[] = stores;
    if (!Array.isArray(stores) || stores.length === 0) {
      throw new ConfigError(OWNER, 'stores', stores, 'must be a non-empty array of stores');
    }
    stores.forEach((store, index) => checkStore(OWNER, `stores[${index}]`, store));
    checkObject(OWNER, 'options', options);
    checkKnownKeys(OWNER, '', options, KNOWN_OPTIONS);
    const name =
      options.name === undefined ? 'failover' : stringOption(OWNER, 'name', options.name);
    this.storeTimeoutMs =
      options.storeTimeoutMs === undefined
        ? 100
        : durationOption(OWNER, 'storeTimeoutMs', options.storeTimeoutMs, {
            allowZero: false,
            timer: true,
          });
    const clock = options.clock === undefined ? systemClock : checkClock(OWNER, options.clock);
    if (isBranded(OWNER, 'breaker', options.breaker, 'CircuitBreaker')) {
      throw new ConfigError(
        OWNER,
        'breaker',
        'a CircuitBreaker',
        'must be breaker options (each member gets its own breaker)',
      );
    }
    this.stores = members.slice();
    this.guards = this.stores.map((store, index) =>
      store.local === true
        ? undefined
        : new GuardedStore(
            store,
            storeBreakerOption(OWNER, 'breaker', options.breaker, `${name}[${index}]`, clock),
            this.storeTimeoutMs,
          ),
    );
    this.breakers = this.guards.map((guard) => guard?.breaker);
    this.worstCaseMs = this.guards.reduce(
      (sum, guard) => (guard ? sum + this.storeTimeoutMs : sum),
      0,
    );
  }

  /** Asks each member in order until one answers. */
  consume(key: string, cost: number, rule: RateLimitRule): Promise<RateLimitDecision> {
    return this.firstAnswer((store, guard) =>
      guard === undefined ? store.consume(key, cost, rule) : guard.consume(key, cost, rule),
    );
  }

  /**
   * Gives `cost` back to `key` in the member `consume()` would use now: the first member with
   * `refund` that admits the call and answers (members without `refund` are passed over). Rejects
   * only when no member answered.
   */
  refund(key: string, cost: number, rule: RateLimitRule): Promise<void> {
    return this.firstAnswer((store, guard) =>
      store.refund === undefined
        ? undefined
        : guard === undefined
          ? store.refund(key, cost, rule)
          : guard.refund(key, cost, rule),
    );
  }

  /**
   * The answer of the first member that takes the call: `call` returns undefined to pass a member
   * over (its circuit is open, or it cannot do this); a local member's answer is final; a guarded
   * member that fails hands over to the next. Rejects with the last failure, or a
   * `CircuitOpenError` when no member was admitted.
   */
  private async firstAnswer<T>(
    call: (store: RateLimitStore, guard: GuardedStore | undefined) => Promise<T> | undefined,
  ): Promise<T> {
    let lastError: unknown;
    let answered = false;
    const guards = this.guards;
    for (let index = 0; index < guards.length; index++) {
      const guard = guards[index];
      const pending = call(this.stores[index] as RateLimitStore, guard);
      if (pending === undefined) continue;
      if (guard === undefined) return pending;
      answered = true;
      try {
        return await pending;
      } catch (error) {
        lastError = error;
      }
    }
    throw answered ? lastError : this.openError();
  }

  /**
   * Resets `key` in every member that admits the call (a member that recovers later must not
   * hold a stale count). Rejects only when no member could reset it.
   */
  async reset(key: string, rule: RateLimitRule): Promise<void> {
    const results = await Promise.allSettled(
      this.guards.map((guard, index) =>
        guard === undefined
          ? (this.stores[index] as RateLimitStore).reset(key, rule)
          : (guard.reset(key, rule) ?? Promise.reject(this.openError())),
      ),
    );
    if (results.every((result) => result.status === 'rejected')) {
      throw (results[results.length - 1] as PromiseRejectedResult).reason;
    }
  }

  /** Each member's circuit state. */
  health(): FailoverMemberHealth[] {
    return this.guards.map((guard, index) => ({
      index,
      local: guard === undefined,
      breaker: guard === undefined ? 'closed' : guard.breaker.state,
    }));
  }

  /** Closes every member store. */
  async close(): Promise<void> {
    await Promise.all(this.stores.map((store) => Promise.resolve(store.close?.())));
  }

  private openError(): CircuitOpenError {
    let retryAfterMs = Infinity;
    let name = '';
    for (const guard of this.guards) {
      if (guard === undefined) continue;
      const ms = guard.breaker.retryAfterMs;
      if (ms < retryAfterMs) {
        retryAfterMs = ms;
        name = guard.breaker.name;
      }
    }
    return CircuitOpenError.create(name, Number.isFinite(retryAfterMs) ? retryAfterMs : 0);
  }
}
brand(FailoverRateLimitStore, 'FailoverRateLimitStore');

/**
 * Throws unless `value` has the shape of a {@link RateLimitStore}.
 * @internal
 */
export function checkStore(
  owner: string,
  path: string,
  value: unknown,
): asserts value is RateLimitStore {
  // A limiter has consume() and reset() too, with other arguments: refuse it by name.
  if (hasBrand(value, 'RateLimiter')) {
    throw new ConfigError(
      owner,
      path,
      'a RateLimiter',
      "must be a rate-limit store, not a RateLimiter (pass the limiter's store)",
    );
  }
  if (
    typeof value !== 'object' ||
    value === null ||
    typeof (value as { consume?: unknown }).consume !== 'function' ||
    typeof (value as { reset?: unknown }).reset !== 'function'
  ) {
    throw new ConfigError(
      owner,
      path,
      value,
      'must be a rate-limit store (an object with consume() and reset())',
    );
  }
}
