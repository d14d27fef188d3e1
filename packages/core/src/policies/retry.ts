import { isBranded } from '../brand';
import { type Backoff, exponential } from './backoff';
import { MAX_TIMER_MS } from '../time/duration';
import { isBulkheadFullError, isCircuitOpenError, isRateLimitError } from '../errors';
import { Listeners } from '../internal/listeners';
import { neverAbortedSignal } from '../internal/never-aborted';
import {
  checkKnownKeys,
  checkObject,
  functionOption,
  integerOption,
  nestedOption,
} from '../internal/validate';
import type { Policy } from '../policy';
import { RetryBudget, type RetryBudgetOptions } from './retry-budget';

/** How an attempt ended: it threw `error`, or it resolved to `result`. */
export type RetryOutcome = { readonly error: unknown } | { readonly result: unknown };

/** Passed to `onRetry` before the delay that precedes a retry. */
export type RetryEvent = RetryOutcome & {
  /** Number of the attempt that just failed (1 for the first call). */
  readonly attempt: number;
  /** Delay before the next attempt, in whole milliseconds. */
  readonly delayMs: number;
};

/** Why {@link retry} stopped retrying an outcome it would have retried. */
export type GiveUpReason = 'maxAttempts' | 'budget' | 'aborted';

/** Passed to `onGiveUp` when a retryable outcome is not retried. */
export type GiveUpEvent = RetryOutcome & {
  /** Attempts made, the first call included. */
  readonly attempts: number;
  /** `'maxAttempts'`, `'budget'` (the retry budget is spent) or `'aborted'` (the caller's signal). */
  readonly reason: GiveUpReason;
};

/** Options of {@link retry}. */
export interface RetryOptions {
  /** Most attempts per call, the first one included (1 means no retry). @defaultValue 3 */
  maxAttempts?: number;
  /** Delay before each retry. @defaultValue `exponential()` (100 ms doubling to 30 s, full jitter) */
  backoff?: Backoff;
  /**
   * Whether an outcome is retried. Replaces the default entirely; compose with
   * {@link defaultRetryOn} to keep it. A call whose own signal was aborted is never retried.
   * @defaultValue {@link defaultRetryOn}: every error except a `CircuitOpenError`,
   * `RateLimitError`, `BulkheadFullError` or an `AbortError`; never a result
   */
  retryOn?: (outcome: RetryOutcome, attempt: number) => boolean;
  /**
   * Caps retries at a share of recent calls: a {@link RetryBudget} (shareable between policies)
   * or its options. @defaultValue off
   */
  budget?: RetryBudget | RetryBudgetOptions;
  /** Called before each retry's delay; errors it throws are ignored. @defaultValue none */
  onRetry?: (event: RetryEvent) => void;
  /** Called when a retryable outcome is not retried; errors it throws are ignored. @defaultValue none */
  onGiveUp?: (event: GiveUpEvent) => void;
}

/** Events of a {@link RetryPolicy}, for metrics and tracing (see {@link RetryPolicy.on}). */
export interface RetryPolicyEvents {
  /** An attempt failed and another follows after `delayMs`. */
  retry: RetryEvent;
  /** A retryable outcome was not retried (attempts or budget spent, or the caller aborted). */
  giveUp: GiveUpEvent;
}

const OWNER = 'retry';
const KNOWN = ['maxAttempts', 'backoff', 'retryOn', 'budget', 'onRetry', 'onGiveUp'] as const;

/**
 * The default `retryOn`: retries every error except a `CircuitOpenError`, `RateLimitError`,
 * `BulkheadFullError` or an error named `AbortError`, and never retries a result.
 *
 * @example
 * ```ts
 * // Also retry HTTP 503 responses:
 * retry({ retryOn: (o) => ('result' in o ? (o.result as Response).status === 503 : defaultRetryOn(o)) });
 * ```
 */
export function defaultRetryOn(outcome: RetryOutcome): boolean {
  if (!('error' in outcome)) return false;
  const error = outcome.error;
  return !(
    isCircuitOpenError(error) ||
    isRateLimitError(error) ||
    isBulkheadFullError(error) ||
    (typeof error === 'object' &&
      error !== null &&
      (error as { name?: unknown }).name === 'AbortError')
  );
}

/**
 * Runs a call again when it fails, with a delay between attempts.
 *
 * Rethrows the last attempt's error unchanged (the same object). When the last attempt resolved
 * to a result that `retryOn` wanted retried, that result is returned. A delay waits for a timer
 * only when a retry happens; aborting the caller's signal during a delay rejects at once with the
 * signal's reason.
 */
export class RetryPolicy implements Policy {
  /** What this policy is, for instrumentation. */
  readonly kind = 'retry' as const;
  /** Most attempts per call, the first one included. */
  readonly maxAttempts: number;
  /** The budget shared by this policy's calls, if one is configured. */
  readonly budget: RetryBudget | undefined;
  private readonly backoff: Backoff;
  private readonly retryOn: ((outcome: RetryOutcome, attempt: number) => boolean) | undefined;
  private readonly onRetry: ((event: RetryEvent) => void) | undefined;
  private readonly onGiveUp: ((event: GiveUpEvent) => void) | undefined;
  private listeners: Listeners<RetryPolicyEvents> | undefined = undefined;

  /** @throws ConfigError when an option is invalid */
  constructor(options: RetryOptions = {}) {
    checkObject(OWNER, 'options', options);
    checkKnownKeys(OWNER, '', options, KNOWN);
    this.maxAttempts =
      options.maxAttempts === undefined
        ? 3
        : integerOption(OWNER, 'maxAttempts', options.maxAttempts, 1);
    this.backoff =
      options.backoff === undefined
        ? exponential()
        : functionOption<Backoff>(OWNER, 'backoff', options.backoff);
    this.retryOn =
      options.retryOn === undefined
        ? undefined
        : functionOption<(outcome: RetryOutcome, attempt: number) => boolean>(
            OWNER,
            'retryOn',
            options.retryOn,
          );
    this.onRetry =
      options.onRetry === undefined
        ? undefined
        : functionOption<(event: RetryEvent) => void>(OWNER, 'onRetry', options.onRetry);
    this.onGiveUp =
      options.onGiveUp === undefined
        ? undefined
        : functionOption<(event: GiveUpEvent) => void>(OWNER, 'onGiveUp', options.onGiveUp);
    if (options.budget === undefined) {
      this.budget = undefined;
    } else if (isBranded(OWNER, 'budget', options.budget, 'RetryBudget')) {
      this.budget = options.budget;
    } else {
      checkObject(OWNER, 'budget', options.budget);
      const budget = options.budget;
      this.budget = nestedOption(OWNER, 'budget', () => new RetryBudget(budget));
    }
  }

  /**
   * Subscribes to an event; returns the function that unsubscribes. A listener that throws never
   * affects a call; without listeners no event is built.
   * @example
   * ```ts
   * policy.on('retry', ({ attempt, delayMs }) => log.info(`retry ${attempt} in ${delayMs} ms`));
   * ```
   */
  on<K extends keyof RetryPolicyEvents>(
    event: K,
    listener: (event: RetryPolicyEvents[K]) => void,
  ): () => void {
    this.listeners ??= new Listeners<RetryPolicyEvents>();
    return this.listeners.add(event, listener);
  }

  /**
   * Runs `fn`, retrying as configured.
   * @throws the last attempt's error, or the signal's reason when the caller aborts a delay
   */
  async execute<T>(
    fn: (signal: AbortSignal) => PromiseLike<T> | T,
    signal?: AbortSignal,
  ): Promise<T> {
    const callSignal = signal ?? neverAbortedSignal;
    if (this.budget !== undefined) this.budget.recordRequest();
    let previousDelayMs = 0;
    for (let attempt = 1; ; attempt++) {
      let failed = false;
      let value: unknown;
      try {
        value = await fn(callSignal);
        // Fast path: without retryOn a result is never retried, so no outcome is built.
        if (this.retryOn === undefined) return value as T;
      } catch (error) {
        failed = true;
        value = error;
      }
      const outcome: RetryOutcome = failed ? { error: value } : { result: value };
      if (callSignal.aborted) return settle<T>(outcome);
      if (
        !(this.retryOn === undefined ? defaultRetryOn(outcome) : this.retryOn(outcome, attempt))
      ) {
        return settle<T>(outcome);
      }
      if (attempt >= this.maxAttempts) {
        this.giveUp(outcome, attempt, 'maxAttempts');
        return settle<T>(outcome);
      }
      if (this.budget !== undefined && !this.budget.tryRetry()) {
        this.giveUp(outcome, attempt, 'budget');
        return settle<T>(outcome);
      }
      const delayMs = sanitize(this.backoff(attempt, previousDelayMs, failed ? value : undefined));
      if (this.onRetry !== undefined || this.listeners?.has('retry') === true) {
        const event: RetryEvent = { ...outcome, attempt, delayMs };
        try {
          this.onRetry?.(event);
        } catch {
          // A hook must not change the outcome of the call.
        }
        this.listeners?.emit('retry', event);
      }
      if (delayMs > 0) {
        try {
          await sleep(delayMs, callSignal);
        } catch (reason) {
          this.giveUp(outcome, attempt, 'aborted');
          throw reason;
        }
      } else if (callSignal.aborted) {
        this.giveUp(outcome, attempt, 'aborted');
        throw callSignal.reason;
      }
      previousDelayMs = delayMs;
    }
  }

  private giveUp(outcome: RetryOutcome, attempts: number, reason: GiveUpReason): void {
    if (this.onGiveUp === undefined && this.listeners?.has('giveUp') !== true) return;
    const event: GiveUpEvent = { ...outcome, attempts, reason };
    try {
      this.onGiveUp?.(event);
    } catch {
      // A hook must not change the outcome of the call.
    }
    this.listeners?.emit('giveUp', event);
  }
}

/** Returns the outcome's result or throws its error unchanged. */
function settle<T>(outcome: RetryOutcome): T {
  if ('error' in outcome) throw outcome.error;
  return outcome.result as T;
}

/** A whole number of milliseconds (what a timer honours) from 0 to the longest timer delay. */
function sanitize(delayMs: number): number {
  if (!(delayMs > 0)) return 0; // negative, NaN
  return delayMs < MAX_TIMER_MS ? Math.round(delayMs) : MAX_TIMER_MS;
}

/** Waits `ms`, rejecting at once with the signal's reason (and clearing the timer) on abort. */
function sleep(ms: number, signal: AbortSignal): Promise<void> {
  if (signal === neverAbortedSignal) {
    return new Promise((resolve) => setTimeout(resolve, ms));
  }
  return new Promise((resolve, reject) => {
    if (signal.aborted) {
      reject(signal.reason);
      return;
    }
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(signal.reason);
    };
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

/**
 * Creates a {@link RetryPolicy}.
 *
 * @throws ConfigError when an option is invalid
 * @example
 * ```ts
 * const policy = retry({
 *   maxAttempts: 4,
 *   backoff: exponential({ initialMs: 200, maxMs: '5s' }),
 *   budget: { ratio: 0.2 },
 * });
 * const user = await policy.execute((signal) => fetchUser(id, signal));
 * ```
 */
export function retry(options: RetryOptions = {}): RetryPolicy {
  return new RetryPolicy(options);
}
