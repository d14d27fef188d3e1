import type { CircuitState } from './circuit-state';
import { effectiveLevel, nextLevel, openTimeMs, reopenedSoon } from './open-backoff';
import type { ResolvedBreakerOptions } from './options';
import { ConsecutiveFailures, WindowRates } from './trip-rules';
import { FAILURE, SLOW } from './outcome-window';
import type { SharedCircuitState } from './breaker-store';

/**
 * What admission hands out. A generation (> 0) admits a call while closed or disabled; a negative
 * finite number is a probe ticket; {@link REJECTED} refuses; {@link CLAIM} asks the shared store
 * for a probe permit first.
 */
export type Ticket = number;
export const REJECTED: Ticket = 0;
export const CLAIM: Ticket = -Infinity;
/** Whether `ticket` lets a call run now (a generation or a probe). */
export const isAdmitted = (ticket: Ticket): boolean => ticket !== REJECTED && ticket !== CLAIM;
/** Whether `ticket` is a half-open probe. */
export const isProbe = (ticket: Ticket): boolean => ticket < 0 && ticket !== CLAIM;

/** How a call ended, for the machine. */
export const SUCCESS = 0;
export const FAILED = 1;
export const IGNORED = 2;
export type Outcome = typeof SUCCESS | typeof FAILED | typeof IGNORED;

/** Probe permits held elsewhere (a shared store): the machine sees counts and answers only. */
export interface ProbeSource {
  /** Claims in flight or parked, counting against the permits. */
  readonly held: number;
  /** Binds a parked shared permit to `ticket`. */
  takeParked(ticket: Ticket): boolean;
  /** Whether a claim may be sent now. */
  mayClaim(): boolean;
}

/** Where the machine reports its transitions (one object, so a breaker holds no closure for it). */
export interface TransitionListener {
  onTransition(from: CircuitState, to: CircuitState, reason: string): void;
}

/** The fields of a circuit restored from `toJSON()`. */
export interface RestoredCircuit {
  state: CircuitState;
  consecutiveFailures: number;
  openedAt: number;
  nextAttemptAt: number;
  closedAt: number;
  backoffLevel: number;
}

/**
 * The circuit and nothing else: state, generation, open and next-attempt times, the backoff level
 * and probe tickets. No listeners, no store link, no timers, no option parsing: it reports every
 * transition through `onTransition`.
 */
export class CircuitStateMachine {
  current: CircuitState = 'closed';
  /** Changes at every transition; an outcome from another generation changes nothing. */
  generation = 1;
  openedAt = NaN;
  nextAttemptAt = NaN;
  closedAt = -Infinity;
  level = 0;
  readonly consecutive: ConsecutiveFailures;
  readonly rates: WindowRates;
  private probes: Map<Ticket, number> | undefined = undefined; // probe ticket -> admitted at
  private probeSeq = 0;
  private probeSuccesses = 0;

  constructor(
    private readonly o: ResolvedBreakerOptions,
    private readonly listener: TransitionListener,
  ) {
    this.consecutive = new ConsecutiveFailures(o.failureThreshold || Infinity);
    this.rates = new WindowRates(o);
  }

  /** Admits a call: a ticket (see {@link Ticket}). Reads the clock only when not closed. */
  admit(shared?: ProbeSource): Ticket {
    switch (this.current) {
      case 'closed':
      case 'disabled':
        return this.generation;
      case 'forced_open':
        return REJECTED;
      default: {
        const now = this.o.clock.now();
        return this.dueForProbe(now) ? this.admitProbe(now, shared) : REJECTED;
      }
    }
  }

  /** Moves an open circuit whose time is up to half-open; returns whether probes are admitted. */
  dueForProbe(now: number): boolean {
    if (this.current === 'open' && now >= this.nextAttemptAt) {
      this.transition('half_open', 'open time elapsed', now);
      return true;
    }
    return this.current === 'half_open';
  }

  private admitProbe(now: number, shared: ProbeSource | undefined): Ticket {
    const probes = (this.probes ??= new Map<Ticket, number>());
    const held = shared === undefined ? 0 : shared.held;
    const maxWait = this.o.halfOpenMaxWaitMs;
    // Every admission frees the permits of probes past maxWaitMs (as a shared store's leases
    // expire): their late outcomes are ignored.
    if (maxWait > 0 && probes.size > 0) {
      for (const [ticket, admittedAt] of probes) {
        if (now - admittedAt >= maxWait) probes.delete(ticket);
      }
    }
    if (shared !== undefined) {
      const ticket = this.newProbeTicket();
      if (shared.takeParked(ticket)) {
        probes.set(ticket, now);
        return ticket;
      }
      return probes.size + held < this.o.halfOpenMaxConcurrent && shared.mayClaim()
        ? CLAIM
        : REJECTED;
    }
    return this.addProbe(now);
  }

  /** A probe ticket the machine holds, or REJECTED when every permit is taken. */
  addProbe(now: number): Ticket {
    const probes = (this.probes ??= new Map<Ticket, number>());
    if (probes.size >= this.o.halfOpenMaxConcurrent) return REJECTED;
    const ticket = this.newProbeTicket();
    probes.set(ticket, now);
    return ticket;
  }

  /** Holds a probe whose shared permit was granted. */
  holdProbe(ticket: Ticket, now: number): void {
    (this.probes ??= new Map<Ticket, number>()).set(ticket, now);
  }

  newProbeTicket(): Ticket {
    return -++this.probeSeq;
  }

  get probesRunning(): number {
    return this.probes?.size ?? 0;
  }

  /**
   * Records the outcome of a call admitted while closed; returns why the circuit should open (the
   * caller trips it, or leaves the decision to a shared store), or undefined.
   */
  recordClosed(ticket: Ticket, failed: boolean, slow: boolean): string | undefined {
    if (ticket !== this.generation || this.current !== 'closed') return undefined;
    const flags = (failed ? FAILURE : 0) | (slow ? SLOW : 0);
    const now = this.rates.needsTime ? this.o.clock.now() : 0;
    const consecutive = this.consecutive.record(flags);
    const rate = flags === 0 ? this.rates.recordSuccess(now) : this.rates.record(flags, now);
    return consecutive ?? rate;
  }

  /** A success of a closed call of this generation: no rule can trip on it but a rate rule. */
  recordSuccess(): void {
    this.consecutive.count = 0;
    const rates = this.rates;
    const reason = rates.recordSuccess(rates.needsTime ? this.o.clock.now() : 0);
    if (reason !== undefined) this.trip(reason);
  }

  /** Why the rules, on the counts as they are now, would open a closed circuit; or undefined. */
  pendingTrip(): string | undefined {
    if (this.current !== 'closed') return undefined;
    return this.consecutive.check() ?? this.rates.check(this.o.clock.now());
  }

  /** Opens a closed circuit; the backoff level grows when it had not stayed closed long enough. */
  trip(reason: string): void {
    const now = this.o.clock.now();
    const o = this.o;
    this.level =
      effectiveLevel(o, this.current, this.level, this.closedAt, now) > 0 ||
      reopenedSoon(o, this.closedAt, now)
        ? nextLevel(o, this.level)
        : 0;
    this.transition('open', reason, now);
  }

  /** Frees `ticket`'s probe permit; returns whether the machine held it. */
  releaseProbe(ticket: Ticket): boolean {
    return this.probes?.delete(ticket) === true;
  }

  /** Settles a probe the machine decides on (a local permit). */
  settleProbe(held: boolean, outcome: Outcome): void {
    if (this.current !== 'half_open' || !held || outcome === IGNORED) return;
    const now = this.o.clock.now();
    if (outcome === FAILED) {
      this.level = nextLevel(this.o, this.level);
      this.transition('open', 'probe failed', now);
    } else if (++this.probeSuccesses >= this.o.halfOpenSuccessThreshold) {
      const n = this.probeSuccesses;
      this.transition('closed', `${n} probe ${n === 1 ? 'success' : 'successes'}`, now);
    }
  }

  /** An operator's transition keeps the backoff level, as decayed by now. */
  force(to: CircuitState, reason: string, openForMs?: number): void {
    const now = this.o.clock.now();
    this.level = this.levelAt(now);
    this.transition(to, reason, now, openForMs);
  }

  /** Closes the circuit and forgets its history, backoff level included. */
  reset(): void {
    this.level = 0;
    this.transition('closed', 'reset', this.o.clock.now());
    this.closedAt = -Infinity;
  }

  /** Follows the shared circuit (a transition anywhere in the cluster, or a resync). */
  follow(shared: SharedCircuitState): void {
    const now = this.o.clock.now();
    const from = this.current;
    const to = shared.state;
    // A local half-open is the shared "open and due"; a closed circuit told it is closed keeps
    // its counts (its own reset, echoed back, or a reset elsewhere while it was closed anyway).
    const same = from === to || (from === 'half_open' && to === 'open' && shared.retryAfterMs <= 0);
    if (!same) this.enter(to, now, shared.retryAfterMs);
    this.level = Math.min(shared.backoffLevel, this.o.maxBackoffLevel);
    this.closedAt = shared.closedAgoMs === null ? -Infinity : now - shared.closedAgoMs;
    if (to === 'open' || to === 'forced_open') {
      this.openedAt = shared.openedAgoMs === null ? now : now - shared.openedAgoMs;
      if (to === 'open' && from !== 'half_open') this.nextAttemptAt = now + shared.retryAfterMs;
    }
    if (!same) this.listener.onTransition(from, to, shared.reason);
  }

  /** Starts from a state carried across processes or cold starts. */
  restore(saved: RestoredCircuit): void {
    this.level = Math.min(this.o.maxBackoffLevel, saved.backoffLevel);
    this.consecutive.count = saved.consecutiveFailures;
    this.closedAt = saved.closedAt;
    this.current = saved.state === 'half_open' ? 'open' : saved.state;
    this.openedAt = saved.openedAt;
    this.nextAttemptAt = saved.nextAttemptAt;
    if (
      saved.state === 'half_open' ||
      (saved.state === 'open' && Number.isNaN(saved.nextAttemptAt))
    ) {
      // Probes in flight elsewhere are lost: probe again at once.
      this.nextAttemptAt = this.o.clock.now();
      if (Number.isNaN(this.openedAt)) this.openedAt = this.nextAttemptAt;
    }
  }

  /** The backoff level as decayed by `now`. */
  levelAt(now: number): number {
    return effectiveLevel(this.o, this.current, this.level, this.closedAt, now);
  }

  private transition(to: CircuitState, reason: string, now: number, openForMs?: number): void {
    const from = this.current;
    this.enter(to, now, openForMs);
    this.listener.onTransition(from, to, reason);
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
        this.nextAttemptAt = now + (openForMs ?? openTimeMs(this.o, this.level));
        break;
      case 'closed':
        this.rates.clear();
        this.consecutive.clear();
        this.closedAt = now;
        if (this.o.backoffResetAfterMs === 0) this.level = 0;
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
}
