import { parseDuration, type Duration, type DurationUnit } from '../time/duration';
import { ConfigError } from '../errors';

/**
 * A rate written as `'<limit>/<window>'`: `'100/h'`, `'10/s'`, `'5/15m'`, `'1000/1d'`,
 * `'50/500ms'`. The window is a duration whose number may be left out (meaning 1).
 */
export type RateString = `${number}/${DurationUnit}` | `${number}/${number}${DurationUnit}`;

/** A rate as an object: `limit` requests (or cost units) per `window`. */
export interface RateSpec {
  /** Requests (or cost units) allowed per window: an integer >= 1. */
  limit: number;
  /** The window: milliseconds or a duration string such as `'15m'`. */
  window: Duration;
}

/**
 * A rate in either form accepted by {@link parseRate}: a {@link RateString} or a
 * {@link RateSpec}.
 *
 * Any `string` is accepted at the type level, so a value read from the environment needs no cast
 * (`rate: process.env.API_RATE ?? '100/m'`); it is checked when the option is read, and a string
 * that is not a rate throws a `ConfigError` naming the option and the value.
 */
export type Rate = RateString | RateSpec | (string & {});

/** A parsed rate. */
export interface ParsedRate {
  /** Requests (or cost units) allowed per window. */
  limit: number;
  /** The window length in whole milliseconds. */
  windowMs: number;
}

/** Longest rate string read: a longer one is refused before any pattern runs. */
const MAX_RATE_LENGTH = 64;
/** Unambiguous (no two adjacent optional runs), so matching is linear in the input. */
const RATE_PATTERN = /^(\d+)\s*\/\s*(?:(\d+(?:\.\d+)?)\s*)?(ms|s|m|h|d)$/;

/**
 * Parses a rate such as `'100/h'` or `{ limit: 100, window: '1h' }`.
 *
 * The limit must be an integer >= 1 and the window a whole number of milliseconds >= 1.
 *
 * @throws ConfigError (path `rate`) when the value is not a valid rate
 * @example
 * ```ts
 * parseRate('100/h');                        // { limit: 100, windowMs: 3_600_000 }
 * parseRate('5/15m');                        // { limit: 5, windowMs: 900_000 }
 * parseRate({ limit: 10, window: '1s' });    // { limit: 10, windowMs: 1_000 }
 * ```
 */
export function parseRate(value: Rate): ParsedRate {
  return rateOption('parseRate', 'rate', value);
}

/**
 * Parses a rate option, throwing a {@link ConfigError} naming `owner` and `path`.
 * @internal
 */
export function rateOption(owner: string, path: string, value: unknown): ParsedRate {
  let limit: unknown;
  let windowMs: number | undefined;
  if (typeof value === 'string') {
    const match = value.length <= MAX_RATE_LENGTH ? RATE_PATTERN.exec(value.trim()) : null;
    if (match) {
      limit = Number(match[1]);
      const unit = parseDuration(`${match[2] ?? '1'}${match[3]}`);
      windowMs = unit;
    }
  } else if (typeof value === 'object' && value !== null && !Array.isArray(value)) {
    const spec = value as Partial<Record<string, unknown>>;
    for (const key of Object.keys(spec)) {
      if (key !== 'limit' && key !== 'window') {
        throw new ConfigError(owner, `${path}.${key}`, spec[key], 'is not a known option');
      }
    }
    limit = spec.limit;
    if (typeof limit !== 'number' || !Number.isSafeInteger(limit) || limit < 1) {
      throw new ConfigError(owner, `${path}.limit`, limit, 'must be an integer >= 1');
    }
    windowMs = parseDuration(spec.window);
    if (windowMs === undefined || !Number.isSafeInteger(windowMs) || windowMs < 1) {
      throw new ConfigError(
        owner,
        `${path}.window`,
        spec.window,
        "must be a whole number of milliseconds >= 1, or a string like '15m'",
      );
    }
    return { limit, windowMs };
  }
  if (
    typeof limit !== 'number' ||
    !Number.isSafeInteger(limit) ||
    limit < 1 ||
    windowMs === undefined ||
    !Number.isSafeInteger(windowMs) ||
    windowMs < 1
  ) {
    throw new ConfigError(
      owner,
      path,
      value,
      "must be a rate like '100/h', '10/s' or '5/15m' (an integer limit >= 1 per a window of at least 1 ms), or { limit, window }",
    );
  }
  return { limit, windowMs };
}
