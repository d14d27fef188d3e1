import { type Duration, durationOption } from '../time/duration';
import { ConfigError } from '../errors';
import {
  checkKnownKeys,
  checkObject,
  functionOption,
  numberOption,
  oneOf,
} from '../internal/validate';

/**
 * Computes the delay before a retry.
 *
 * @param attempt - number of the attempt that just failed (1 after the first call)
 * @param previousDelayMs - the delay used before that attempt (0 before the first retry)
 * @param error - the error of the failed attempt (`undefined` when a result was retried)
 * @returns the delay in milliseconds; a negative or non-finite value counts as 0
 */
export type Backoff = (attempt: number, previousDelayMs: number, error: unknown) => number;

/** How {@link exponential} randomises its delays. */
export type Jitter = 'none' | 'full' | 'decorrelated';

/** Options of {@link exponential}. */
export interface ExponentialBackoffOptions {
  /** Delay before the first retry (also the lower bound of decorrelated jitter). @defaultValue 100 */
  initialMs?: Duration;
  /** Upper bound of every delay. @defaultValue 30 000 */
  maxMs?: Duration;
  /** Growth factor from one delay to the next (not used by decorrelated jitter). @defaultValue 2 */
  multiplier?: number;
  /**
   * `'none'`: `initialMs × multiplier^(attempt − 1)` capped at `maxMs`;
   * `'full'`: a uniform random delay between 0 and that value;
   * `'decorrelated'`: a uniform random delay between `initialMs` and three times the previous
   * delay, capped at `maxMs`.
   * @defaultValue 'full'
   */
  jitter?: Jitter;
  /** Source of uniform random numbers in [0, 1); inject one in tests. @defaultValue `Math.random` */
  random?: () => number;
}

const OWNER = 'exponential';
const JITTERS: readonly Jitter[] = ['none', 'full', 'decorrelated'];
const KNOWN = ['initialMs', 'maxMs', 'multiplier', 'jitter', 'random'] as const;

/**
 * Exponential backoff with optional jitter.
 *
 * @throws ConfigError when an option is invalid
 * @example
 * ```ts
 * const policy = retry({ maxAttempts: 5, backoff: exponential({ initialMs: 200, maxMs: '10s' }) });
 * ```
 */
export function exponential(options: ExponentialBackoffOptions = {}): Backoff {
  checkObject(OWNER, 'options', options);
  checkKnownKeys(OWNER, '', options, KNOWN);
  const initialMs =
    options.initialMs === undefined ? 100 : bounded('initialMs', options.initialMs, 0);
  const maxMs = options.maxMs === undefined ? 30_000 : bounded('maxMs', options.maxMs, 0);
  if (maxMs < initialMs) {
    throw new ConfigError(
      OWNER,
      'maxMs',
      options.maxMs,
      `must be at least initialMs (${initialMs})`,
    );
  }
  const multiplier =
    options.multiplier === undefined
      ? 2
      : numberOption(OWNER, 'multiplier', options.multiplier, 1, 1_000);
  const jitter =
    options.jitter === undefined ? 'full' : oneOf(OWNER, 'jitter', options.jitter, JITTERS);
  const random =
    options.random === undefined
      ? Math.random
      : functionOption<() => number>(OWNER, 'random', options.random);

  const capped = (attempt: number): number => {
    if (initialMs === 0) return 0;
    const raw = initialMs * Math.pow(multiplier, attempt > 1 ? attempt - 1 : 0);
    return raw < maxMs ? raw : maxMs;
  };

  switch (jitter) {
    case 'none':
      return (attempt) => capped(attempt);
    case 'full':
      return (attempt) => unit(random()) * capped(attempt);
    case 'decorrelated':
      return (_attempt, previousDelayMs) => {
        const previous = previousDelayMs > initialMs ? previousDelayMs : initialMs;
        const delay = initialMs + unit(random()) * (previous * 3 - initialMs);
        return delay < maxMs ? delay : maxMs;
      };
  }
}

/**
 * The same delay before every retry.
 *
 * @param ms - the delay, in milliseconds or as a string like `'500ms'`
 * @throws ConfigError when `ms` is not a duration
 * @example
 * ```ts
 * const policy = retry({ maxAttempts: 3, backoff: constant(250) });
 * ```
 */
export function constant(ms: Duration): Backoff {
  const delay = durationOption('constant', 'ms', ms, { timer: true });
  return () => delay;
}

function bounded(path: string, value: unknown, min: number): number {
  const ms = durationOption(OWNER, path, value, { min, timer: true });
  return ms;
}

/** Keeps a random source's output inside [0, 1] even when an injected one misbehaves. */
function unit(value: number): number {
  return value > 0 ? (value < 1 ? value : 1) : 0;
}
