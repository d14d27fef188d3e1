import type { RateLimitDecision } from '../rate-limit/rate-limit-store';
import { retryAfterSeconds } from './http-response';

/** Which rate-limit headers to send. */
export interface RateLimitHeaderOptions {
  /**
   * The `RateLimit-Policy` and `RateLimit` fields of draft-ietf-httpapi-ratelimit-headers-11.
   * @defaultValue true
   */
  standard?: boolean;
  /** `X-RateLimit-Limit`, `X-RateLimit-Remaining`, `X-RateLimit-Reset` (epoch seconds). @defaultValue false */
  legacy?: boolean;
}

/**
 * Quotes a policy name as a structured-field string: printable ASCII only, `"` and `\` escaped,
 * anything else replaced by `_`.
 */
export function quotePolicyName(name: string): string {
  let out = '"';
  for (let i = 0; i < name.length && i < 64; i++) {
    const code = name.charCodeAt(i);
    const ch = name[i]!;
    if (code < 0x20 || code > 0x7e) out += '_';
    else if (ch === '"' || ch === '\\') out += `\\${ch}`;
    else out += ch;
  }
  return `${out}"`;
}

/**
 * The rate-limit headers for a decision, as lower-case name/value pairs:
 * `RateLimit-Policy: "api";q=100;w=60` and `RateLimit: "api";r=42;t=17` (draft-11), the legacy
 * `X-RateLimit-*` trio on request, and `Retry-After` when the request was refused.
 */
export function rateLimitHeaders(
  name: string,
  windowMs: number,
  decision: RateLimitDecision,
  options: RateLimitHeaderOptions = {},
  nowMs?: number,
): Record<string, string> {
  const headers: Record<string, string> = {};
  const resetSeconds = Math.max(0, Math.ceil(decision.resetMs / 1000));
  if (options.standard !== false) {
    const quoted = quotePolicyName(name);
    headers['ratelimit-policy'] =
      `${quoted};q=${decision.limit};w=${Math.max(1, Math.ceil(windowMs / 1000))}`;
    headers.ratelimit = `${quoted};r=${decision.remaining};t=${resetSeconds}`;
  }
  if (options.legacy === true) {
    headers['x-ratelimit-limit'] = String(decision.limit);
    headers['x-ratelimit-remaining'] = String(decision.remaining);
    // Only the legacy epoch-seconds header needs the wall clock.
    headers['x-ratelimit-reset'] = String(
      Math.ceil(((nowMs ?? Date.now()) + decision.resetMs) / 1000),
    );
  }
  if (!decision.allowed) {
    headers['retry-after'] = String(retryAfterSeconds(decision.retryAfterMs));
  }
  return headers;
}
