const MARKER = Symbol.for('@breakwater/error');

/** Stable codes carried by every Breakwater error. */
export type BreakwaterErrorCode =
  | 'ECIRCUITOPEN'
  | 'ETIMEDOUT'
  | 'ERATELIMITED'
  | 'EBULKHEADFULL'
  | 'EBADCONFIG'
  | 'EREGISTRYFULL'
  | 'ELIMITED';

/**
 * Base class of every error Breakwater throws at run time.
 *
 * Guards such as {@link isCircuitOpenError} check a marker and the `code`, not `instanceof`,
 * so they also recognise errors thrown by a second installed copy of the library.
 */
export class BreakwaterError extends Error {
  /** Stable machine-readable code. */
  readonly code: BreakwaterErrorCode;

  constructor(code: BreakwaterErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}
// On the prototype, so that every instance carries the marker at no cost per error.
Object.defineProperty(BreakwaterError.prototype, MARKER, { value: true });
Object.defineProperty(BreakwaterError.prototype, 'name', {
  value: 'BreakwaterError',
  writable: true,
  configurable: true,
});

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

/**
 * Thrown when a circuit breaker does not admit a call. The breaker creates it with
 * {@link CircuitOpenError.create}, which captures no stack trace.
 */
export class CircuitOpenError extends BreakwaterError {
  /** Name of the breaker that rejected the call. */
  readonly breaker: string;
  /** Milliseconds until the breaker admits a probe (0 when unknown or due now). */
  readonly retryAfterMs: number;

  constructor(breaker: string, retryAfterMs: number) {
    super('ECIRCUITOPEN', `Circuit "${breaker}" is open`);
    this.breaker = breaker;
    this.retryAfterMs = retryAfterMs;
  }

  /**
   * Creates the error without capturing a stack trace: an open circuit rejects calls at a
   * fraction of the cost of `new Error()`. Its `stack` is the one line `name: message`.
   */
  static create(breaker: string, retryAfterMs: number): CircuitOpenError {
    const error = Object.create(CircuitOpenError.prototype) as Mutable<CircuitOpenError>;
    error.message = `Circuit "${breaker}" is open`;
    error.code = 'ECIRCUITOPEN';
    error.breaker = breaker;
    error.retryAfterMs = retryAfterMs;
    return error;
  }
}

/** Thrown when a call exceeds its time limit. */
export class TimeoutError extends BreakwaterError {
  /** The limit that was exceeded, in milliseconds. */
  readonly timeoutMs: number;

  constructor(timeoutMs: number, options?: { cause?: unknown }) {
    super('ETIMEDOUT', `Operation timed out after ${timeoutMs} ms`, options);
    this.timeoutMs = timeoutMs;
  }
}

/** Thrown when a rate limiter refuses a call. */
export class RateLimitError extends BreakwaterError {
  /** Milliseconds until the request would be allowed. */
  readonly retryAfterMs: number;
  /** The limit of the policy that refused the call. */
  readonly limit: number;
  /** What is left of the limit (0 when refused). */
  readonly remaining: number;

  constructor(retryAfterMs: number, limit: number, remaining: number, limiter?: string) {
    super('ERATELIMITED', limiter ? `Rate limit "${limiter}" exceeded` : 'Rate limit exceeded');
    this.retryAfterMs = retryAfterMs;
    this.limit = limit;
    this.remaining = remaining;
  }
}

/** Thrown when a bulkhead has no free slot and no room in its queue. */
export class BulkheadFullError extends BreakwaterError {
  /** The bulkhead's concurrency limit. */
  readonly maxConcurrent: number;
  /** The bulkhead's queue limit. */
  readonly maxQueue: number;

  constructor(maxConcurrent: number, maxQueue: number) {
    super('EBULKHEADFULL', `Bulkhead is full (${maxConcurrent} running, ${maxQueue} queued)`);
    this.maxConcurrent = maxConcurrent;
    this.maxQueue = maxQueue;
  }
}

/** Thrown at construction when an option is invalid. */
export class ConfigError extends BreakwaterError {
  /** Dotted path of the offending option, e.g. `halfOpen.maxConcurrent`. */
  readonly path: string;
  /** The value that was rejected. */
  readonly value: unknown;
  /** What the option must be, e.g. `must be an integer >= 1`. */
  readonly expected: string;

  constructor(owner: string, path: string, value: unknown, expected: string) {
    super('EBADCONFIG', `${owner}: option "${path}" ${expected}, got ${describe(value)}`);
    this.path = path;
    this.value = value;
    this.expected = expected;
  }
}

/** Thrown when a registry would grow past its `maxBreakers` bound. */
export class RegistryFullError extends BreakwaterError {
  /** The bound that was reached. */
  readonly maxBreakers: number;

  constructor(maxBreakers: number, name: string) {
    super(
      'EREGISTRYFULL',
      `Circuit breaker registry is full (${maxBreakers} breakers); cannot create "${name}"`,
    );
    this.maxBreakers = maxBreakers;
  }
}

/**
 * Thrown when an adaptive concurrency limit does not admit a call: as many calls as the limit
 * allows are already running. The policy creates it with {@link ConcurrencyLimitError.create},
 * which captures no stack trace.
 */
export class ConcurrencyLimitError extends BreakwaterError {
  /** Name of the policy (or load shedder) that rejected the call. */
  readonly limiter: string;
  /** The concurrency limit at the moment of the rejection. */
  readonly limit: number;
  /** Milliseconds after which a retry may find a free slot (about one recent call's latency). */
  readonly retryAfterMs: number;

  constructor(limiter: string, limit: number, retryAfterMs: number) {
    super('ELIMITED', `Concurrency limit "${limiter}" reached (${limit} in flight)`);
    this.limiter = limiter;
    this.limit = limit;
    this.retryAfterMs = retryAfterMs;
  }

  /**
   * Creates the error without capturing a stack trace, as an overloaded service rejects many
   * calls. Its `stack` is the one line `name: message`.
   */
  static create(limiter: string, limit: number, retryAfterMs: number): ConcurrencyLimitError {
    const error = Object.create(ConcurrencyLimitError.prototype) as Mutable<ConcurrencyLimitError>;
    error.message = `Concurrency limit "${limiter}" reached (${limit} in flight)`;
    error.code = 'ELIMITED';
    error.limiter = limiter;
    error.limit = limit;
    error.retryAfterMs = retryAfterMs;
    return error;
  }
}

for (const [type, name] of [
  [CircuitOpenError, 'CircuitOpenError'],
  [TimeoutError, 'TimeoutError'],
  [RateLimitError, 'RateLimitError'],
  [BulkheadFullError, 'BulkheadFullError'],
  [ConfigError, 'ConfigError'],
  [RegistryFullError, 'RegistryFullError'],
  [ConcurrencyLimitError, 'ConcurrencyLimitError'],
] as const) {
  Object.defineProperty(type.prototype, 'name', {
    value: name,
    writable: true,
    configurable: true,
  });
}
// Errors made by the static create() methods have no captured stack; they report their first line.
for (const type of [CircuitOpenError, ConcurrencyLimitError]) {
  Object.defineProperty(type.prototype, 'stack', {
    get(this: Error): string {
      return `${this.name}: ${this.message}`;
    },
    set(this: Error, value: unknown) {
      Object.defineProperty(this, 'stack', { value, writable: true, configurable: true });
    },
    configurable: true,
  });
}

function describe(value: unknown): string {
  if (typeof value === 'string')
    return JSON.stringify(value.length > 80 ? `${value.slice(0, 80)}…` : value);
  if (typeof value === 'function') return 'a function';
  if (typeof value === 'bigint') return `${value}n`;
  if (value === null || typeof value !== 'object') return String(value);
  try {
    const json = JSON.stringify(value);
    return json.length > 80 ? `${json.slice(0, 80)}…` : json;
  } catch {
    return Object.prototype.toString.call(value);
  }
}

function hasCode(error: unknown, code: BreakwaterErrorCode): boolean {
  return (
    typeof error === 'object' &&
    error !== null &&
    (error as Record<symbol, unknown>)[MARKER] === true &&
    (error as { code?: unknown }).code === code
  );
}

/** Whether `error` is any Breakwater error (works across installed copies). */
export const isBreakwaterError = (error: unknown): error is BreakwaterError =>
  typeof error === 'object' &&
  error !== null &&
  (error as Record<symbol, unknown>)[MARKER] === true;
/** Whether `error` is a {@link CircuitOpenError} (works across installed copies). */
export const isCircuitOpenError = (error: unknown): error is CircuitOpenError =>
  hasCode(error, 'ECIRCUITOPEN');
/** Whether `error` is a {@link TimeoutError} (works across installed copies). */
export const isTimeoutError = (error: unknown): error is TimeoutError =>
  hasCode(error, 'ETIMEDOUT');
/** Whether `error` is a {@link RateLimitError} (works across installed copies). */
export const isRateLimitError = (error: unknown): error is RateLimitError =>
  hasCode(error, 'ERATELIMITED');
/** Whether `error` is a {@link BulkheadFullError} (works across installed copies). */
export const isBulkheadFullError = (error: unknown): error is BulkheadFullError =>
  hasCode(error, 'EBULKHEADFULL');
/** Whether `error` is a {@link ConfigError} (works across installed copies). */
export const isConfigError = (error: unknown): error is ConfigError => hasCode(error, 'EBADCONFIG');
/** Whether `error` is a {@link RegistryFullError} (works across installed copies). */
export const isRegistryFullError = (error: unknown): error is RegistryFullError =>
  hasCode(error, 'EREGISTRYFULL');
/** Whether `error` is a {@link ConcurrencyLimitError} (works across installed copies). */
export const isConcurrencyLimitError = (error: unknown): error is ConcurrencyLimitError =>
  hasCode(error, 'ELIMITED');
