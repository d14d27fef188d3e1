/**
 * Thrown (as a rejection) by a Redis-backed store when its client has no ready connection, so
 * the command was not sent at all.
 *
 * A limiter in front of the store treats it like any store failure: its breaker counts it and
 * `onStoreFailure` decides the answer. It carries no stack trace: during an outage it can be
 * raised on every request until the limiter's breaker opens.
 */
export class RedisUnavailableError extends Error {
  override readonly name = 'RedisUnavailableError';
  /** Stable machine-readable code. */
  readonly code = 'EREDISUNAVAILABLE';
  /** The client's connection status when the command was refused, e.g. `'reconnecting'`. */
  readonly status: string;

  constructor(status: string) {
    super(`Redis is not available (client status "${status}"); the command was not sent`);
    this.status = status;
  }

  /** Creates the error without capturing a stack trace. */
  static create(status: string): RedisUnavailableError {
    const limit = Error.stackTraceLimit;
    Error.stackTraceLimit = 0;
    try {
      return new RedisUnavailableError(status);
    } finally {
      Error.stackTraceLimit = limit;
    }
  }
}

/**
 * Whether `error` is a {@link RedisUnavailableError}. Checks the shape, not `instanceof`, so it
 * also recognises errors from a second installed copy of the package.
 */
export function isRedisUnavailableError(error: unknown): error is RedisUnavailableError {
  return (
    typeof error === 'object' &&
    error !== null &&
    (error as { code?: unknown }).code === 'EREDISUNAVAILABLE' &&
    (error as { name?: unknown }).name === 'RedisUnavailableError'
  );
}
