import { ConfigError } from '../errors';

/**
 * A duration in milliseconds, or a string such as `'250ms'`, `'30s'`, `'5m'`, `'1h'`, `'1d'`
 * (see {@link DurationString}).
 *
 * Any `string` is accepted at the type level, so a value read from the environment needs no cast
 * (`openDurationMs: process.env.OPEN_FOR ?? '30s'`); it is checked when the option is read, and a
 * string that is not a duration throws a `ConfigError` naming the option and the value.
 */
export type Duration = number | DurationString | (string & {});
/** The form a duration string takes: a number and a {@link DurationUnit}, as in `'30s'`. */
export type DurationString = `${number}${DurationUnit}`;
/** Units accepted in a duration string. */
export type DurationUnit = 'ms' | 's' | 'm' | 'h' | 'd';

const UNIT_MS: Record<DurationUnit, number> = {
  ms: 1,
  s: 1_000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
};
/** Longest duration string read: a longer one is refused before any pattern runs. */
const MAX_LENGTH = 64;
/** Unambiguous, so matching is linear in the input. */
const PATTERN = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)$/;

/**
 * Parses a {@link Duration} into milliseconds.
 *
 * @returns the duration in milliseconds, or `undefined` when the value is not a duration
 * @example parseDuration('30s') // 30000
 */
export function parseDuration(value: unknown): number | undefined {
  if (typeof value === 'number') return Number.isFinite(value) && value >= 0 ? value : undefined;
  if (typeof value !== 'string') return undefined;
  if (value.length > MAX_LENGTH) return undefined;
  const match = PATTERN.exec(value.trim());
  if (!match) return undefined;
  const ms = Number(match[1]) * UNIT_MS[match[2] as DurationUnit];
  return Number.isFinite(ms) ? ms : undefined;
}

/** The longest delay a Node.js timer can hold (a longer one fires after 1 ms). */
export const MAX_TIMER_MS = 2_147_483_647;

/**
 * Parses a duration option, throwing a {@link ConfigError} naming the option when it is invalid.
 * @internal
 */
export function durationOption(
  owner: string,
  path: string,
  value: unknown,
  {
    min = 0,
    allowZero = true,
    timer = false,
  }: { min?: number; allowZero?: boolean; timer?: boolean } = {},
): number {
  const ms = parseDuration(value);
  if (timer && ms !== undefined && ms > MAX_TIMER_MS) {
    throw new ConfigError(
      owner,
      path,
      value,
      `must be at most ${MAX_TIMER_MS} ms (the longest delay a timer can hold)`,
    );
  }
  if (ms === undefined || ms < min || (!allowZero && ms === 0)) {
    throw new ConfigError(
      owner,
      path,
      value,
      `must be a duration (milliseconds, or a string like '30s')${allowZero ? '' : ' above 0'}`,
    );
  }
  return ms;
}
