import {
  isTimeoutError,
  type CircuitBreaker,
  type CircuitState,
  type RateLimiter,
} from '@breakwater/core';
import { Durations } from './durations';

/** How a call ended, as the `outcome` label says. */
export type CallOutcome = 'success' | 'failure' | 'timeout' | 'rejected' | 'ignored';

export const AUTOMATIC_TRANSITIONS: readonly [CircuitState, CircuitState][] = [
  ['closed', 'open'],
  ['open', 'half_open'],
  ['half_open', 'open'],
  ['half_open', 'closed'],
];

/** Counts and durations of one breaker; written by its listeners, read at scrape time. */
export class BreakerSeries {
  success = 0;
  failure = 0;
  timeout = 0;
  rejected = 0;
  ignored = 0;
  readonly successDurations: Durations;
  readonly failureDurations: Durations;
  readonly timeoutDurations: Durations;
  /** Transition counts by `from` then `to`. */
  readonly transitions = new Map<CircuitState, Map<CircuitState, number>>();
  readonly off: () => void;

  constructor(
    readonly breaker: CircuitBreaker,
    bounds: readonly number[],
    private readonly durations: boolean,
    exemplars: (() => unknown) | undefined,
  ) {
    this.successDurations = new Durations(bounds);
    this.failureDurations = new Durations(bounds);
    this.timeoutDurations = new Durations(bounds);
    for (const [from, to] of AUTOMATIC_TRANSITIONS) this.countTransition(from, to, 0);
    const onStateChange = breaker.on('stateChange', ({ from, to }) =>
      this.countTransition(from, to, 1),
    );
    if (!durations) {
      this.off = onStateChange;
      return;
    }
    const observe =
      exemplars === undefined
        ? (d: Durations, durationMs: number): void => {
            d.observe(durationMs);
          }
        : (d: Durations, durationMs: number): void => {
            const bucket = d.observe(durationMs);
            let labelSet: unknown;
            try {
              labelSet = exemplars();
            } catch {
              return; // A failing hook costs the exemplar, never the count.
            }
            d.exemplify(bucket, durationMs, labelSet);
          };
    const offs = [
      onStateChange,
      breaker.on('success', ({ durationMs }) => {
        this.success++;
        observe(this.successDurations, durationMs);
      }),
      breaker.on('failure', ({ error, durationMs }) => {
        if (isTimeoutError(error)) {
          this.timeout++;
          observe(this.timeoutDurations, durationMs);
        } else {
          this.failure++;
          observe(this.failureDurations, durationMs);
        }
      }),
      breaker.on('rejected', () => {
        this.rejected++;
      }),
      breaker.on('ignored', () => {
        this.ignored++;
      }),
    ];
    this.off = () => {
      for (const off of offs) off();
    };
  }

  /** Calls by outcome: counted by the listeners, or read from the breaker's totals. */
  counts(): Record<CallOutcome, number> {
    if (this.durations) {
      const { success, failure, timeout, rejected, ignored } = this;
      return { success, failure, timeout, rejected, ignored };
    }
    const t = this.breaker.totals();
    return {
      success: t.successes,
      failure: t.failures - t.timeouts,
      timeout: t.timeouts,
      rejected: t.rejected,
      ignored: t.ignored,
    };
  }

  private countTransition(from: CircuitState, to: CircuitState, n: number): void {
    let byTarget = this.transitions.get(from);
    if (byTarget === undefined)
      this.transitions.set(from, (byTarget = new Map<CircuitState, number>()));
    byTarget.set(to, (byTarget.get(to) ?? 0) + n);
  }
}

/** Decision and store-error counts of one limiter. */
export class LimiterSeries {
  allowed = 0;
  refused = 0;
  storeErrors = 0;
  readonly off: () => void;

  constructor(readonly limiter: RateLimiter) {
    const offs = [
      limiter.on('decision', ({ decision }) => {
        if (decision.allowed) this.allowed++;
        else this.refused++;
      }),
      limiter.on('storeFailure', () => {
        this.storeErrors++;
      }),
    ];
    this.off = () => {
      for (const off of offs) off();
    };
  }
}
