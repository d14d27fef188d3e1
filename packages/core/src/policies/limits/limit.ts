/**
 * A concurrency limit algorithm: it reads one sample per finished call (its latency, how many
 * calls were in flight when it started, whether it was dropped) and answers the new limit.
 * The algorithms follow the published semantics of Netflix concurrency-limits.
 */
export interface LimitAlgorithm {
  /** Which algorithm this is. */
  readonly name: LimitAlgorithmName;
  /** The current limit: a whole number from the algorithm's minimum to its maximum. */
  readonly limit: number;
  /**
   * Records one finished call and returns the new limit.
   * @param rttMs - the call's latency in milliseconds
   * @param inFlight - calls in flight when the call started, itself included
   * @param dropped - the call failed or timed out (a sign of overload)
   */
  update(rttMs: number, inFlight: number, dropped: boolean): number;
  /** The algorithm's latency estimates, for snapshots (milliseconds). */
  estimates(): LimitEstimates;
}

/** The names of the built-in algorithms. */
export type LimitAlgorithmName = 'gradient2' | 'vegas' | 'aimd';

/** Latency estimates an algorithm keeps, in milliseconds (0 while unknown). */
export interface LimitEstimates {
  /** The latency the algorithm takes as "no queueing": Vegas's minimum, Gradient2's long-term average. */
  noLoadRttMs: number;
  /** The latency of the last sample. */
  lastRttMs: number;
}

/** Bounds shared by every algorithm. */
export interface LimitBounds {
  /** The limit before any sample. */
  initialLimit: number;
  /** The limit never goes below this. */
  minLimit: number;
  /** The limit never goes above this. */
  maxLimit: number;
}

/** Clamps `value` into `[min, max]`. @internal */
export function clamp(value: number, min: number, max: number): number {
  return value < min ? min : value > max ? max : value;
}
