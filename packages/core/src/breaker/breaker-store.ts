import type { CircuitState } from './circuit-state';
import type { ResolvedBreakerOptions, SHARED_SETTING_KEYS } from './options';

/**
 * Where a breaker decides: `'shared'` follows the circuit every process shares through the store;
 * `'local'` trips on the process's own counts only.
 */
export type BreakerScope = 'shared' | 'local';

/**
 * Where circuit-breaker state lives. {@link MemoryBreakerStore} (the default) keeps it inside each
 * breaker; a shared store (`RedisBreakerStore` of `@breakwater/redis`) lets every process that
 * uses the same breaker name follow one circuit.
 *
 * A breaker calls {@link BreakerStore.connect} once, at construction, and only in `'shared'`
 * scope. A store that returns `undefined` adds nothing to the breaker: no allocation, no call, no
 * branch taken on the call path.
 */
export interface BreakerStore {
  /** Whether the store shares state with other processes (the default scope is then `'shared'`). */
  readonly shared: boolean;
  /**
   * Connects a breaker in shared scope. Returns the link the breaker reports through, or
   * `undefined` when the breaker keeps its state alone.
   */
  connect(breaker: SharedBreaker): BreakerLink | undefined;
}

/** The breaker as a shared store sees it. */
export interface SharedBreaker {
  /** The breaker's name: every process that uses this name shares one circuit. */
  readonly name: string;
  /** The breaker's resolved options, for decisions taken by the store on cluster totals. */
  readonly settings: SharedBreakerSettings;
  /**
   * Follows the shared circuit: called by the store with the cluster's state (after a
   * transition anywhere, or on resync). Changes of state emit `stateChange` as usual.
   */
  follow(state: SharedCircuitState): void;
  /**
   * The store just became unavailable: the breaker applies its own rules to the counts it has
   * now (a trip it left to the store opens the circuit at once, rather than at its next
   * failure). Call it whenever the link turns unavailable.
   */
  reconsider(): void;
}

/**
 * The part of a breaker's resolved options a shared store decides with, as numbers (0 means
 * "off" where a rule can be off): `failureThreshold`, `failureRateThreshold`,
 * `slowCallRateThreshold`, `minimumCalls`, `window`, `openDurationMs`, `backoffMultiplier` (1 when
 * backoff is off), `backoffMaxMs`, `backoffResetAfterMs` (0: the level returns to zero as soon as
 * the circuit closes), `maxBackoffLevel`, `halfOpenMaxConcurrent`, `halfOpenSuccessThreshold`,
 * `halfOpenMaxWaitMs` (0 when off).
 */
export type SharedBreakerSettings = Readonly<
  Pick<ResolvedBreakerOptions, (typeof SHARED_SETTING_KEYS)[number]>
>;

/**
 * The shared circuit at one moment. Times are relative (milliseconds ago or from now), so hosts
 * whose clocks disagree still agree on the circuit.
 */
export interface SharedCircuitState {
  /** Grows at every shared transition; a transition decided from an older one is refused. */
  readonly generation: number;
  readonly state: CircuitState;
  /** Milliseconds until a probe is admitted (open only; 0 otherwise). */
  readonly retryAfterMs: number;
  /** Milliseconds since the circuit opened, or null when it is not open. */
  readonly openedAgoMs: number | null;
  /** Milliseconds since the circuit last closed, or null when unknown or reset. */
  readonly closedAgoMs: number | null;
  readonly backoffLevel: number;
  /** Why the last transition happened, e.g. `failure rate 60% >= 50% over 20 calls (cluster)`. */
  readonly reason: string;
}

/** The answer to a probe-permit claim. */
export type ProbeClaim =
  /** The shared circuit admitted the probe: settle it through the link. */
  | 'granted'
  /** Every shared permit is taken (or the circuit is not half-open): reject the call. */
  | 'refused'
  /** The store could not answer: the breaker admits the probe on its own state. */
  | 'local';

/** How a probe ended. */
export type ProbeOutcome = 'success' | 'failure' | 'ignore';

/** Operator actions that apply to every process. */
export type SharedCommand = 'forced_open' | 'open' | 'closed' | 'disabled';

/**
 * What a breaker in shared scope reports through. Every method returns at once: I/O happens in
 * the background, and a store failure never reaches the call path.
 */
export interface BreakerLink {
  /**
   * Whether the store is reachable now. While it is not, the breaker decides on its own counts
   * (it trips, probes and closes by itself) until the store is back and resyncs it.
   */
  readonly available: boolean;
  /** Counts the outcome of one call admitted while closed (batched, flushed in the background). */
  record(failure: boolean, slow: boolean): void;
  /** The breaker's own counts could open the circuit: report the pending counts now. */
  flushSoon(): void;
  /** Whether the breaker may ask for a probe permit now (false right after a refusal). */
  mayClaim(): boolean;
  /** Claims probes still in flight or parked for this breaker (they count against its permits). */
  readonly claiming: number;
  /**
   * Claims a shared probe permit for the call holding `ticket`. Resolves, never rejects; bounded
   * in time by the store.
   */
  claimProbe(ticket: number): Promise<ProbeClaim>;
  /**
   * Claims a permit in the background and parks it for a later {@link BreakerLink.takeParked}
   * (how a synchronous `tryAcquire()` gets a shared probe).
   */
  claimAhead(): void;
  /** Binds a parked permit to `ticket`; returns false when none is parked. */
  takeParked(ticket: number): boolean;
  /** Settles the shared permit held by `ticket`; returns false when `ticket` holds none. */
  settleProbe(ticket: number, outcome: ProbeOutcome): boolean;
  /** Applies an operator action to every process (`openForMs` for `'open'`). */
  command(state: SharedCommand, openForMs: number, reason: string): void;
}

/**
 * The default store: each breaker keeps its own state in memory, in its own process. It adds
 * nothing to a breaker (its `connect` returns `undefined`).
 *
 * @example
 * ```ts
 * const breaker = new CircuitBreaker({ name: 'plant-id', store: new MemoryBreakerStore() });
 * ```
 */
export class MemoryBreakerStore implements BreakerStore {
  /** State stays in the process. */
  readonly shared = false;

  /** Returns `undefined`: the breaker keeps its state alone. */
  connect(): undefined {
    return undefined;
  }
}
