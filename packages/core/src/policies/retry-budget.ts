import { type Clock, systemClock } from '../time/clock';
import { type Duration, durationOption } from '../time/duration';
import { ConfigError } from '../errors';
import { checkClock, checkKnownKeys, checkObject, numberOption } from '../internal/validate';
import { brand } from '../brand';

/** Options of {@link RetryBudget}. */
export interface RetryBudgetOptions {
  /** Retries allowed per first attempt in the window (0.2 = one retry for every five calls). @defaultValue 0.2 */
  ratio?: number;
  /** Retries allowed per second regardless of traffic, so quiet services can still retry. @defaultValue 10 */
  minPerSecond?: number;
  /** How far back first attempts and retries are counted (`'10s'` also accepted). @defaultValue 10 000 */
  windowMs?: Duration;
  /** Time source; inject one in tests. @defaultValue `systemClock` */
  clock?: Clock;
}

const OWNER = 'RetryBudget';
const BUCKETS = 10;
const KNOWN = ['ratio', 'minPerSecond', 'windowMs', 'clock'] as const;
/** Absorbs rounding in `ratio × calls` so that 0.2 × 5 allows exactly one retry. */
const EPSILON = 1e-9;

/**
 * Caps retries at a share of recent calls, so an outage does not multiply the load on the
 * service that is already failing.
 *
 * The window is split into ten buckets. Each bucket, once started, credits
 * `minPerSecond × windowMs / 10 000` retries; each first attempt credits `ratio` retries; each
 * retry spends one. A retry is allowed while the credits of the buckets in the window cover it.
 * Credits never outlive their window, and every retry is paid for by a credit, so over any run
 * the retries sent are at most `ratio × first attempts + minPerSecond × seconds started`
 * (seconds counted in buckets of `windowMs / 10`). Memory is constant and each call costs O(1).
 *
 * Share one budget between several {@link retry} policies to cap their retries together.
 *
 * @throws ConfigError at construction when an option is invalid
 * @example
 * ```ts
 * const budget = new RetryBudget({ ratio: 0.1, minPerSecond: 5 });
 * const policy = retry({ maxAttempts: 4, budget });
 * ```
 */
export class RetryBudget {
  /** Retries allowed per first attempt. */
  readonly ratio: number;
  /** Retries allowed per second regardless of traffic. */
  readonly minPerSecond: number;
  /** Length of the window in milliseconds. */
  readonly windowMs: number;
  private readonly bucketMs: number;
  private readonly floorPerBucket: number;
  private readonly clock: Clock;
  private readonly origin: number;
  private readonly requests = new Float64Array(BUCKETS);
  private readonly retries = new Float64Array(BUCKETS);
  private epoch = 0;
  private requestsInWindow = 0;
  private retriesInWindow = 0;

  constructor(options: RetryBudgetOptions = {}) {
    checkObject(OWNER, 'options', options);
    checkKnownKeys(OWNER, '', options, KNOWN);
    this.ratio =
      options.ratio === undefined ? 0.2 : numberOption(OWNER, 'ratio', options.ratio, 0, 1_000);
    this.minPerSecond =
      options.minPerSecond === undefined
        ? 10
        : numberOption(OWNER, 'minPerSecond', options.minPerSecond, 0, 1e9);
    this.windowMs =
      options.windowMs === undefined
        ? 10_000
        : durationOption(OWNER, 'windowMs', options.windowMs, { allowZero: false });
    if (this.windowMs < BUCKETS) {
      throw new ConfigError(OWNER, 'windowMs', options.windowMs, `must be at least ${BUCKETS} ms`);
    }
    this.clock = options.clock === undefined ? systemClock : checkClock(OWNER, options.clock);
    this.bucketMs = this.windowMs / BUCKETS;
    this.floorPerBucket = (this.minPerSecond * this.bucketMs) / 1_000;
    this.origin = this.clock.now();
  }

  /** Counts a first attempt (a call, not a retry); {@link retry} calls it once per call. */
  recordRequest(): void {
    this.advance();
    this.requests[this.epoch % BUCKETS]! += 1;
    this.requestsInWindow += 1;
  }

  /**
   * Spends one retry if the budget allows it.
   * @returns whether the retry may be sent
   */
  tryRetry(): boolean {
    this.advance();
    if (this.retriesInWindow + 1 > this.allowance() + EPSILON) return false;
    this.retries[this.epoch % BUCKETS]! += 1;
    this.retriesInWindow += 1;
    return true;
  }

  /** Retries that would be allowed now. */
  get available(): number {
    this.advance();
    return Math.max(0, Math.floor(this.allowance() + EPSILON - this.retriesInWindow));
  }

  private allowance(): number {
    const started = this.epoch + 1 < BUCKETS ? this.epoch + 1 : BUCKETS;
    return this.ratio * this.requestsInWindow + this.floorPerBucket * started;
  }

  /** Moves the window to the current bucket, dropping the buckets that fell out of it. */
  private advance(): void {
    const epoch = Math.floor((this.clock.now() - this.origin) / this.bucketMs);
    if (epoch <= this.epoch) return; // same bucket, or a clock that went back
    if (epoch - this.epoch >= BUCKETS) {
      this.requests.fill(0);
      this.retries.fill(0);
      this.requestsInWindow = 0;
      this.retriesInWindow = 0;
    } else {
      for (let e = this.epoch + 1; e <= epoch; e++) {
        const index = e % BUCKETS;
        this.requestsInWindow -= this.requests[index]!;
        this.retriesInWindow -= this.retries[index]!;
        this.requests[index] = 0;
        this.retries[index] = 0;
      }
    }
    this.epoch = epoch;
  }
}
brand(RetryBudget, 'RetryBudget');
