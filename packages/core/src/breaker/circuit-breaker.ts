import { BreakerCalls, type CallFn } from './call';
import type { CircuitState } from './circuit-state';
import { resolveBreakerOptions, sharedSettings, type CircuitBreakerOptions } from './options';
import type { BreakerPermit } from './permit';
import { SharedScope } from './shared-scope';
import { parseStateJSON, stateJSON } from './state-json';
import type {
  CircuitBreakerEvents,
  CircuitBreakerSnapshot,
  CircuitBreakerStateJSON,
  CircuitBreakerTotals,
} from './types';
import { brand } from '../brand';
import { ConfigError } from '../errors';
import { log } from '../internal/log';
import type { Policy } from '../policy';

export type { CircuitState } from './circuit-state';
export type {
  CircuitBreakerOptions,
  HalfOpenOptions,
  OpenBackoffOptions,
  WindowOptions,
} from './options';
export type { BreakerPermit } from './permit';
export type {
  CircuitBreakerEvents,
  CircuitBreakerSnapshot,
  CircuitBreakerStateJSON,
  CircuitBreakerTotals,
} from './types';

type Invoke<T> = (signal: AbortSignal) => PromiseLike<T> | T;

const OWNER = 'CircuitBreaker';

/**
 * A circuit breaker: stops calling a dependency that keeps failing, probes it after a while, and
 * closes again when it recovers. It holds no timers: the move from open to half-open is decided at
 * the next call or read.
 *
 * Every hook it is given may throw or reject: a predicate that throws counts the call as a
 * failure, a listener's or logger's error goes to `onListenerError`, and no probe permit is ever
 * left held.
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
  private readonly calls: BreakerCalls;

  constructor(options: CircuitBreakerOptions) {
    const o = resolveBreakerOptions(options);
    this.name = o.name;
    const calls = (this.calls = new BreakerCalls(o));
    const logger = o.logger;
    if (logger !== undefined) {
      const name = o.name;
      calls.on('stateChange', ({ from, to, reason }) =>
        log(
          logger,
          to === 'open' || to === 'forced_open' ? 'warn' : 'info',
          `[CIRCUIT] ${name} ${from} -> ${to} (${reason})`,
        ),
      );
    }
    if (o.initialState !== undefined) calls.machine.restore(parseStateJSON(o.initialState));
    const store = o.sharedStore;
    if (store !== undefined) {
      const machine = calls.machine;
      // The store holds this view, not the breaker itself.
      const link = store.connect({
        name: o.name,
        settings: sharedSettings(o),
        follow: (state) => machine.follow(state),
        reconsider: () => {
          const reason = machine.pendingTrip();
          if (reason !== undefined && calls.shared?.available !== true) machine.trip(reason);
        },
      });
      if (link !== undefined) {
        calls.shared = new SharedScope(link);
        calls.updateTimed();
      }
    }
  }

  /** The current state (an elapsed open time turns into `half_open` when read). */
  get state(): CircuitState {
    const machine = this.calls.machine;
    if (machine.current === 'open') machine.dueForProbe(this.calls.o.clock.now());
    return machine.current;
  }

  /** Milliseconds until a probe is admitted: 0 when calls are admitted now or when unknown. */
  get retryAfterMs(): number {
    return this.calls.retryAfterMs();
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
    const calls = this.calls;
    const machine = calls.machine;
    if (machine.current === 'closed' && calls.plain) {
      return calls.runClosed(fn, signal, machine.generation) as Promise<T>;
    }
    return calls.run(fn, undefined, undefined, signal, calls.admit()) as Promise<T>;
  }

  /**
   * Returns a function with `fn`'s signature whose calls go through the breaker: arguments and
   * `this` pass through unchanged, and a fallback receives `(error, ...args)`.
   */
  wrap<This, Args extends unknown[], R>(
    fn: (this: This, ...args: Args) => R | PromiseLike<R>,
  ): (this: This, ...args: Args) => Promise<Awaited<R>> {
    const calls = this.calls;
    return function (this: This, ...args: Args): Promise<Awaited<R>> {
      return calls.run(fn as CallFn, this, args, undefined, calls.admit()) as Promise<Awaited<R>>;
    };
  }

  /**
   * Admits a call without throwing: returns a permit to settle when the call ends, or
   * `undefined` when the circuit rejects the call.
   */
  tryAcquire(): BreakerPermit | undefined {
    return this.calls.tryAcquire();
  }

  /**
   * Opens the circuit until `reset()` (operator action). With a shared store, every process
   * follows.
   */
  open(): void {
    this.calls.machine.force('forced_open', 'forced open');
    this.calls.shared?.command('forced_open', 0, 'forced open');
  }

  /**
   * Opens the circuit for `ms` (e.g. an upstream's Retry-After), then probes as usual. A time
   * beyond `maxOpenMs` (24 h unless configured) is clamped to it. With a shared store, every
   * process follows.
   * @throws ConfigError when `ms` is not a number >= 0
   */
  openFor(ms: number): void {
    if (typeof ms !== 'number' || Number.isNaN(ms) || ms < 0) {
      throw new ConfigError(OWNER, 'openFor(ms)', ms, 'must be a number >= 0');
    }
    const bounded = Math.round(Math.min(ms, this.calls.o.maxOpenMs));
    const reason = `opened for ${bounded} ms`;
    this.calls.machine.force('open', reason, bounded);
    this.calls.shared?.command('open', bounded, reason);
  }

  /**
   * Closes the circuit and forgets its history, backoff level included. With a shared store,
   * every process follows.
   */
  reset(): void {
    this.calls.machine.reset();
    this.calls.shared?.command('closed', 0, 'reset');
  }

  /**
   * Admits every call and never changes state until `reset()`; outcomes are still reported.
   * With a shared store, every process follows.
   */
  disable(): void {
    this.calls.machine.force('disabled', 'disabled');
    this.calls.shared?.command('disabled', 0, 'disabled');
  }

  /**
   * Subscribes to an event; returns the function that unsubscribes. A listener that throws or
   * rejects never affects a call: its error goes to `onListenerError`.
   */
  on<K extends keyof CircuitBreakerEvents>(
    event: K,
    listener: (event: CircuitBreakerEvents[K]) => void,
  ): () => void {
    return this.calls.on(event, listener);
  }

  /** Outcomes counted since the breaker was created. */
  totals(): CircuitBreakerTotals {
    const c = this.calls;
    return {
      successes: c.successes,
      failures: c.failures,
      timeouts: c.timeouts,
      rejected: c.rejected,
      ignored: c.ignored,
    };
  }

  /** A plain-JSON view of the breaker. */
  snapshot(): CircuitBreakerSnapshot {
    const now = this.calls.o.clock.now();
    const state = this.state;
    const machine = this.calls.machine;
    const window = machine.rates.window;
    window.refresh(now);
    const calls = window.calls;
    return {
      name: this.name,
      state,
      consecutiveFailures: machine.consecutive.count,
      failureRate: calls === 0 ? 0 : (window.failures * 100) / calls,
      slowCallRate: calls === 0 ? 0 : (window.slowCalls * 100) / calls,
      calls,
      failures: window.failures,
      slowCalls: window.slowCalls,
      halfOpenProbes: state === 'half_open' ? machine.probesRunning : 0,
      openedAt: Number.isNaN(machine.openedAt) ? null : machine.openedAt,
      nextAttemptAt: Number.isNaN(machine.nextAttemptAt) ? null : machine.nextAttemptAt,
      retryAfterMs: state === 'open' ? Math.max(0, machine.nextAttemptAt - now) : 0,
      backoffLevel: machine.levelAt(now),
    };
  }

  /** State to carry across processes or cold starts; pass it back as `initialState`. */
  toJSON(): CircuitBreakerStateJSON {
    const now = this.calls.o.clock.now();
    const state = this.state;
    const m = this.calls.machine;
    return stateJSON(
      this.name,
      state,
      m.consecutive.count,
      m.openedAt,
      m.nextAttemptAt,
      m.levelAt(now),
      m.closedAt,
    );
  }
}
brand(CircuitBreaker, 'CircuitBreaker');
