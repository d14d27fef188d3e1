import type {
  BreakerLink,
  BreakerScope,
  BreakerStore,
  SharedBreakerSettings,
  SharedCircuitState,
} from './breaker-store';
import { systemClock, type Clock } from '../time/clock';
import { durationOption, type Duration } from '../time/duration';
import { CircuitOpenError, ConfigError, TimeoutError } from '../errors';
import { describeError, log, loggerOption, type Logger } from '../internal/log';
import type { Policy } from '../policy';
import { Listeners } from '../internal/listeners';
import { neverAbortedSignal } from '../internal/never-aborted';
import { CALL, CountWindow, FAILURE, SLOW, TimeWindow, type OutcomeWindow } from './outcome-window';
import {
  checkClock,
  checkKnownKeys,
  checkObject,
  functionOption,
  integerOption,
  numberOption,
  oneOf,
  percentOption,
  stringOption,
} from '../internal/validate';

/** The states of a circuit; `forced_open` and `disabled` are set by an operator. */
export type CircuitState = 'closed' | 'open' | 'half_open' | 'forced_open' | 'disabled';

/** The window over which failure and slow-call rates are computed. */
export type WindowOptions =
  { type: 'count'; size: number } | { type: 'time'; durationMs: Duration; buckets?: number };

/** Growth of the open time when a circuit reopens without having recovered. */
export interface OpenBackoffOptions {
  /** Factor applied to the open time at each reopen. @defaultValue 2 */
  multiplier?: number;
  /** Upper bound of the open time. @defaultValue 10 × `openDurationMs` */
  maxMs?: Duration;
  /**
   * Time the circuit must stay closed before the backoff level returns to zero.
   * @defaultValue the level returns to zero as soon as the circuit closes
   */
  resetAfterMs?: Duration;
}

/** How the half-open state admits probes. */
export interface HalfOpenOptions {
  /** Probes admitted at once; further calls are rejected at once. @defaultValue 1 */
  maxConcurrent?: number;
  /** Probe successes needed to close the circuit. @defaultValue 1 */
  successThreshold?: number;
  /** A probe that has not settled after this long frees its permit. @defaultValue off */
  maxWaitMs?: Duration;
}

/** State carried across processes or cold starts: the output of `toJSON()`. */
export interface CircuitBreakerStateJSON {
  name: string;
  state: CircuitState;
  consecutiveFailures: number;
  openedAt: number | null;
  nextAttemptAt: number | null;
  backoffLevel: number;
  closedAt: number | null;
}

/** Options of {@link CircuitBreaker}. Only `name` is required. */
export interface CircuitBreakerOptions {
  /** Identifier in registries, events, metrics and health reports. */
  name: string;
  /** Consecutive failures that open the circuit; `false` turns the rule off. @defaultValue 5 */
  failureThreshold?: number | false;
  /** Percentage (0–100] of failures in the window that opens the circuit. @defaultValue off */
  failureRateThreshold?: number;
  /** A call slower than this is slow. Needed with `slowCallRateThreshold`. @defaultValue off */
  slowCallDurationMs?: Duration;
  /** Percentage (0–100] of slow calls in the window that opens the circuit. @defaultValue off */
  slowCallRateThreshold?: number;
  /** The window for rates. @defaultValue `{ type: 'count', size: 100 }` */
  window?: WindowOptions;
  /** Calls in the window before a rate can open the circuit. @defaultValue 10 */
  minimumCalls?: number;
  /** Time the circuit stays open before a probe is admitted. @defaultValue 60 000 */
  openDurationMs?: Duration;
  /** Longer open times for circuits that keep failing. @defaultValue off */
  backoff?: OpenBackoffOptions;
  /** Probe admission in the half-open state. @defaultValue `{ maxConcurrent: 1, successThreshold: 1 }` */
  halfOpen?: HalfOpenOptions;
  /** Per-call time limit; the call's own AbortSignal is aborted when it passes. @defaultValue off */
  timeoutMs?: Duration;
  /** Returns false for errors that are neither failures nor successes. @defaultValue every error is a failure */
  isFailure?: (error: unknown) => boolean;
  /** Returns true for a resolved value that counts as a failure (the value is still returned). @defaultValue none */
  isResultFailure?: (result: unknown) => boolean;
  /** Value for calls that are rejected or fail; receives the error and the wrapped function's arguments. */
  fallback?: (error: unknown, ...args: never[]) => unknown;
  /** Time source. @defaultValue `systemClock` */
  clock?: Clock;
  /** State to start from, as returned by `toJSON()` (e.g. carried across a serverless cold start). */
  initialState?: CircuitBreakerStateJSON;
  /** Called when an event listener throws; the call itself is never affected. @defaultValue ignore */
  onListenerError?: (error: unknown, event: string) => void;
  /**
   * Logs one line per transition (`[CIRCUIT] plant-id closed -> open (3 consecutive failures)`)
   * and listener errors. `console` or a pino-shaped logger. @defaultValue silent
   */
  logger?: Logger;
  /**
   * Where the circuit's state lives. A shared store (`RedisBreakerStore` of `@breakwater/redis`)
   * lets every process and host that uses this breaker's name follow one circuit.
   * @defaultValue a `MemoryBreakerStore`: the state stays in this breaker
   */
  store?: BreakerStore;
  /**
   * With a shared store: `'shared'` decides on the totals of every process (one sick process
   * does not open the circuit for the others unless its failures dominate them); `'local'`
   * decides on this process's own calls only and shares nothing.
   * @defaultValue `'shared'` with a shared store, `'local'` otherwise
   */
  scope?: BreakerScope;
}

/** Payloads of the events a breaker emits. */
export interface CircuitBreakerEvents {
  stateChange: { from: CircuitState; to: CircuitState; reason: string };
  success: { durationMs: number };
  failure: { error: unknown; durationMs: number };
  ignored: { error: unknown };
  rejected: { retryAfterMs: number };
  timeout: { timeoutMs: number };
  slowCall: { durationMs: number };
}

/**
 * Outcomes counted since the breaker was created, for metrics read at scrape time: counting
 * costs an increment per call, where listening to every outcome costs an event and two clock
 * reads.
 */
export interface CircuitBreakerTotals {
  successes: number;
  /** Failures, timeouts included. */
  failures: number;
  /** Calls that exceeded `timeoutMs` (also counted in `failures`). */
  timeouts: number;
  /** Calls the circuit did not admit. */
  rejected: number;
  /** Calls whose error `isFailure` excluded, or that the caller aborted. */
  ignored: number;
}

/** Plain-JSON view of a breaker for health reports and dashboards. */
export interface CircuitBreakerSnapshot {
  name: string;
  state: CircuitState;
  consecutiveFailures: number;
  /** Percentage of failures among the calls in the window (0 when empty). */
  failureRate: number;
  /** Percentage of slow calls among the calls in the window (0 when empty). */
  slowCallRate: number;
  calls: number;
  failures: number;
  slowCalls: number;
  /** Probes running now (half-open only). */
  halfOpenProbes: number;
  openedAt: number | null;
  nextAttemptAt: number | null;
  /** Milliseconds until a probe is admitted (0 when calls are admitted or the time is unknown). */
  retryAfterMs: number;
  backoffLevel: number;
}

/**
 * One admitted call of {@link CircuitBreaker.tryAcquire}. Settle it exactly once; later calls are
 * ignored.
 */
export interface BreakerPermit {
  /** The call succeeded. */
  success(): void;
  /** The call failed (an `error` the breaker's `isFailure` rejects is ignored instead). */
  failure(error?: unknown): void;
  /** The call neither succeeded nor failed (e.g. the client went away): frees the permit. */
  ignore(): void;
}

type Invoke<T> = (signal: AbortSignal) => PromiseLike<T> | T;

const OWNER = 'CircuitBreaker';
const KNOWN_OPTIONS = [
  'name',
  'failureThreshold',
  'failureRateThreshold',
  'slowCallDurationMs',
  'slowCallRateThreshold',
  'window',
  'minimumCalls',
  'openDurationMs',
  'backoff',
  'halfOpen',
  'timeoutMs',
  'isFailure',
  'isResultFailure',
  'fallback',
  'clock',
  'initialState',
  'onListenerError',
  'logger',
  'store',
  'scope',
] as const;
const STATES: readonly CircuitState[] = ['closed', 'open', 'half_open', 'forced_open', 'disabled'];

const SUCCESS = 0;
const FAILED = 1;
const IGNORED = 2;
type Outcome = typeof SUCCESS | typeof FAILED | typeof IGNORED;

/** Returned by `admit()` when a probe permit must first be claimed from a shared store. */
const CLAIM = -Infinity;

/** Module-private methods, so that only permits, the breaker and its store link call them. */
const settle = Symbol('settle');
const classify = Symbol('classify');
const noop = (): void => {};

/**
 * A circuit breaker: stops calling a dependency that keeps failing, probes it after a while, and
 * closes again when it recovers. It holds no timers: the move from open to half-open is decided at
 * the next call or read.
 *
 * @throws ConfigError at construction when an option is invalid
 * @example
 * ```ts
 * const breaker = new CircuitBreaker({ name: 'plant-id', failureThreshold: 3, openDurationMs: '60s' });
 * const result = await breaker.execute((signal) => fetch(url, { signal }));
 * const identify = breaker.wrap(identifyPlant);
 * ```
 */
export class CircuitBreaker implements Policy {
  /** The breaker's name. */
  readonly name: string;

  private readonly clock: Clock;
  private readonly failureThreshold: number;
  private readonly failureRate: number; // percent; 0 = off
  private readonly slowCallMs: number; // 0 = off
  private readonly slowCallRate: number; // percent; 0 = off
  private readonly minimumCalls: number;
  private readonly openDurationMs: number;
  private readonly backoffMultiplier: number; // 1 = off
  private readonly backoffMaxMs: number;
  private readonly backoffResetMs: number; // 0 = at once
  private readonly maxProbes: number;
  private readonly probeSuccessesNeeded: number;
  private readonly probeMaxWaitMs: number; // 0 = off
  private readonly timeoutMs: number; // 0 = off
  private readonly isFailure: ((error: unknown) => boolean) | undefined;
  private readonly isResultFailure: ((result: unknown) => boolean) | undefined;
  private readonly fallback: ((error: unknown, ...args: unknown[]) => unknown) | undefined;
  private onListenerError: ((error: unknown, event: string) => void) | undefined;
  private readonly window: OutcomeWindow;
  /** Whether recording into the window needs the time (a time window). */
  private readonly windowTimed: boolean;
  private readonly maxLevel: number;

  private current: CircuitState = 'closed';
  /** Changes at every transition; a settled call from another generation changes nothing. */
  private generation = 1;
  private consecutive = 0;
  private openedAt = NaN;
  private nextAttemptAt = NaN;
  private closedAt = -Infinity;
  private level = 0;
  private probeSeq = 0;
  private probes: Map<number, number> | undefined = undefined; // probe ticket -> admitted at
  private probeSuccesses = 0;
  /** Whether a call must read the clock at its start (slow-call rule or duration listeners). */
  private timed: boolean;
  private listeners: Listeners<CircuitBreakerEvents> | undefined = undefined;
  private successCount = 0;
  private failureCount = 0;
  private timeoutCount = 0;
  private rejectedCount = 0;
  private ignoredCount = 0;
  /** The shared store's link (shared scope only); undefined keeps every decision local. */
  private link: BreakerLink | undefined = undefined;

  constructor(options: CircuitBreakerOptions) {
    checkObject(OWNER, 'options', options);
    checkKnownKeys(OWNER, '', options, KNOWN_OPTIONS);
    this.name = stringOption(OWNER, 'name', options.name);
    this.clock = options.clock === undefined ? systemClock : checkClock(OWNER, options.clock);

    const threshold = options.failureThreshold;
    this.failureThreshold =
      threshold === false
        ? Infinity
        : threshold === undefined
          ? 5
          : integerOption(OWNER, 'failureThreshold', threshold, 1);
    this.failureRate =
      options.failureRateThreshold === undefined
        ? 0
        : percentOption(OWNER, 'failureRateThreshold', options.failureRateThreshold);
    this.slowCallMs =
      options.slowCallDurationMs === undefined
        ? 0
        : durationOption(OWNER, 'slowCallDurationMs', options.slowCallDurationMs, {
            allowZero: false,
          });
    this.slowCallRate =
      options.slowCallRateThreshold === undefined
        ? 0
        : percentOption(OWNER, 'slowCallRateThreshold', options.slowCallRateThreshold);
    if ((this.slowCallRate === 0) !== (this.slowCallMs === 0)) {
      const missing = this.slowCallMs === 0 ? 'slowCallDurationMs' : 'slowCallRateThreshold';
      throw new ConfigError(
        OWNER,
        missing,
        undefined,
        'is required when the other slow-call option is set',
      );
    }
    this.minimumCalls =
      options.minimumCalls === undefined
        ? 10
        : integerOption(OWNER, 'minimumCalls', options.minimumCalls, 1);
    const windowSpec = resolveWindow(options.window);
    this.window =
      windowSpec.type === 'count'
        ? new CountWindow(windowSpec.size)
        : new TimeWindow(windowSpec.durationMs, windowSpec.buckets);
    this.windowTimed = this.window instanceof TimeWindow;
    this.openDurationMs =
      options.openDurationMs === undefined
        ? 60_000
        : durationOption(OWNER, 'openDurationMs', options.openDurationMs, { allowZero: false });

    if (options.backoff === undefined) {
      this.backoffMultiplier = 1;
      this.backoffMaxMs = this.openDurationMs;
      this.backoffResetMs = 0;
    } else {
      const backoff = options.backoff;
      checkObject(OWNER, 'backoff', backoff);
      checkKnownKeys(OWNER, 'backoff', backoff, ['multiplier', 'maxMs', 'resetAfterMs']);
      this.backoffMultiplier =
        backoff.multiplier === undefined
          ? 2
          : numberOption(OWNER, 'backoff.multiplier', backoff.multiplier, 1, 1_000);
      this.backoffMaxMs =
        backoff.maxMs === undefined
          ? this.openDurationMs * 10
          : durationOption(OWNER, 'backoff.maxMs', backoff.maxMs);
      if (this.backoffMaxMs < this.openDurationMs) {
        throw new ConfigError(
          OWNER,
          'backoff.maxMs',
          backoff.maxMs,
          `must be at least openDurationMs (${this.openDurationMs} ms)`,
        );
      }
      this.backoffResetMs =
        backoff.resetAfterMs === undefined
          ? 0
          : durationOption(OWNER, 'backoff.resetAfterMs', backoff.resetAfterMs);
    }
    this.maxLevel =
      this.backoffMultiplier === 1
        ? 0
        : Math.max(
            0,
            Math.ceil(
              Math.log(this.backoffMaxMs / this.openDurationMs) / Math.log(this.backoffMultiplier) -
                1e-9,
            ),
          );

    const halfOpen = options.halfOpen ?? {};
    checkObject(OWNER, 'halfOpen', halfOpen);
    checkKnownKeys(OWNER, 'halfOpen', halfOpen, ['maxConcurrent', 'successThreshold', 'maxWaitMs']);
    this.maxProbes =
      halfOpen.maxConcurrent === undefined
        ? 1
        : integerOption(OWNER, 'halfOpen.maxConcurrent', halfOpen.maxConcurrent, 1);
    this.probeSuccessesNeeded =
      halfOpen.successThreshold === undefined
        ? 1
        : integerOption(OWNER, 'halfOpen.successThreshold', halfOpen.successThreshold, 1);
    this.probeMaxWaitMs =
      halfOpen.maxWaitMs === undefined
        ? 0
        : durationOption(OWNER, 'halfOpen.maxWaitMs', halfOpen.maxWaitMs, { allowZero: false });

    this.timeoutMs =
      options.timeoutMs === undefined
        ? 0
        : durationOption(OWNER, 'timeoutMs', options.timeoutMs, { allowZero: false, timer: true });
    this.isFailure =
      options.isFailure === undefined
        ? undefined
        : functionOption<(error: unknown) => boolean>(OWNER, 'isFailure', options.isFailure);
    this.isResultFailure =
      options.isResultFailure === undefined
        ? undefined
        : functionOption<(result: unknown) => boolean>(
            OWNER,
            'isResultFailure',
            options.isResultFailure,
          );
    this.fallback =
      options.fallback === undefined
        ? undefined
        : functionOption<(error: unknown, ...args: unknown[]) => unknown>(
            OWNER,
            'fallback',
            options.fallback,
          );
    this.onListenerError =
      options.onListenerError === undefined
        ? undefined
        : functionOption<(error: unknown, event: string) => void>(
            OWNER,
            'onListenerError',
            options.onListenerError,
          );
    this.timed = this.slowCallMs > 0;
    if (options.logger !== undefined) this.attachLogger(loggerOption(OWNER, options.logger));

    if (options.initialState !== undefined) this.restore(options.initialState);

    const store = options.store === undefined ? undefined : checkStore(options.store);
    const scope: BreakerScope =
      options.scope === undefined
        ? store?.shared === true
          ? 'shared'
          : 'local'
        : oneOf(OWNER, 'scope', options.scope, ['shared', 'local'] as const);
    if (scope === 'shared' && store?.shared !== true) {
      throw new ConfigError(
        OWNER,
        'scope',
        options.scope,
        "is 'shared' but the store does not share state (pass a shared store such as RedisBreakerStore)",
      );
    }
    if (store !== undefined && scope === 'shared') {
      const settings: SharedBreakerSettings = Object.freeze({
        failureThreshold: Number.isFinite(this.failureThreshold) ? this.failureThreshold : 0,
        failureRateThreshold: this.failureRate,
        slowCallRateThreshold: this.slowCallRate,
        minimumCalls: this.minimumCalls,
        window: Object.freeze(windowSpec),
        openDurationMs: this.openDurationMs,
        backoffMultiplier: this.backoffMultiplier,
        backoffMaxMs: this.backoffMaxMs,
        backoffResetAfterMs: this.backoffResetMs,
        maxBackoffLevel: this.maxLevel,
        halfOpenMaxConcurrent: this.maxProbes,
        halfOpenSuccessThreshold: this.probeSuccessesNeeded,
        halfOpenMaxWaitMs: this.probeMaxWaitMs,
      });
      // The store holds this view, not the breaker itself.
      this.link = store.connect({
        name: this.name,
        settings,
        follow: (state) => this.followShared(state),
      });
    }
  }

  /** The current state (an elapsed open time turns into `half_open` when read). */
  get state(): CircuitState {
    if (this.current === 'open') this.dueForProbe(this.clock.now());
    return this.current;
  }

  /** Milliseconds until a probe is admitted: 0 when calls are admitted now or when unknown. */
  get retryAfterMs(): number {
    if (this.current !== 'open') return 0;
    const now = this.clock.now();
    return this.dueForProbe(now) ? 0 : Math.max(0, this.nextAttemptAt - now);
  }

  /**
   * Runs `fn` if the circuit admits it.
   *
   * `fn` receives the call's own AbortSignal when `timeoutMs` is set (aborted on timeout or when
   * `signal` aborts), otherwise `signal` itself, or a shared signal that never aborts.
   * @throws CircuitOpenError when the call is not admitted and there is no fallback
   * @throws TimeoutError when the call exceeds `timeoutMs` and there is no fallback
   */
  execute<T>(fn: Invoke<T>, signal?: AbortSignal): Promise<T> {
    return this.run(fn, undefined, undefined, signal) as Promise<T>;
  }

  /**
   * Returns a function with `fn`'s signature whose calls go through the breaker: arguments and
   * `this` pass through unchanged, and a fallback receives `(error, ...args)`.
   */
  wrap<This, Args extends unknown[], R>(
    fn: (this: This, ...args: Args) => R | PromiseLike<R>,
  ): (this: This, ...args: Args) => Promise<Awaited<R>> {
    // eslint-disable-next-line @typescript-eslint/no-this-alias
    const breaker = this;
    return function (this: This, ...args: Args): Promise<Awaited<R>> {
      return breaker.run(fn as (...a: unknown[]) => unknown, this, args, undefined) as Promise<
        Awaited<R>
      >;
    };
  }

  /**
   * Admits a call without throwing: returns a permit to settle when the call ends, or
   * `undefined` when the circuit rejects the call.
   */
  tryAcquire(): BreakerPermit | undefined {
    const ticket = this.admit();
    if (ticket <= 0 && (ticket === 0 || ticket === CLAIM)) {
      // A shared half-open circuit: claim a permit in the background for a later call.
      if (ticket === CLAIM) this.link!.claimAhead();
      this.emitRejected();
      return undefined;
    }
    return new Permit(this, ticket, this.timed ? this.clock.now() : NaN);
  }

  /**
   * Opens the circuit until `reset()` (operator action). With a shared store, every process
   * follows.
   */
  open(): void {
    this.operatorTransition('forced_open', 'forced open');
    this.link?.command('forced_open', 0, 'forced open');
  }

  /**
   * Opens the circuit for exactly `ms` (e.g. an upstream's Retry-After), then probes as usual.
   * With a shared store, every process follows.
   * @throws ConfigError when `ms` is not a finite number >= 0
   */
  openFor(ms: number): void {
    if (typeof ms !== 'number' || !Number.isFinite(ms) || ms < 0) {
      throw new ConfigError(OWNER, 'openFor(ms)', ms, 'must be a finite number >= 0');
    }
    const reason = `opened for ${Math.round(ms)} ms`;
    this.operatorTransition('open', reason, ms);
    this.link?.command('open', ms, reason);
  }

  /**
   * Closes the circuit and forgets its history, backoff level included. With a shared store,
   * every process follows.
   */
  reset(): void {
    this.level = 0;
    this.transition('closed', 'reset', this.clock.now());
    this.closedAt = -Infinity;
    this.link?.command('closed', 0, 'reset');
  }

  /**
   * Admits every call and never changes state until `reset()`; outcomes are still reported.
   * With a shared store, every process follows.
   */
  disable(): void {
    this.operatorTransition('disabled', 'disabled');
    this.link?.command('disabled', 0, 'disabled');
  }

  /**
   * Subscribes to an event; returns the function that unsubscribes. A listener that throws never
   * affects a call.
   */
  on<K extends keyof CircuitBreakerEvents>(
    event: K,
    listener: (event: CircuitBreakerEvents[K]) => void,
  ): () => void {
    this.listeners ??= new Listeners<CircuitBreakerEvents>(this.onListenerError);
    const off = this.listeners.add(event, listener);
    this.updateTimed();
    return () => {
      off();
      this.updateTimed();
    };
  }

  /** Outcomes counted since the breaker was created. */
  totals(): CircuitBreakerTotals {
    return {
      successes: this.successCount,
      failures: this.failureCount,
      timeouts: this.timeoutCount,
      rejected: this.rejectedCount,
      ignored: this.ignoredCount,
    };
  }

  /** A plain-JSON view of the breaker. */
  snapshot(): CircuitBreakerSnapshot {
    const now = this.clock.now();
    const state = this.state;
    const window = this.window;
    window.refresh(now);
    const calls = window.calls;
    return {
      name: this.name,
      state,
      consecutiveFailures: this.consecutive,
      failureRate: calls === 0 ? 0 : (window.failures * 100) / calls,
      slowCallRate: calls === 0 ? 0 : (window.slowCalls * 100) / calls,
      calls,
      failures: window.failures,
      slowCalls: window.slowCalls,
      halfOpenProbes: state === 'half_open' ? (this.probes?.size ?? 0) : 0,
      openedAt: Number.isNaN(this.openedAt) ? null : this.openedAt,
      nextAttemptAt: Number.isNaN(this.nextAttemptAt) ? null : this.nextAttemptAt,
      retryAfterMs: state === 'open' ? Math.max(0, this.nextAttemptAt - now) : 0,
      backoffLevel: this.effectiveLevel(now),
    };
  }

  /** State to carry across processes or cold starts; pass it back as `initialState`. */
  toJSON(): CircuitBreakerStateJSON {
    const now = this.clock.now();
    return {
      name: this.name,
      state: this.state,
      consecutiveFailures: this.consecutive,
      openedAt: Number.isNaN(this.openedAt) ? null : this.openedAt,
      nextAttemptAt: Number.isNaN(this.nextAttemptAt) ? null : this.nextAttemptAt,
      backoffLevel: this.effectiveLevel(now),
      closedAt: Number.isFinite(this.closedAt) ? this.closedAt : null,
    };
  }

  private async run(
    fn: ((signal: AbortSignal) => unknown) | ((...args: unknown[]) => unknown),
    thisArg: unknown,
    args: unknown[] | undefined,
    signal: AbortSignal | undefined,
    ticket = this.admit(),
  ): Promise<unknown> {
    if (ticket <= 0 && (ticket === 0 || ticket === CLAIM)) {
      if (ticket === 0) return this.rejectCall(args);
      return this.claimThenRun(fn, thisArg, args, signal);
    }
    if (this.timeoutMs > 0) return this.runWithTimeout(fn, thisArg, args, signal, ticket);
    const start = this.timed ? this.clock.now() : NaN;
    let result: unknown;
    try {
      if (signal !== undefined && signal.aborted) throw signal.reason;
      result =
        args === undefined
          ? await fn(signal ?? neverAbortedSignal)
          : await (fn as (...a: unknown[]) => unknown).apply(thisArg, args);
    } catch (error) {
      return this.handleError(error, ticket, start, signal, args, false);
    }
    this.settleResult(result, ticket, start);
    return result;
  }

  private async runWithTimeout(
    fn: ((signal: AbortSignal) => unknown) | ((...args: unknown[]) => unknown),
    thisArg: unknown,
    args: unknown[] | undefined,
    signal: AbortSignal | undefined,
    ticket: number,
  ): Promise<unknown> {
    const start = this.timed ? this.clock.now() : NaN;
    const timeoutMs = this.timeoutMs;
    const controller = new AbortController();
    let timeoutError: TimeoutError | undefined;
    let interrupt: (reason: unknown) => void = noop;
    const interrupted = new Promise<never>((_, reject) => (interrupt = reject));
    const onAbort = (): void => {
      const reason: unknown = signal!.reason;
      controller.abort(reason);
      interrupt(reason);
    };
    const timer = setTimeout(() => {
      timeoutError = new TimeoutError(timeoutMs);
      controller.abort(timeoutError);
      interrupt(timeoutError);
    }, timeoutMs);
    let result: unknown;
    try {
      if (signal !== undefined) {
        if (signal.aborted) throw signal.reason;
        signal.addEventListener('abort', onAbort, { once: true });
      }
      let task: unknown;
      try {
        task =
          args === undefined
            ? fn(controller.signal)
            : (fn as (...a: unknown[]) => unknown).apply(thisArg, args);
      } catch (error) {
        task = Promise.reject(error);
      }
      result = await Promise.race([task, interrupted]);
    } catch (error) {
      const timedOut = timeoutError !== undefined && error === timeoutError;
      if (timedOut) {
        this.timeoutCount++;
        this.listeners?.emit('timeout', { timeoutMs });
      }
      return this.handleError(error, ticket, start, signal, args, timedOut);
    } finally {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
    }
    this.settleResult(result, ticket, start);
    return result;
  }

  /** Waits for a shared probe permit, then runs the call as a probe (or as what the state allows). */
  private async claimThenRun(
    fn: ((signal: AbortSignal) => unknown) | ((...args: unknown[]) => unknown),
    thisArg: unknown,
    args: unknown[] | undefined,
    signal: AbortSignal | undefined,
  ): Promise<unknown> {
    const link = this.link!;
    const ticket = -++this.probeSeq;
    const claim = await link.claimProbe(ticket);
    if (claim === 'granted') {
      if (this.current === 'half_open') {
        (this.probes ??= new Map<number, number>()).set(ticket, this.clock.now());
        return this.run(fn, thisArg, args, signal, ticket);
      }
      // The circuit moved while the claim was in flight: give the permit back.
      link.settleProbe(ticket, 'ignore');
    } else if (claim === 'local' && this.current === 'half_open') {
      // The store could not answer in time: this process decides on its own permits.
      const local = this.admitLocalProbe(
        (this.probes ??= new Map<number, number>()),
        this.clock.now(),
      );
      return local === 0 ? this.rejectCall(args) : this.run(fn, thisArg, args, signal, local);
    }
    // Refused, or the circuit moved: admit on the state as it is now, without claiming again.
    const again = this.admit();
    if (again === 0 || again === CLAIM) return this.rejectCall(args);
    return this.run(fn, thisArg, args, signal, again);
  }

  private settleResult(result: unknown, ticket: number, start: number): void {
    if (this.isResultFailure !== undefined && this.isResultFailure(result)) {
      this[settle](ticket, FAILED, start, result);
    } else {
      this[settle](ticket, SUCCESS, start, undefined);
    }
  }

  private handleError(
    error: unknown,
    ticket: number,
    start: number,
    signal: AbortSignal | undefined,
    args: unknown[] | undefined,
    timedOut: boolean,
  ): unknown {
    const counts =
      timedOut ||
      ((signal === undefined || !signal.aborted) &&
        (this.isFailure === undefined || this.isFailure(error)));
    if (!counts) {
      this[settle](ticket, IGNORED, start, error);
      throw error;
    }
    this[settle](ticket, FAILED, start, error);
    if (this.fallback === undefined) throw error;
    return args === undefined ? this.fallback(error) : this.fallback(error, ...args);
  }

  private rejectCall(args: unknown[] | undefined): unknown {
    const error = CircuitOpenError.create(this.name, this.retryAfterMs);
    this.emitRejected();
    if (this.fallback === undefined) throw error;
    return args === undefined ? this.fallback(error) : this.fallback(error, ...args);
  }

  private emitRejected(): void {
    this.rejectedCount++;
    if (this.listeners?.has('rejected'))
      this.listeners.emit('rejected', { retryAfterMs: this.retryAfterMs });
  }

  /** Returns a ticket for an admitted call (a generation > 0, or a probe ticket < 0), or 0. */
  private admit(): number {
    switch (this.current) {
      case 'closed':
      case 'disabled':
        return this.generation;
      case 'open': {
        const now = this.clock.now();
        if (!this.dueForProbe(now)) return 0;
        return this.admitProbe(now);
      }
      case 'half_open':
        return this.admitProbe(this.clock.now());
      case 'forced_open':
        return 0;
    }
  }

  private admitProbe(now: number): number {
    const probes = (this.probes ??= new Map<number, number>());
    const link = this.link;
    const shared = link !== undefined && link.available;
    const held = shared ? link.claiming : 0;
    if (probes.size + held >= this.maxProbes && this.probeMaxWaitMs > 0) {
      for (const [ticket, admittedAt] of probes) {
        if (now - admittedAt >= this.probeMaxWaitMs) probes.delete(ticket);
      }
    }
    if (shared) {
      // Permits come from the shared circuit: a parked one now, or a claim to wait for.
      const ticket = -++this.probeSeq;
      if (link.takeParked(ticket)) {
        probes.set(ticket, now);
        return ticket;
      }
      return probes.size + link.claiming < this.maxProbes && link.mayClaim() ? CLAIM : 0;
    }
    return this.admitLocalProbe(probes, now);
  }

  private admitLocalProbe(probes: Map<number, number>, now: number): number {
    if (probes.size >= this.maxProbes) return 0;
    const ticket = -++this.probeSeq;
    probes.set(ticket, now);
    return ticket;
  }

  /** Moves an open circuit whose time is up to half-open; returns whether it did. */
  private dueForProbe(now: number): boolean {
    if (this.current === 'open' && now >= this.nextAttemptAt) {
      this.transition('half_open', 'open time elapsed', now);
      return true;
    }
    return this.current === 'half_open';
  }

  /** Records the outcome of the call holding `ticket`. */
  [settle](ticket: number, outcome: Outcome, start: number, error: unknown): void {
    if (outcome === SUCCESS) this.successCount++;
    else if (outcome === FAILED) this.failureCount++;
    else this.ignoredCount++;
    const listeners = this.listeners;
    let durationMs = 0;
    let slow = false;
    if (this.timed) {
      durationMs = Number.isNaN(start) ? 0 : this.clock.now() - start;
      slow = this.slowCallMs > 0 && durationMs > this.slowCallMs;
      if (listeners !== undefined) {
        if (outcome === SUCCESS) listeners.emit('success', { durationMs });
        else if (outcome === FAILED) listeners.emit('failure', { error, durationMs });
        if (slow) listeners.emit('slowCall', { durationMs });
      }
    }
    if (outcome === IGNORED && listeners !== undefined) listeners.emit('ignored', { error });

    if (ticket < 0) {
      this.settleProbe(ticket, outcome);
      return;
    }
    if (ticket !== this.generation || this.current !== 'closed' || outcome === IGNORED) return;

    const link = this.link;
    if (link !== undefined) link.record(outcome === FAILED, slow);
    const window = this.window;
    if (outcome === SUCCESS) {
      this.consecutive = 0;
      window.record(slow ? CALL | SLOW : CALL, this.windowTimed ? this.clock.now() : 0);
    } else {
      this.consecutive++;
      window.record(
        slow ? CALL | FAILURE | SLOW : CALL | FAILURE,
        this.windowTimed ? this.clock.now() : 0,
      );
      if (this.consecutive >= this.failureThreshold) {
        if (link === undefined || !this.deferTrip(link)) {
          this.trip(`${this.consecutive} consecutive failures`);
        }
        return;
      }
    }
    // A success can also open the circuit: it may be the call that reaches minimumCalls.
    if (window.calls < this.minimumCalls) return;
    if (this.failureRate > 0 && window.failures * 100 >= this.failureRate * window.calls) {
      if (link !== undefined && this.deferTrip(link)) return;
      this.trip(
        `failure rate ${formatPercent((window.failures * 100) / window.calls)} >= ${this.failureRate}% over ${window.calls} calls`,
      );
    } else if (
      this.slowCallRate > 0 &&
      window.slowCalls * 100 >= this.slowCallRate * window.calls
    ) {
      if (link !== undefined && this.deferTrip(link)) return;
      this.trip(
        `slow-call rate ${formatPercent((window.slowCalls * 100) / window.calls)} >= ${this.slowCallRate}% over ${window.calls} calls`,
      );
    }
  }

  /** Whether `error`, reported through a permit, counts as a failure. */
  [classify](error: unknown): Outcome {
    return this.isFailure === undefined || this.isFailure(error) ? FAILED : IGNORED;
  }

  /**
   * In shared scope with the store reachable, the circuit opens on the cluster's totals: the
   * local counts only hurry the pending ones to the store. Returns whether it deferred.
   */
  private deferTrip(link: BreakerLink): boolean {
    if (!link.available) return false;
    link.flushSoon();
    return true;
  }

  private settleProbe(ticket: number, outcome: Outcome): void {
    const held = this.probes?.delete(ticket) === true;
    const link = this.link;
    if (link !== undefined) {
      // A shared permit: the store decides what the outcome does to the circuit.
      if (
        link.settleProbe(
          ticket,
          outcome === SUCCESS ? 'success' : outcome === FAILED ? 'failure' : 'ignore',
        )
      ) {
        return;
      }
      // A local permit settled once the store is back: the shared state rules now.
      if (link.available) return;
    }
    if (this.current !== 'half_open' || !held) return;
    if (outcome === IGNORED) return;
    const now = this.clock.now();
    if (outcome === FAILED) {
      this.level = Math.min(this.level + 1, this.maxLevel);
      this.transition('open', 'probe failed', now);
    } else if (++this.probeSuccesses >= this.probeSuccessesNeeded) {
      this.transition(
        'closed',
        `${this.probeSuccesses} probe ${this.probeSuccesses === 1 ? 'success' : 'successes'}`,
        now,
      );
    }
  }

  /** Opens a closed circuit; the backoff level grows when it had not stayed closed long enough. */
  private trip(reason: string): void {
    const now = this.clock.now();
    this.level =
      this.effectiveLevel(now) > 0 || this.reopenedSoon(now)
        ? Math.min(this.level + 1, this.maxLevel)
        : 0;
    this.transition('open', reason, now);
  }

  private reopenedSoon(now: number): boolean {
    return (
      this.backoffMultiplier > 1 &&
      this.backoffResetMs > 0 &&
      now - this.closedAt < this.backoffResetMs
    );
  }

  private effectiveLevel(now: number): number {
    if (
      this.current === 'closed' &&
      (this.backoffResetMs === 0 || now - this.closedAt >= this.backoffResetMs)
    )
      return 0;
    return this.level;
  }

  private openTimeMs(): number {
    if (this.backoffMultiplier === 1 || this.level === 0) return this.openDurationMs;
    return Math.min(this.backoffMaxMs, this.openDurationMs * this.backoffMultiplier ** this.level);
  }

  private transition(to: CircuitState, reason: string, now: number, openForMs?: number): void {
    const from = this.current;
    this.enter(to, now, openForMs);
    this.listeners?.emit('stateChange', { from, to, reason });
  }

  /** Follows the shared circuit (called by the store link). */
  private followShared(shared: SharedCircuitState): void {
    const now = this.clock.now();
    const from = this.current;
    const to = shared.state;
    // A local half-open is the shared "open and due"; a closed circuit told it is closed keeps
    // its counts (its own reset, echoed back, or a reset elsewhere while it was closed anyway).
    const same = from === to || (from === 'half_open' && to === 'open' && shared.retryAfterMs <= 0);
    if (!same) this.enter(to, now, shared.retryAfterMs);
    this.level = Math.min(shared.backoffLevel, this.maxLevel);
    this.closedAt = shared.closedAgoMs === null ? -Infinity : now - shared.closedAgoMs;
    if (to === 'open' || to === 'forced_open') {
      this.openedAt = shared.openedAgoMs === null ? now : now - shared.openedAgoMs;
      if (to === 'open' && from !== 'half_open') this.nextAttemptAt = now + shared.retryAfterMs;
    }
    if (!same) this.listeners?.emit('stateChange', { from, to, reason: shared.reason });
  }

  /** Moves to `to`: a new generation, no probes, and the times and counts `to` starts with. */
  private enter(to: CircuitState, now: number, openForMs?: number): void {
    this.current = to;
    this.generation++;
    this.probes?.clear();
    this.probeSuccesses = 0;
    switch (to) {
      case 'open':
        this.openedAt = now;
        this.nextAttemptAt = now + (openForMs ?? this.openTimeMs());
        break;
      case 'closed':
        this.window.clear();
        this.consecutive = 0;
        this.closedAt = now;
        if (this.backoffResetMs === 0) this.level = 0;
        this.openedAt = NaN;
        this.nextAttemptAt = NaN;
        break;
      case 'forced_open':
        this.openedAt = now;
        this.nextAttemptAt = NaN;
        break;
      case 'half_open':
        break;
      case 'disabled':
        this.openedAt = NaN;
        this.nextAttemptAt = NaN;
        break;
    }
  }

  private attachLogger(logger: Logger): void {
    const name = this.name;
    this.onListenerError ??= (error, event) =>
      log(logger, 'error', `[CIRCUIT] ${name}: a ${event} listener threw: ${describeError(error)}`);
    this.on('stateChange', ({ from, to, reason }) =>
      log(
        logger,
        to === 'open' || to === 'forced_open' ? 'warn' : 'info',
        `[CIRCUIT] ${name} ${from} -> ${to} (${reason})`,
      ),
    );
  }

  /** An operator's transition keeps the backoff level, as decayed by now. */
  private operatorTransition(to: CircuitState, reason: string, openForMs?: number): void {
    const now = this.clock.now();
    this.level = this.effectiveLevel(now);
    this.transition(to, reason, now, openForMs);
  }

  private updateTimed(): void {
    const l = this.listeners;
    this.timed =
      this.slowCallMs > 0 ||
      (l !== undefined && (l.has('success') || l.has('failure') || l.has('slowCall')));
  }

  private restore(initial: CircuitBreakerStateJSON): void {
    checkObject(OWNER, 'initialState', initial);
    const state = oneOf(OWNER, 'initialState.state', initial.state, STATES);
    const time = (key: 'openedAt' | 'nextAttemptAt' | 'closedAt'): number => {
      const value = initial[key];
      if (value === null || value === undefined) return NaN;
      return numberOption(OWNER, `initialState.${key}`, value, 0, Number.MAX_SAFE_INTEGER);
    };
    this.level = Math.min(
      this.maxLevel,
      integerOption(OWNER, 'initialState.backoffLevel', initial.backoffLevel ?? 0, 0, 64),
    );
    this.consecutive = integerOption(
      OWNER,
      'initialState.consecutiveFailures',
      initial.consecutiveFailures ?? 0,
      0,
    );
    const closedAt = time('closedAt');
    this.closedAt = Number.isNaN(closedAt) ? -Infinity : closedAt;
    this.current = state === 'half_open' ? 'open' : state;
    this.openedAt = time('openedAt');
    this.nextAttemptAt = time('nextAttemptAt');
    if (state === 'half_open' || (state === 'open' && Number.isNaN(this.nextAttemptAt))) {
      // Probes in flight elsewhere are lost: probe again at once.
      this.nextAttemptAt = this.clock.now();
      if (Number.isNaN(this.openedAt)) this.openedAt = this.nextAttemptAt;
    }
  }
}

class Permit implements BreakerPermit {
  private settled = false;

  constructor(
    private readonly breaker: CircuitBreaker,
    private readonly ticket: number,
    private readonly start: number,
  ) {}

  success(): void {
    if (this.settled) return;
    this.settled = true;
    this.breaker[settle](this.ticket, SUCCESS, this.start, undefined);
  }

  failure(error?: unknown): void {
    if (this.settled) return;
    this.settled = true;
    const outcome = arguments.length === 0 ? FAILED : this.breaker[classify](error);
    this.breaker[settle](this.ticket, outcome, this.start, error);
  }

  ignore(): void {
    if (this.settled) return;
    this.settled = true;
    this.breaker[settle](this.ticket, IGNORED, this.start, undefined);
  }
}

function resolveWindow(options: WindowOptions | undefined): SharedBreakerSettings['window'] {
  if (options === undefined) return { type: 'count', size: 100 };
  checkObject(OWNER, 'window', options);
  const type = oneOf(OWNER, 'window.type', options.type, ['count', 'time'] as const);
  if (type === 'count') {
    checkKnownKeys(OWNER, 'window', options, ['type', 'size']);
    return {
      type,
      size: integerOption(OWNER, 'window.size', (options as { size?: unknown }).size, 1, 1_000_000),
    };
  }
  checkKnownKeys(OWNER, 'window', options, ['type', 'durationMs', 'buckets']);
  const time = options as { durationMs?: unknown; buckets?: unknown };
  const durationMs = durationOption(OWNER, 'window.durationMs', time.durationMs, {
    allowZero: false,
  });
  const buckets =
    time.buckets === undefined
      ? 10
      : integerOption(OWNER, 'window.buckets', time.buckets, 1, 1_000);
  return { type, durationMs, buckets };
}

function checkStore(value: unknown): BreakerStore {
  const store = value as Partial<Record<keyof BreakerStore, unknown>> | null;
  if (
    typeof store !== 'object' ||
    store === null ||
    typeof store.connect !== 'function' ||
    typeof store.shared !== 'boolean'
  ) {
    throw new ConfigError(
      OWNER,
      'store',
      value,
      'must be a breaker store (an object with `shared` and `connect()`, e.g. MemoryBreakerStore)',
    );
  }
  return value as BreakerStore;
}

function formatPercent(value: number): string {
  return `${Math.round(value * 10) / 10}%`;
}
