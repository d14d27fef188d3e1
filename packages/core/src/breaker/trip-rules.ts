import { CALL, CountWindow, FAILURE, TimeWindow, type OutcomeWindow } from './outcome-window';
import type { ResolvedBreakerOptions } from './options';

/**
 * One rule that can open a closed circuit. `record` sees each outcome of a call admitted while
 * closed (flags of `outcome-window.ts`) and returns why the circuit should open, or undefined.
 */
export interface TripRule {
  record(flags: number, now: number): string | undefined;
  clear(): void;
}

/** Opens after `threshold` failures in a row. */
export class ConsecutiveFailures implements TripRule {
  count = 0;

  constructor(private readonly threshold: number) {}

  record(flags: number): string | undefined {
    if ((flags & FAILURE) === 0) {
      this.count = 0;
      return undefined;
    }
    return ++this.count >= this.threshold ? `${this.count} consecutive failures` : undefined;
  }

  /** Why the count as it is now should open the circuit, or undefined. */
  check(): string | undefined {
    return this.count >= this.threshold ? `${this.count} consecutive failures` : undefined;
  }

  clear(): void {
    this.count = 0;
  }
}

/**
 * Why the share of `matching` calls in a window of `calls` opens the circuit (it reaches
 * `thresholdPercent` once the window holds `minimumCalls`), or undefined. A success can open the
 * circuit too: it may be the call that reaches `minimumCalls`.
 */
function rateReason(
  label: string,
  matching: number,
  calls: number,
  thresholdPercent: number,
  minimumCalls: number,
): string | undefined {
  if (thresholdPercent === 0 || calls < minimumCalls) return undefined;
  if (matching * 100 < thresholdPercent * calls) return undefined;
  return `${label} ${formatPercent((matching * 100) / calls)} >= ${thresholdPercent}% over ${calls} calls`;
}

/**
 * The failure-rate and slow-call-rate rules over the window they own. The window is recorded
 * even when no rate rule is set, because snapshots report its counts.
 */
export class WindowRates implements TripRule {
  /** Created at the first outcome: an idle breaker holds no window. */
  private outcomes: OutcomeWindow | undefined = undefined;
  private readonly timed: boolean;
  /**
   * Successes not yet written to a count window that no rule reads on the call path (no rate
   * rule): they are written, in order, before the next outcome or read.
   */
  private pending = 0;
  private readonly deferSuccesses: boolean;

  /** Reads the rules' percentages and `minimumCalls` from `o` (percentages: 0 is off). */
  constructor(private readonly o: ResolvedBreakerOptions) {
    this.timed = o.window.type === 'time';
    this.deferSuccesses =
      o.window.type === 'count' && o.failureRateThreshold === 0 && o.slowCallRateThreshold === 0;
  }

  /** Whether recording needs the time (a time window). */
  get needsTime(): boolean {
    return this.timed;
  }

  /** The window, with every outcome recorded so far. */
  get window(): OutcomeWindow {
    if (this.pending > 0) this.flush();
    return this.outcomes ?? EMPTY_WINDOW;
  }

  record(flags: number, now: number): string | undefined {
    if (this.pending > 0) this.flush();
    const outcomes = (this.outcomes ??= createWindow(this.o.window));
    outcomes.record(flags | CALL, now);
    return this.reason(outcomes);
  }

  /** A plain success (neither failed nor slow). */
  recordSuccess(now: number): string | undefined {
    if (this.deferSuccesses) {
      this.pending++;
      return undefined;
    }
    return this.record(0, now);
  }

  /** Why the window as it is now should open the circuit, or undefined. */
  check(now: number): string | undefined {
    if (this.pending > 0) this.flush();
    const outcomes = this.outcomes;
    if (outcomes === undefined) return undefined;
    outcomes.refresh(now);
    return this.reason(outcomes);
  }

  private reason(w: OutcomeWindow): string | undefined {
    const o = this.o;
    return (
      rateReason('failure rate', w.failures, w.calls, o.failureRateThreshold, o.minimumCalls) ??
      rateReason('slow-call rate', w.slowCalls, w.calls, o.slowCallRateThreshold, o.minimumCalls)
    );
  }

  clear(): void {
    this.pending = 0;
    this.outcomes?.clear();
  }

  /** Writes the deferred successes (only a count window defers them). */
  private flush(): void {
    const outcomes = (this.outcomes ??= createWindow(this.o.window)) as CountWindow;
    outcomes.recordRepeated(CALL, this.pending);
    this.pending = 0;
  }
}

/** What an idle breaker's window reports: nothing recorded. */
const EMPTY_WINDOW: OutcomeWindow = Object.freeze({
  calls: 0,
  failures: 0,
  slowCalls: 0,
  record() {
    throw new Error('the empty window records nothing');
  },
  refresh() {},
  clear() {},
});

function createWindow(spec: ResolvedBreakerOptions['window']): OutcomeWindow {
  return spec.type === 'count'
    ? new CountWindow(spec.size)
    : new TimeWindow(spec.durationMs, spec.buckets);
}

/** A percentage with at most one decimal, for reasons: `66.7%`. */
export function formatPercent(value: number): string {
  return `${Math.round(value * 10) / 10}%`;
}
