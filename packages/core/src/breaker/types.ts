import type { CircuitState } from './circuit-state';

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
