import { CALL, CountWindow, FAILURE, SLOW, TimeWindow, type OutcomeWindow } from './outcome-window';
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
 * Opens when the share of calls carrying `flag` (FAILURE or SLOW) in the window reaches
 * `thresholdPercent`, once the window holds `minimumCalls`. A success can open the circuit too:
 * it may be the call that reaches `minimumCalls`.
 */
export class OutcomeRate {
  constructor(
    private readonly label: string,
    private readonly flag: number,
    private readonly thresholdPercent: number,
    private readonly minimumCalls: number,
  ) {}

  check(window: OutcomeWindow): string | undefined {
    const calls = window.calls;
    if (calls < this.minimumCalls) return undefined;
    const matching = this.flag === FAILURE ? window.failures : window.slowCalls;
    if (matching * 100 < this.thresholdPercent * calls) return undefined;
    return `${this.label} ${formatPercent((matching * 100) / calls)} >= ${this.thresholdPercent}% over ${calls} calls`;
  }
}

/**
 * The failure-rate and slow-call-rate rules over the window they own. The window is recorded
 * even when no rate rule is set, because snapshots report its counts.
 */
export class WindowRates implements TripRule {
  private readonly outcomes: OutcomeWindow;
  private readonly timed: boolean;
  /**
   * Successes not yet written to a count window that no rule reads on the call path (no rate
   * rule): they are written, in order, before the next outcome or read.
   */
  private pending = 0;
  private readonly deferSuccesses: boolean;
  private readonly failureRate: OutcomeRate | undefined;
  private readonly slowRate: OutcomeRate | undefined;

  constructor(options: ResolvedBreakerOptions) {
    const spec = options.window;
    this.outcomes =
      spec.type === 'count'
        ? new CountWindow(spec.size)
        : new TimeWindow(spec.durationMs, spec.buckets);
    this.timed = spec.type === 'time';
    this.failureRate =
      options.failureRateThreshold > 0
        ? new OutcomeRate(
            'failure rate',
            FAILURE,
            options.failureRateThreshold,
            options.minimumCalls,
          )
        : undefined;
    this.slowRate =
      options.slowCallRateThreshold > 0
        ? new OutcomeRate(
            'slow-call rate',
            SLOW,
            options.slowCallRateThreshold,
            options.minimumCalls,
          )
        : undefined;
    this.deferSuccesses =
      spec.type === 'count' && this.failureRate === undefined && this.slowRate === undefined;
  }

  /** Whether recording needs the time (a time window). */
  get needsTime(): boolean {
    return this.timed;
  }

  /** The window, with every outcome recorded so far. */
  get window(): OutcomeWindow {
    if (this.pending > 0) this.flush();
    return this.outcomes;
  }

  record(flags: number, now: number): string | undefined {
    if (this.pending > 0) this.flush();
    const window = this.outcomes;
    window.record(flags | CALL, now);
    if (this.failureRate !== undefined) {
      const reason = this.failureRate.check(window);
      if (reason !== undefined) return reason;
    }
    return this.slowRate?.check(window);
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
    const window = this.window;
    window.refresh(now);
    return this.failureRate?.check(window) ?? this.slowRate?.check(window);
  }

  clear(): void {
    this.pending = 0;
    this.outcomes.clear();
  }

  private flush(): void {
    (this.outcomes as CountWindow).recordRepeated(CALL, this.pending);
    this.pending = 0;
  }
}

/** A percentage with at most one decimal, for reasons: `66.7%`. */
export function formatPercent(value: number): string {
  return `${Math.round(value * 10) / 10}%`;
}
