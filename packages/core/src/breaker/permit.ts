import { FAILED, IGNORED, SUCCESS, type Outcome, type Ticket } from './state-machine';

/**
 * One admitted call of {@link CircuitBreaker.tryAcquire}. Settle it exactly once; later calls are
 * ignored.
 */
export interface BreakerPermit {
  /** The call succeeded. */
  success(): void;
  /**
   * The call failed (an `error` the breaker's `isFailure` rejects is ignored instead; an
   * `isFailure` that throws counts the failure).
   */
  failure(error?: unknown): void;
  /** The call neither succeeded nor failed (e.g. the client went away): frees the permit. */
  ignore(): void;
}

/** What a permit settles against: the breaker's call path. */
export interface PermitHost {
  settle(ticket: Ticket, outcome: Outcome, start: number, error: unknown): void;
  /** FAILED or IGNORED for `error`, by `isFailure` (a predicate that throws means FAILED). */
  classify(error: unknown): Outcome;
}

/** A permit: settles once, whatever its caller does afterwards. */
export class Permit implements BreakerPermit {
  private settled = false;

  constructor(
    private readonly host: PermitHost,
    private readonly ticket: Ticket,
    private readonly start: number,
  ) {}

  success(): void {
    if (this.settled) return;
    this.settled = true;
    this.host.settle(this.ticket, SUCCESS, this.start, undefined);
  }

  failure(error?: unknown): void {
    if (this.settled) return;
    this.settled = true;
    const outcome = arguments.length === 0 ? FAILED : this.host.classify(error);
    this.host.settle(this.ticket, outcome, this.start, error);
  }

  ignore(): void {
    if (this.settled) return;
    this.settled = true;
    this.host.settle(this.ticket, IGNORED, this.start, undefined);
  }
}
