import type { CircuitState } from './circuit-state';
import type { ResolvedBreakerOptions } from './options';
import { Permit, type BreakerPermit, type PermitHost } from './permit';
import type { SharedScope } from './shared-scope';
import {
  CLAIM,
  CircuitStateMachine,
  FAILED,
  IGNORED,
  REJECTED,
  SUCCESS,
  isAdmitted,
  isProbe,
  type Outcome,
  type Ticket,
  type TransitionListener,
} from './state-machine';
import type { CircuitBreakerEvents } from './types';
import { CircuitOpenError } from '../errors';
import { Listeners, isThenable, reportHookError } from '../internal/listeners';
import { describeError, log } from '../internal/log';
import { neverAbortedSignal } from '../internal/never-aborted';
import { TimeoutCall } from '../policies/timeout';
import { systemClock, type Clock } from '../time/clock';

const monotonicClock: Clock = { now: () => performance.now() };

/** A protected function: `execute` passes a signal, `wrap` passes the caller's arguments. */
export type CallFn = ((signal: AbortSignal) => unknown) | ((...args: unknown[]) => unknown);

/** Hooks whose errors are reported by name rather than as listener errors. */
const HOOKS = new Set(['isFailure', 'isResultFailure', 'fallback']);

/**
 * A breaker's call path: admission, running a call (with its time limit), settling its outcome
 * into the state machine, events and totals. Every user hook runs guarded: a predicate that throws
 * counts the call as a failure, and the hook's error goes to `onListenerError` / the logger.
 */
export class BreakerCalls implements PermitHost, TransitionListener {
  readonly machine: CircuitStateMachine;
  shared: SharedScope | undefined = undefined;
  listeners: Listeners<CircuitBreakerEvents> | undefined = undefined;
  /** Whether a call must read the clock at its start (slow-call rule or duration listeners). */
  timed: boolean;
  successes = 0;
  failures = 0;
  timeouts = 0;
  rejected = 0;
  ignored = 0;
  readonly onHookError: ((error: unknown, event: string) => void) | undefined;
  /**
   * Times calls: a monotonic clock with sub-millisecond resolution (`performance.now()`) unless
   * the breaker was given a clock of its own.
   */
  private readonly stopwatch: Clock;

  constructor(readonly o: ResolvedBreakerOptions) {
    this.machine = new CircuitStateMachine(o, this);
    this.stopwatch = o.clock === systemClock ? monotonicClock : o.clock;
    this.timed = false;
    this.updateTimed();
    const logger = o.logger;
    const name = o.name;
    this.onHookError =
      o.onListenerError ??
      (logger === undefined
        ? undefined
        : (error, event) =>
            log(
              logger,
              'error',
              `[CIRCUIT] ${name}: ${HOOKS.has(event) ? `${event}` : `a ${event} listener`} threw: ${describeError(error)}`,
            ));
  }

  /** A ticket for the call about to run (see state-machine.ts). */
  admit(): Ticket {
    const shared = this.shared;
    return this.machine.admit(shared !== undefined && shared.available ? shared : undefined);
  }

  tryAcquire(): BreakerPermit | undefined {
    const ticket = this.admit();
    if (!isAdmitted(ticket)) {
      // A shared half-open circuit: claim a permit in the background for a later call.
      if (ticket === CLAIM) this.shared!.claimAhead();
      this.emitRejected();
      return undefined;
    }
    return new Permit(this, ticket, this.timed ? this.stopwatch.now() : NaN);
  }

  /**
   * Whether a closed call may take {@link BreakerCalls.runClosed}: no time limit, no result
   * predicate, no shared store.
   */
  get plain(): boolean {
    return this.plainCalls;
  }
  private plainCalls = false;

  /**
   * The closed fast path of `execute()`: the call runs with the caller's signal and an untimed
   * success is counted inline. Anything else (a timed call, a failure, a transition meanwhile)
   * is settled as usual.
   */
  async runClosed(fn: CallFn, signal: AbortSignal | undefined, ticket: Ticket): Promise<unknown> {
    const timed = this.timed;
    const start = timed ? this.stopwatch.now() : NaN;
    let result: unknown;
    try {
      if (signal !== undefined && signal.aborted) throw signal.reason;
      result = await fn(signal ?? neverAbortedSignal);
    } catch (error) {
      return this.failed(error, ticket, start, signal, undefined, false);
    }
    const machine = this.machine;
    if (!timed && ticket === machine.generation && machine.current === 'closed') {
      this.successes++;
      machine.recordSuccess();
    } else {
      this.settle(ticket, SUCCESS, start, undefined);
    }
    return result;
  }

  async run(
    fn: CallFn,
    thisArg: unknown,
    args: unknown[] | undefined,
    signal: AbortSignal | undefined,
    ticket: Ticket,
  ): Promise<unknown> {
    if (!isAdmitted(ticket)) {
      if (ticket === REJECTED) return this.reject(args);
      return this.claimThenRun(fn, thisArg, args, signal);
    }
    const start = this.timed ? this.stopwatch.now() : NaN;
    let result: unknown;
    if (this.o.timeoutMs > 0) {
      const call = new TimeoutCall<unknown>(
        this.o.timeoutMs,
        signal === undefined || signal === neverAbortedSignal ? undefined : signal,
      );
      try {
        result = await call.run((own) =>
          args === undefined ? fn(own) : (fn as (...a: unknown[]) => unknown).apply(thisArg, args),
        );
      } catch (error) {
        if (call.timedOut) {
          this.timeouts++;
          this.listeners?.emit('timeout', { timeoutMs: this.o.timeoutMs });
        }
        return this.failed(error, ticket, start, signal, args, call.timedOut);
      }
    } else {
      try {
        if (signal !== undefined && signal.aborted) throw signal.reason;
        result =
          args === undefined
            ? await fn(signal ?? neverAbortedSignal)
            : await (fn as (...a: unknown[]) => unknown).apply(thisArg, args);
      } catch (error) {
        return this.failed(error, ticket, start, signal, args, false);
      }
    }
    if (this.o.isResultFailure !== undefined && this.resultFails(result)) {
      this.settle(ticket, FAILED, start, result);
    } else {
      this.settle(ticket, SUCCESS, start, undefined);
    }
    return result;
  }

  /** Waits for a shared probe permit, then runs the call as a probe (or as the state allows). */
  private async claimThenRun(
    fn: CallFn,
    thisArg: unknown,
    args: unknown[] | undefined,
    signal: AbortSignal | undefined,
  ): Promise<unknown> {
    const shared = this.shared!;
    const machine = this.machine;
    const ticket = machine.newProbeTicket();
    const claim = await shared.claim(ticket);
    if (claim === 'granted') {
      if (machine.current === 'half_open') {
        machine.holdProbe(ticket, this.o.clock.now());
        return this.run(fn, thisArg, args, signal, ticket);
      }
      // The circuit moved while the claim was in flight: give the permit back.
      shared.giveBack(ticket);
    } else if (claim === 'local' && machine.current === 'half_open') {
      // The store could not answer in time: this process decides on its own permits.
      const local = machine.addProbe(this.o.clock.now());
      return local === REJECTED ? this.reject(args) : this.run(fn, thisArg, args, signal, local);
    }
    // Refused, or the circuit moved: admit on the state as it is now, without claiming again.
    const again = this.admit();
    return isAdmitted(again) ? this.run(fn, thisArg, args, signal, again) : this.reject(args);
  }

  private failed(
    error: unknown,
    ticket: Ticket,
    start: number,
    signal: AbortSignal | undefined,
    args: unknown[] | undefined,
    timedOut: boolean,
  ): unknown {
    const counts =
      timedOut || ((signal === undefined || !signal.aborted) && this.classify(error) === FAILED);
    if (!counts) {
      this.settle(ticket, IGNORED, start, error);
      throw error;
    }
    this.settle(ticket, FAILED, start, error);
    if (this.o.fallback === undefined) throw error;
    return this.callFallback(error, args);
  }

  /** A call the circuit did not admit: the fallback's value, or a CircuitOpenError. */
  reject(args: unknown[] | undefined): unknown {
    const error = CircuitOpenError.create(this.o.name, this.retryAfterMs());
    this.emitRejected();
    if (this.o.fallback === undefined) throw error;
    return this.callFallback(error, args);
  }

  private emitRejected(): void {
    this.rejected++;
    if (this.listeners?.has('rejected')) {
      this.listeners.emit('rejected', { retryAfterMs: this.retryAfterMs() });
    }
  }

  /** The fallback's value; a fallback that throws or rejects rejects the call with its error. */
  private callFallback(error: unknown, args: unknown[] | undefined): unknown {
    const fallback = this.o.fallback!;
    let value: unknown;
    try {
      value = args === undefined ? fallback(error) : fallback(error, ...args);
    } catch (hookError) {
      this.hookFailed(hookError, 'fallback');
      throw hookError;
    }
    if (!isThenable(value)) return value;
    return Promise.resolve(value).catch((hookError: unknown) => {
      this.hookFailed(hookError, 'fallback');
      throw hookError;
    });
  }

  classify(error: unknown): Outcome {
    const isFailure = this.o.isFailure;
    if (isFailure === undefined) return FAILED;
    try {
      return isFailure(error) ? FAILED : IGNORED;
    } catch (hookError) {
      this.hookFailed(hookError, 'isFailure');
      return FAILED;
    }
  }

  private resultFails(result: unknown): boolean {
    try {
      return this.o.isResultFailure!(result);
    } catch (hookError) {
      this.hookFailed(hookError, 'isResultFailure');
      return true;
    }
  }

  hookFailed(error: unknown, hook: string): void {
    reportHookError(this.onHookError, error, hook);
  }

  /** Records the outcome of the call holding `ticket`. */
  settle(ticket: Ticket, outcome: Outcome, start: number, error: unknown): void {
    if (outcome === SUCCESS) this.successes++;
    else if (outcome === FAILED) this.failures++;
    else this.ignored++;
    let slow = false;
    if (this.timed) slow = this.timedEvents(outcome, start, error);
    else if (outcome === IGNORED && this.listeners !== undefined) {
      this.listeners.emit('ignored', { error });
    }

    const machine = this.machine;
    const shared = this.shared;
    if (isProbe(ticket)) {
      const held = machine.releaseProbe(ticket);
      if (shared === undefined || !shared.settleProbe(ticket, outcome)) {
        machine.settleProbe(held, outcome);
      }
      return;
    }
    if (outcome === IGNORED || ticket !== machine.generation || machine.current !== 'closed')
      return;
    const failed = outcome === FAILED;
    if (shared !== undefined) shared.record(failed, slow);
    const reason = machine.recordClosed(ticket, failed, slow);
    if (reason !== undefined && (shared === undefined || !shared.deferTrip())) machine.trip(reason);
  }

  /** Measures the call, emits the timed events; returns whether the call was slow. */
  private timedEvents(outcome: Outcome, start: number, error: unknown): boolean {
    const durationMs = Number.isNaN(start) ? 0 : this.stopwatch.now() - start;
    const slow = this.o.slowCallDurationMs > 0 && durationMs > this.o.slowCallDurationMs;
    const listeners = this.listeners;
    if (listeners !== undefined) {
      if (outcome === SUCCESS) listeners.emit('success', { durationMs });
      else if (outcome === FAILED) listeners.emit('failure', { error, durationMs });
      else listeners.emit('ignored', { error });
      if (slow) listeners.emit('slowCall', { durationMs });
    }
    return slow;
  }

  /** Milliseconds until a probe is admitted (moves an elapsed open circuit to half-open). */
  retryAfterMs(): number {
    const machine = this.machine;
    if (machine.current !== 'open') return 0;
    const now = this.o.clock.now();
    return machine.dueForProbe(now) ? 0 : Math.max(0, machine.nextAttemptAt - now);
  }

  on<K extends keyof CircuitBreakerEvents>(
    event: K,
    listener: (event: CircuitBreakerEvents[K]) => void,
  ): () => void {
    this.listeners ??= new Listeners<CircuitBreakerEvents>(this.onHookError);
    const off = this.listeners.add(event, listener);
    this.updateTimed();
    return () => {
      off();
      this.updateTimed();
    };
  }

  /** Recomputes `timed` and `plain` (after listeners or the shared scope change). */
  updateTimed(): void {
    const l = this.listeners;
    this.timed =
      this.o.slowCallDurationMs > 0 ||
      (l !== undefined && (l.has('success') || l.has('failure') || l.has('slowCall')));
    this.plainCalls =
      this.o.timeoutMs === 0 && this.o.isResultFailure === undefined && this.shared === undefined;
  }

  /** The machine's transitions become `stateChange` events. */
  onTransition(from: CircuitState, to: CircuitState, reason: string): void {
    this.listeners?.emit('stateChange', { from, to, reason });
  }
}
