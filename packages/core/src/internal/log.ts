import { ConfigError } from '../errors';
import { isThenable } from './listeners';

/**
 * Where Breakwater writes its one-line logs: `console`, a pino or winston logger, or anything with
 * these methods. Each is called with one string.
 */
export interface Logger {
  info(message: string): void;
  warn(message: string): void;
  error(message: string): void;
}

/** Checks a `logger` option by shape. @internal */
export function loggerOption(owner: string, value: unknown): Logger {
  const candidate = value as Partial<Record<keyof Logger, unknown>> | null;
  if (
    typeof candidate !== 'object' ||
    candidate === null ||
    typeof candidate.info !== 'function' ||
    typeof candidate.warn !== 'function' ||
    typeof candidate.error !== 'function'
  ) {
    throw new ConfigError(owner, 'logger', value, 'must have info(), warn() and error() methods');
  }
  return value as Logger;
}

/**
 * Calls a logger method; a logger that throws, or returns a promise that rejects, never breaks
 * the caller. @internal
 */
export function log(logger: Logger, level: keyof Logger, message: string): void {
  try {
    const returned: unknown = logger[level](message);
    if (isThenable(returned)) returned.then(undefined, ignore);
  } catch {
    // Logging is best effort.
  }
}

function ignore(): void {}

/** A short, safe description of an error for a log line (no stack). @internal */
export function describeError(error: unknown): string {
  if (error instanceof Error) return `${error.name}: ${error.message}`;
  return typeof error === 'string' ? error : Object.prototype.toString.call(error);
}
