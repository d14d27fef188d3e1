import { ConcurrencyLimitError, ConfigError } from '../errors';
import { type Clock } from '../time/clock';
import { Listeners } from '../internal/listeners';
import { neverAbortedSignal } from '../internal/never-aborted';
import {
  checkClock,
  checkKnownKeys,
  checkObject,
  functionOption,
  integerOption,
  oneOf,
  stringOption,
} from '../internal/validate';
import type { Policy } from '../policy';
import { AimdLimit, checkAimd, type AimdOptions } from './limits/aimd';
import { checkGradient2, Gradient2Limit, type Gradient2Options } from './limits/gradient2';
import type { LimitAlgorithm, LimitAlgorithmName, LimitBounds } from './limits/limit';
import { checkVegas, VegasLimit, type VegasOptions } from './limits/vegas';

/** Options of {@link adaptiveConcurrency}. */
export interface AdaptiveConcurrencyOptions {
  /** Identifier in errors, events, metrics and snapshots. @defaultValue `'adaptive-concurrency'` */
  name?: string;
  /**
   * How the limit follows latency and outcomes (Netflix concurrency-limits' algorithms):
   * `'vegas'` (queue estimate against the lowest latency seen), `'gradient2'` (latency against
   * its long-term average) or `'aimd'` (grow by one, cut by a ratio on a drop or a slow call).
   * @defaultValue `'vegas'`
   */
  algorithm?: LimitAlgorithmName;
  /** The limit before any call has finished. @defaultValue 20 */
  initialLimit?: number;
  /** The limit never goes below this. @defaultValue 1 */
  minLimit?: number;
  /** The limit never goes above this. @defaultValue 200 */
  maxLimit?: number;
  /** Tuning of `gradient2`. @defaultValue Netflix's defaults */
  gradient2?: Gradient2Options;
  /** Tuning of `vegas`. @defaultValue Netflix's defaults */
  vegas?: VegasOptions;
  /** Tuning of `aimd`. @defaultValue Netflix's defaults */
  aimd?: AimdOptions;
  /**
   * Whether an error is a drop (a sign of overload that lowers the limit). `false` ignores the
   * call: it frees its slot and is not sampled. A hook that throws counts the call as a drop. An
   * error after the caller's own signal aborted is always ignored.
   * @defaultValue every error
   */
  isFailure?: (error: unknown) => boolean;
  /** Time source in milliseconds, for tests. @defaultValue `performance.now()` */
  clock?: Clock;
  /** Called when an event listener throws. @defaultValue none (the error is dropped) */
  onListenerError?: (error: unknown, event: string) => void;
}

/** A call admitted by {@link AdaptiveConcurrencyPolicy.tryAcquire}; settle it exactly once. */
export interface ConcurrencyPermit {
  /** The call succeeded: its latency is sampled. */
  success(): void;
  /** The call failed: a drop unless `isFailure(error)` says otherwise. */
  failure(error: unknown): void;
  /** The call was dropped (timed out, refused by the dependency): lowers the limit. */
  dropped(): void;
  /** The call says nothing about the dependency: frees the slot, no sample. */
  ignore(): void;
}

/** Events of {@link AdaptiveConcurrencyPolicy}. */
export interface AdaptiveConcurrencyEvents {
  /** A call was not admitted. */
  rejected: { limit: number; inFlight: number; reason: string };
  /** The limit moved. */
  limitChanged: { from: number; to: number };
}

/** What {@link AdaptiveConcurrencyPolicy.snapshot} returns: plain JSON. */
export interface AdaptiveConcurrencySnapshot {
  name: string;
  algorithm: LimitAlgorithmName;
  limit: number;
  inFlight: number;
  minLimit: number;
  maxLimit: number;
  /** Calls rejected since creation. */
  rejected: number;
  /** The latency the algorithm takes as "no queueing", in milliseconds (0 while unknown). */
  noLoadRttMs: number;
  /** The latency of the last sampled call, in milliseconds. */
  lastRttMs: number;
  /** A moving average of sampled latency, in milliseconds; the `retryAfterMs` of rejections. */
  rttMs: number;
}

const OWNER = 'adaptiveConcurrency';
const KNOWN = {
  name: true,
  algorithm: true,
  initialLimit: true,
  minLimit: true,
  maxLimit: true,
  gradient2: true,
  vegas: true,
  aimd: true,
  isFailure: true,
  clock: true,
  onListenerError: true,
} as const satisfies Record<keyof AdaptiveConcurrencyOptions, true>;
const ALGORITHMS = ['gradient2', 'vegas', 'aimd'] as const;
const MAX_LIMIT = 1_000_000;
/** Weight of a new sample in the latency average that sets `retryAfterMs`. */
const RTT_WEIGHT = 0.1;

const performanceClock: Clock = { now: () => performance.now() };

/**
 * Finds the concurrency a dependency can serve from the latency and outcomes of calls, admits at
 * most that many at once and rejects the rest at once with a {@link ConcurrencyLimitError}.
 *
 * Each finished call is one sample (latency, calls in flight when it started, dropped or not)
 * for the algorithm, which answers the new limit: it rises while latency stays steady and falls
 * when latency inflates or calls fail or time out, always within `[minLimit, maxLimit]`.
 */
export class AdaptiveConcurrencyPolicy implements Policy {
  /** Identifier in errors, events and snapshots. */
  readonly name: string;
  /** The algorithm. */
  readonly algorithm: LimitAlgorithmName;
  /** Lowest limit. */
  readonly minLimit: number;
  /** Highest limit. */
  readonly maxLimit: number;
  private readonly limiter: LimitAlgorithm;
  private readonly clock: Clock;
  private readonly isFailure: ((error: unknown) => boolean) | undefined;
  private readonly listeners: Listeners<AdaptiveConcurrencyEvents>;
  private active = 0;
  private current: number;
  private rejections = 0;
  private rtt = 0;

  /** @throws ConfigError when an option is invalid */
  constructor(options: AdaptiveConcurrencyOptions = {}) {
    checkObject(OWNER, 'options', options);
    checkKnownKeys(OWNER, '', options, Object.keys(KNOWN));
    this.name = options.name === undefined ? OWNER : stringOption(OWNER, 'name', options.name);
    this.algorithm =
      options.algorithm === undefined
        ? 'vegas'
        : oneOf(OWNER, 'algorithm', options.algorithm, ALGORITHMS);
    this.minLimit =
      options.minLimit === undefined
        ? 1
        : integerOption(OWNER, 'minLimit', options.minLimit, 1, MAX_LIMIT);
    this.maxLimit =
      options.maxLimit === undefined
        ? Math.max(200, this.minLimit)
        : integerOption(OWNER, 'maxLimit', options.maxLimit, this.minLimit, MAX_LIMIT);
    const initialLimit =
      options.initialLimit === undefined
        ? Math.min(Math.max(20, this.minLimit), this.maxLimit)
        : integerOption(OWNER, 'initialLimit', options.initialLimit, this.minLimit, this.maxLimit);
    const bounds = { initialLimit, minLimit: this.minLimit, maxLimit: this.maxLimit };
    for (const other of ALGORITHMS) {
      if (other !== this.algorithm && options[other] !== undefined) {
        throw new ConfigError(
          OWNER,
          other,
          options[other],
          `applies only to algorithm '${other}' (algorithm is '${this.algorithm}')`,
        );
      }
    }
    this.limiter = createLimit(this.algorithm, bounds, options);
    this.current = this.limiter.limit;
    this.isFailure =
      options.isFailure === undefined
        ? undefined
        : functionOption<(error: unknown) => boolean>(OWNER, 'isFailure', options.isFailure);
    this.clock = options.clock === undefined ? performanceClock : checkClock(OWNER, options.clock);
    const onListenerError =
      options.onListenerError === undefined
        ? undefined
        : functionOption<(error: unknown, event: string) => void>(
            OWNER,
            'onListenerError',
            options.onListenerError,
          );
    this.listeners = new Listeners(onListenerError);
  }

  /** The concurrency limit now. */
  get limit(): number {
    return this.current;
  }

  /** Calls admitted and not yet settled. */
  get inFlight(): number {
    return this.active;
  }

  /**
   * Admits a call when fewer than `limit` are in flight, without ever throwing: returns a permit
   * to settle when the call ends, or `undefined` (and emits `rejected`) when the limit is reached.
   */
  tryAcquire(): ConcurrencyPermit | undefined {
    if (this.active >= this.current) {
      this.reject('limit');
      return undefined;
    }
    const startedAt = this.clock.now();
    this.active++;
    return new Permit(this, startedAt, this.active);
  }

  /**
   * Runs `fn` when the limit admits it.
   * @throws ConcurrencyLimitError when `limit` calls are already in flight
   * @throws whatever `fn` throws, unchanged
   */
  execute<T>(fn: (signal: AbortSignal) => PromiseLike<T> | T, signal?: AbortSignal): Promise<T> {
    if (signal !== undefined && signal.aborted) return Promise.reject(signal.reason as Error);
    const permit = this.tryAcquire();
    if (permit === undefined) return Promise.reject(this.rejection());
    return this.run(fn, signal ?? neverAbortedSignal, permit);
  }

  /** The error a rejected call gets (no stack trace). */
  rejection(): ConcurrencyLimitError {
    return ConcurrencyLimitError.create(this.name, this.current, Math.ceil(this.rtt));
  }

  /** Listens to an event; returns the function that stops listening. */
  on<K extends keyof AdaptiveConcurrencyEvents>(
    event: K,
    listener: (payload: AdaptiveConcurrencyEvents[K]) => void,
  ): () => void {
    return this.listeners.add(event, listener);
  }

  /** The limit, the calls in flight and the latency estimates, as plain JSON. */
  snapshot(): AdaptiveConcurrencySnapshot {
    const estimates = this.limiter.estimates();
    return {
      name: this.name,
      algorithm: this.algorithm,
      limit: this.current,
      inFlight: this.active,
      minLimit: this.minLimit,
      maxLimit: this.maxLimit,
      rejected: this.rejections,
      noLoadRttMs: estimates.noLoadRttMs,
      lastRttMs: estimates.lastRttMs,
      rttMs: this.rtt,
    };
  }

  private reject(reason: string): void {
    this.rejections++;
    if (this.listeners.has('rejected')) {
      this.listeners.emit('rejected', { limit: this.current, inFlight: this.active, reason });
    }
  }

  /** Frees a permit's slot and, unless ignored, feeds its sample to the algorithm. @internal */
  settle(startedAt: number, inFlight: number, outcome: 'success' | 'dropped' | 'ignore'): void {
    this.active--;
    if (outcome === 'ignore') return;
    const rttMs = this.clock.now() - startedAt;
    this.rtt = this.rtt === 0 ? rttMs : this.rtt + (rttMs - this.rtt) * RTT_WEIGHT;
    const from = this.current;
    const to = this.limiter.update(rttMs, inFlight, outcome === 'dropped');
    if (to === from) return;
    this.current = to;
    if (this.listeners.has('limitChanged')) this.listeners.emit('limitChanged', { from, to });
  }

  /** Whether `error` lowers the limit. @internal */
  isDrop(error: unknown): boolean {
    if (this.isFailure === undefined) return true;
    try {
      return this.isFailure(error) !== false;
    } catch {
      return true;
    }
  }

  private async run<T>(
    fn: (signal: AbortSignal) => PromiseLike<T> | T,
    signal: AbortSignal,
    permit: ConcurrencyPermit,
  ): Promise<T> {
    let result: T;
    try {
      result = await fn(signal);
    } catch (error) {
      if (signal.aborted) permit.ignore();
      else permit.failure(error);
      throw error;
    }
    permit.success();
    return result;
  }
}

function createLimit(
  algorithm: LimitAlgorithmName,
  bounds: LimitBounds,
  options: AdaptiveConcurrencyOptions,
): LimitAlgorithm {
  switch (algorithm) {
    case 'gradient2':
      return new Gradient2Limit(bounds, checkGradient2(OWNER, 'gradient2', options.gradient2));
    case 'vegas':
      return new VegasLimit(bounds, checkVegas(OWNER, 'vegas', options.vegas));
    case 'aimd':
      return new AimdLimit(bounds, checkAimd(OWNER, 'aimd', options.aimd));
  }
}

/** A permit: remembers when the call started and how many were in flight; settles once. */
class Permit implements ConcurrencyPermit {
  private open = true;

  constructor(
    private readonly policy: AdaptiveConcurrencyPolicy,
    private readonly startedAt: number,
    private readonly inFlight: number,
  ) {}

  success(): void {
    this.settle('success');
  }

  failure(error: unknown): void {
    if (this.open) this.settle(this.policy.isDrop(error) ? 'dropped' : 'ignore');
  }

  dropped(): void {
    this.settle('dropped');
  }

  ignore(): void {
    this.settle('ignore');
  }

  private settle(outcome: 'success' | 'dropped' | 'ignore'): void {
    if (!this.open) return;
    this.open = false;
    this.policy.settle(this.startedAt, this.inFlight, outcome);
  }
}

/**
 * Creates an {@link AdaptiveConcurrencyPolicy}: a concurrency limit that adapts to the
 * latency and outcomes of the calls it admits.
 *
 * @throws ConfigError when an option is invalid
 * @example
 * ```ts
 * const limit = adaptiveConcurrency({ algorithm: 'gradient2', minLimit: 5, maxLimit: 100 });
 * const policy = pipeline(retry({ maxAttempts: 2 }), breaker, limit, timeout(2_000));
 * const plant = await policy.execute((signal) => identify(photo, signal));
 * ```
 */
export function adaptiveConcurrency(
  options: AdaptiveConcurrencyOptions = {},
): AdaptiveConcurrencyPolicy {
  return new AdaptiveConcurrencyPolicy(options);
}
