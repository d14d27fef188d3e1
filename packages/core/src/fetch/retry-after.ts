/** Longest `Retry-After` value read, in characters; a longer header is not a valid one. */
const MAX_LENGTH = 64;
/** Delay-seconds of up to 12 digits (about 31,700 years): anything longer is absurd. */
const DELTA_SECONDS = /^\d{1,12}$/;
/** The three HTTP-date forms all start with a day name and carry a time of day. */
const HTTP_DATE = /^(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun)[a-z]*,? [^:]{0,40}\d{2}:\d{2}:\d{2}/;

/**
 * Parses a `Retry-After` value (delay-seconds or an HTTP date) into milliseconds from `now`.
 *
 * Bounded work whatever the input: a value over 64 characters, a delay of more than 12 digits, a
 * malformed date or a non-finite result gives `undefined`. A date in the past gives 0. Callers
 * clamp the result to their own limit (a breaker's `maxOpenMs`).
 *
 * @example
 * ```ts
 * parseRetryAfter('120', Date.now()); // 120000
 * parseRetryAfter('Wed, 21 Oct 2026 07:28:00 GMT', Date.now()); // ms until then, or 0
 * parseRetryAfter('9'.repeat(400), Date.now()); // undefined
 * ```
 */
export function parseRetryAfter(value: string | null | undefined, now: number): number | undefined {
  if (typeof value !== 'string' || value.length > MAX_LENGTH) return undefined;
  const trimmed = value.trim();
  if (DELTA_SECONDS.test(trimmed)) return Number(trimmed) * 1_000;
  if (!HTTP_DATE.test(trimmed)) return undefined;
  // HTTP dates are always GMT; the asctime form does not say so.
  const date = Date.parse(/GMT|UTC/.test(trimmed) ? trimmed : `${trimmed} GMT`);
  if (!Number.isFinite(date)) return undefined;
  return date > now ? date - now : 0;
}
