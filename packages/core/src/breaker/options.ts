import type { BreakerScope, BreakerStore } from './breaker-store';
import type { CircuitBreakerStateJSON } from './types';
import { systemClock, type Clock } from '../time/clock';
import { durationOption, type Duration } from '../time/duration';
import { ConfigError } from '../errors';
import { loggerOption, type Logger } from '../internal/log';
import {
  checkClock,
  checkKnownKeys,
  checkObject,
  functionOption,
  integerOption,
  numberOption,
  oneOf,
  percentOption,
  stringOption,
} from '../internal/validate';

/** The window over which failure and slow-call rates are computed. */
export type WindowOptions =
  { type: 'count'; size: number } | { type: 'time'; durationMs: Duration; buckets?: number };

/** Growth of the open time when a circuit reopens without having recovered. */
export interface OpenBackoffOptions {
  /** Factor applied to the open time at each reopen. @defaultValue 2 */
  multiplier?: number;
  /** Upper bound of the open time. @defaultValue 10 × `openDurationMs` */
  maxMs?: Duration;
  /**
   * Time the circuit must stay closed before the backoff level returns to zero.
   * @defaultValue the level returns to zero as soon as the circuit closes
   */
  resetAfterMs?: Duration;
}

/** How the half-open state admits probes. */
export interface HalfOpenOptions {
  /** Probes admitted at once; further calls are rejected at once. @defaultValue 1 */
  maxConcurrent?: number;
  /** Probe successes needed to close the circuit. @defaultValue 1 */
  successThreshold?: number;
  /** A probe that has not settled after this long frees its permit. @defaultValue off */
  maxWaitMs?: Duration;
}

/** Options of {@link CircuitBreaker}. Only `name` is required. */
export interface CircuitBreakerOptions {
  /** Identifier in registries, events, metrics and health reports. */
  name: string;
  /** Consecutive failures that open the circuit; `false` turns the rule off. @defaultValue 5 */
  failureThreshold?: number | false;
  /** Percentage (0–100] of failures in the window that opens the circuit. @defaultValue off */
  failureRateThreshold?: number;
  /** A call slower than this is slow. Needed with `slowCallRateThreshold`. @defaultValue off */
  slowCallDurationMs?: Duration;
  /** Percentage (0–100] of slow calls in the window that opens the circuit. @defaultValue off */
  slowCallRateThreshold?: number;
  /** The window for rates. @defaultValue `{ type: 'count', size: 100 }` */
  window?: WindowOptions;
  /** Calls in the window before a rate can open the circuit. @defaultValue 10 */
  minimumCalls?: number;
  /** Time the circuit stays open before a probe is admitted. @defaultValue 60 000 */
  openDurationMs?: Duration;
  /** Longer open times for circuits that keep failing. @defaultValue off */
  backoff?: OpenBackoffOptions;
  /** Probe admission in the half-open state. @defaultValue `{ maxConcurrent: 1, successThreshold: 1 }` */
  halfOpen?: HalfOpenOptions;
  /** Per-call time limit; the call's own AbortSignal is aborted when it passes. @defaultValue off */
  timeoutMs?: Duration;
  /**
   * The longest an `openFor(ms)` (an upstream's `Retry-After`) keeps the circuit open: longer
   * requests are clamped to it. @defaultValue `'24h'`
   */
  maxOpenMs?: Duration;
  /**
   * Returns false for errors that are neither failures nor successes. A predicate that throws
   * counts the call as a failure. @defaultValue every error is a failure
   */
  isFailure?: (error: unknown) => boolean;
  /**
   * Returns true for a resolved value that counts as a failure (the value is still returned). A
   * predicate that throws counts the call as a failure. @defaultValue none
   */
  isResultFailure?: (result: unknown) => boolean;
  /** Value for calls that are rejected or fail; receives the error and the wrapped function's arguments. */
  fallback?: (error: unknown, ...args: never[]) => unknown;
  /** Time source. @defaultValue `systemClock` */
  clock?: Clock;
  /** State to start from, as returned by `toJSON()` (e.g. carried across a serverless cold start). */
  initialState?: CircuitBreakerStateJSON;
  /**
   * Called when a listener or another hook (`isFailure`, `isResultFailure`, `fallback`, a
   * logger) throws or rejects; the call itself is never affected. @defaultValue the logger's
   * error line, else ignore
   */
  onListenerError?: (error: unknown, event: string) => void;
  /**
   * Logs one line per transition (`[CIRCUIT] plant-id closed -> open (3 consecutive failures)`)
   * and hook errors. `console` or a pino-shaped logger. @defaultValue silent
   */
  logger?: Logger;
  /**
   * Where the circuit's state lives. A shared store (`RedisBreakerStore` of `@breakwater/redis`)
   * lets every process and host that uses this breaker's name follow one circuit.
   * @defaultValue a `MemoryBreakerStore`: the state stays in this breaker
   */
  store?: BreakerStore;
  /**
   * With a shared store: `'shared'` decides on the totals of every process (one sick process
   * does not open the circuit for the others unless its failures dominate them); `'local'`
   * decides on this process's own calls only and shares nothing.
   * @defaultValue `'shared'` with a shared store, `'local'` otherwise
   */
  scope?: BreakerScope;
}

/** A resolved window: durations in milliseconds, defaults filled in. */
export type ResolvedWindow =
  | { readonly type: 'count'; readonly size: number }
  | { readonly type: 'time'; readonly durationMs: number; readonly buckets: number };

/**
 * {@link CircuitBreakerOptions} resolved once at construction: numbers in milliseconds, `0` where
 * a rule or limit is off, defaults filled in. Frozen.
 */
export interface ResolvedBreakerOptions {
  readonly name: string;
  readonly clock: Clock;
  /** Consecutive failures that open the circuit; 0 when the rule is off. */
  readonly failureThreshold: number;
  /** Failure-rate percentage that opens the circuit; 0 when off. */
  readonly failureRateThreshold: number;
  /** 0 when off. */
  readonly slowCallDurationMs: number;
  /** Slow-call-rate percentage that opens the circuit; 0 when off. */
  readonly slowCallRateThreshold: number;
  readonly minimumCalls: number;
  readonly window: ResolvedWindow;
  readonly openDurationMs: number;
  /** 1 when backoff is off. */
  readonly backoffMultiplier: number;
  readonly backoffMaxMs: number;
  /** 0: the level returns to zero as soon as the circuit closes. */
  readonly backoffResetAfterMs: number;
  /** The highest backoff level (the one whose open time reaches `backoffMaxMs`). */
  readonly maxBackoffLevel: number;
  readonly halfOpenMaxConcurrent: number;
  readonly halfOpenSuccessThreshold: number;
  /** 0 when off. */
  readonly halfOpenMaxWaitMs: number;
  /** 0 when off. */
  readonly timeoutMs: number;
  readonly maxOpenMs: number;
  readonly isFailure: ((error: unknown) => boolean) | undefined;
  readonly isResultFailure: ((result: unknown) => boolean) | undefined;
  readonly fallback: ((error: unknown, ...args: unknown[]) => unknown) | undefined;
  readonly onListenerError: ((error: unknown, event: string) => void) | undefined;
  readonly logger: Logger | undefined;
  readonly initialState: CircuitBreakerStateJSON | undefined;
  /** A shared store in shared scope; undefined keeps every decision local. */
  readonly sharedStore: BreakerStore | undefined;
}

/** The fields a shared store needs to decide on cluster totals. */
export const SHARED_SETTING_KEYS = [
  'failureThreshold',
  'failureRateThreshold',
  'slowCallRateThreshold',
  'minimumCalls',
  'window',
  'openDurationMs',
  'backoffMultiplier',
  'backoffMaxMs',
  'backoffResetAfterMs',
  'maxBackoffLevel',
  'halfOpenMaxConcurrent',
  'halfOpenSuccessThreshold',
  'halfOpenMaxWaitMs',
] as const satisfies readonly (keyof ResolvedBreakerOptions)[];

const OWNER = 'CircuitBreaker';
/** The default of `maxOpenMs`: 24 hours. */
export const DEFAULT_MAX_OPEN_MS = 86_400_000;

const KNOWN_OPTIONS = Object.keys({
  name: true,
  failureThreshold: true,
  failureRateThreshold: true,
  slowCallDurationMs: true,
  slowCallRateThreshold: true,
  window: true,
  minimumCalls: true,
  openDurationMs: true,
  backoff: true,
  halfOpen: true,
  timeoutMs: true,
  maxOpenMs: true,
  isFailure: true,
  isResultFailure: true,
  fallback: true,
  clock: true,
  initialState: true,
  onListenerError: true,
  logger: true,
  store: true,
  scope: true,
} satisfies Record<keyof CircuitBreakerOptions, true>);
const KNOWN_BACKOFF = Object.keys({
  multiplier: true,
  maxMs: true,
  resetAfterMs: true,
} satisfies Record<keyof OpenBackoffOptions, true>);
const KNOWN_HALF_OPEN = Object.keys({
  maxConcurrent: true,
  successThreshold: true,
  maxWaitMs: true,
} satisfies Record<keyof HalfOpenOptions, true>);

/**
 * Validates and resolves a breaker's options once.
 * @throws ConfigError naming the option path and value when one is invalid
 * @internal
 */
export function resolveBreakerOptions(options: CircuitBreakerOptions): ResolvedBreakerOptions {
  checkObject(OWNER, 'options', options);
  checkKnownKeys(OWNER, '', options, KNOWN_OPTIONS);
  const name = stringOption(OWNER, 'name', options.name);
  const clock = options.clock === undefined ? systemClock : checkClock(OWNER, options.clock);

  const threshold = options.failureThreshold;
  const failureThreshold =
    threshold === false
      ? 0
      : threshold === undefined
        ? 5
        : integerOption(OWNER, 'failureThreshold', threshold, 1);
  const failureRateThreshold = optional(options.failureRateThreshold, 0, (v) =>
    percentOption(OWNER, 'failureRateThreshold', v),
  );
  const slowCallDurationMs = optional(options.slowCallDurationMs, 0, (v) =>
    durationOption(OWNER, 'slowCallDurationMs', v, { allowZero: false }),
  );
  const slowCallRateThreshold = optional(options.slowCallRateThreshold, 0, (v) =>
    percentOption(OWNER, 'slowCallRateThreshold', v),
  );
  if ((slowCallRateThreshold === 0) !== (slowCallDurationMs === 0)) {
    const missing = slowCallDurationMs === 0 ? 'slowCallDurationMs' : 'slowCallRateThreshold';
    throw new ConfigError(
      OWNER,
      missing,
      undefined,
      'is required when the other slow-call option is set',
    );
  }
  const minimumCalls = optional(options.minimumCalls, 10, (v) =>
    integerOption(OWNER, 'minimumCalls', v, 1),
  );
  const window = resolveWindow(options.window);
  const openDurationMs = optional(options.openDurationMs, 60_000, (v) =>
    durationOption(OWNER, 'openDurationMs', v, { allowZero: false }),
  );

  let backoffMultiplier = 1;
  let backoffMaxMs = openDurationMs;
  let backoffResetAfterMs = 0;
  if (options.backoff !== undefined) {
    const backoff = options.backoff;
    checkObject(OWNER, 'backoff', backoff);
    checkKnownKeys(OWNER, 'backoff', backoff, KNOWN_BACKOFF);
    backoffMultiplier = optional(backoff.multiplier, 2, (v) =>
      numberOption(OWNER, 'backoff.multiplier', v, 1, 1_000),
    );
    backoffMaxMs = optional(backoff.maxMs, openDurationMs * 10, (v) =>
      durationOption(OWNER, 'backoff.maxMs', v),
    );
    if (backoffMaxMs < openDurationMs) {
      throw new ConfigError(
        OWNER,
        'backoff.maxMs',
        backoff.maxMs,
        `must be at least openDurationMs (${openDurationMs} ms)`,
      );
    }
    backoffResetAfterMs = optional(backoff.resetAfterMs, 0, (v) =>
      durationOption(OWNER, 'backoff.resetAfterMs', v),
    );
  }

  const halfOpen = options.halfOpen ?? {};
  checkObject(OWNER, 'halfOpen', halfOpen);
  checkKnownKeys(OWNER, 'halfOpen', halfOpen, KNOWN_HALF_OPEN);

  const store = options.store === undefined ? undefined : checkStore(options.store);
  const scope: BreakerScope =
    options.scope === undefined
      ? store?.shared === true
        ? 'shared'
        : 'local'
      : oneOf(OWNER, 'scope', options.scope, ['shared', 'local'] as const);
  if (scope === 'shared' && store?.shared !== true) {
    throw new ConfigError(
      OWNER,
      'scope',
      options.scope,
      "is 'shared' but the store does not share state (pass a shared store such as RedisBreakerStore)",
    );
  }

  return Object.freeze({
    name,
    clock,
    failureThreshold,
    failureRateThreshold,
    slowCallDurationMs,
    slowCallRateThreshold,
    minimumCalls,
    window,
    openDurationMs,
    backoffMultiplier,
    backoffMaxMs,
    backoffResetAfterMs,
    maxBackoffLevel: maxLevel(openDurationMs, backoffMultiplier, backoffMaxMs),
    halfOpenMaxConcurrent: optional(halfOpen.maxConcurrent, 1, (v) =>
      integerOption(OWNER, 'halfOpen.maxConcurrent', v, 1),
    ),
    halfOpenSuccessThreshold: optional(halfOpen.successThreshold, 1, (v) =>
      integerOption(OWNER, 'halfOpen.successThreshold', v, 1),
    ),
    halfOpenMaxWaitMs: optional(halfOpen.maxWaitMs, 0, (v) =>
      durationOption(OWNER, 'halfOpen.maxWaitMs', v, { allowZero: false }),
    ),
    timeoutMs: optional(options.timeoutMs, 0, (v) =>
      durationOption(OWNER, 'timeoutMs', v, { allowZero: false, timer: true }),
    ),
    maxOpenMs: optional(options.maxOpenMs, DEFAULT_MAX_OPEN_MS, (v) =>
      durationOption(OWNER, 'maxOpenMs', v, { allowZero: false }),
    ),
    isFailure: optionalFunction<(error: unknown) => boolean>('isFailure', options.isFailure),
    isResultFailure: optionalFunction<(result: unknown) => boolean>(
      'isResultFailure',
      options.isResultFailure,
    ),
    fallback: optionalFunction<(error: unknown, ...args: unknown[]) => unknown>(
      'fallback',
      options.fallback,
    ),
    onListenerError: optionalFunction<(error: unknown, event: string) => void>(
      'onListenerError',
      options.onListenerError,
    ),
    logger: options.logger === undefined ? undefined : loggerOption(OWNER, options.logger),
    initialState: options.initialState,
    sharedStore: scope === 'shared' ? store : undefined,
  });
}

/** The settings a shared store receives: the shared subset of the resolved options. */
export function sharedSettings(
  options: ResolvedBreakerOptions,
): Pick<ResolvedBreakerOptions, (typeof SHARED_SETTING_KEYS)[number]> {
  const settings: Record<string, unknown> = {};
  for (const key of SHARED_SETTING_KEYS) settings[key] = options[key];
  return Object.freeze(settings) as Pick<
    ResolvedBreakerOptions,
    (typeof SHARED_SETTING_KEYS)[number]
  >;
}

/** The backoff level whose open time first reaches `maxMs` (0 when backoff is off). */
function maxLevel(openDurationMs: number, multiplier: number, maxMs: number): number {
  if (multiplier === 1) return 0;
  // The 1e-9 absorbs floating-point error when maxMs is an exact power of the multiplier.
  return Math.max(0, Math.ceil(Math.log(maxMs / openDurationMs) / Math.log(multiplier) - 1e-9));
}

function optional<T>(value: unknown, fallback: T, parse: (value: unknown) => T): T {
  return value === undefined ? fallback : parse(value);
}

function optionalFunction<F extends (...args: never[]) => unknown>(
  path: string,
  value: unknown,
): F | undefined {
  return value === undefined ? undefined : functionOption<F>(OWNER, path, value);
}

/** The default window, shared by every breaker that uses it (resolved windows are frozen). */
const DEFAULT_WINDOW: ResolvedWindow & { type: 'count' } = Object.freeze({
  type: 'count',
  size: 100,
});

function resolveWindow(options: WindowOptions | undefined): ResolvedWindow {
  if (options === undefined) return DEFAULT_WINDOW;
  checkObject(OWNER, 'window', options);
  const type = oneOf(OWNER, 'window.type', options.type, ['count', 'time'] as const);
  if (type === 'count') {
    checkKnownKeys(OWNER, 'window', options, ['type', 'size']);
    const size = integerOption(
      OWNER,
      'window.size',
      (options as { size?: unknown }).size,
      1,
      1_000_000,
    );
    return size === DEFAULT_WINDOW.size ? DEFAULT_WINDOW : Object.freeze({ type, size });
  }
  checkKnownKeys(OWNER, 'window', options, ['type', 'durationMs', 'buckets']);
  const time = options as { durationMs?: unknown; buckets?: unknown };
  const durationMs = durationOption(OWNER, 'window.durationMs', time.durationMs, {
    allowZero: false,
  });
  const buckets = optional(time.buckets, 10, (v) =>
    integerOption(OWNER, 'window.buckets', v, 1, 1_000),
  );
  return Object.freeze({ type, durationMs, buckets });
}

function checkStore(value: unknown): BreakerStore {
  const store = value as Partial<Record<keyof BreakerStore, unknown>> | null;
  if (
    typeof store !== 'object' ||
    store === null ||
    typeof store.connect !== 'function' ||
    typeof store.shared !== 'boolean'
  ) {
    throw new ConfigError(
      OWNER,
      'store',
      value,
      'must be a breaker store (an object with `shared` and `connect()`, e.g. MemoryBreakerStore)',
    );
  }
  return value as BreakerStore;
}
