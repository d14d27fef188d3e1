import type { RateLimitDecision } from '../rate-limit/rate-limit-store';
import {
  isBulkheadFullError,
  isCircuitOpenError,
  isConcurrencyLimitError,
  isRateLimitError,
  isTimeoutError,
} from '../errors';

/** A complete HTTP answer decided by core; adapters write it as it is. */
export interface HttpResponse {
  readonly kind: 'response';
  readonly status: number;
  readonly headers: Readonly<Record<string, string>>;
  /** The body, or `''` for none. */
  readonly body: string;
}

/** Media type of RFC 9457 problem details. */
export const PROBLEM_JSON = 'application/problem+json';

/**
 * Whole seconds for a `Retry-After` header: rounded up, at least 1 (a client told 0 would retry
 * at once).
 */
export function retryAfterSeconds(ms: number): number {
  return Number.isFinite(ms) && ms > 1000 ? Math.ceil(ms / 1000) : 1;
}

/**
 * An `application/problem+json` response (RFC 9457). `extra` members are added to the body;
 * `headers` are added to the response.
 */
export function problemResponse(
  status: number,
  title: string,
  detail?: string,
  extra?: Readonly<Record<string, unknown>>,
  headers?: Readonly<Record<string, string>>,
): HttpResponse {
  const body: Record<string, unknown> = { type: 'about:blank', title, status };
  if (detail !== undefined) body.detail = detail;
  if (extra !== undefined) Object.assign(body, extra);
  return {
    kind: 'response',
    status,
    headers: { 'content-type': PROBLEM_JSON, 'cache-control': 'no-store', ...headers },
    body: JSON.stringify(body),
  };
}

/** A JSON response with `content-type` (default `application/json`). */
export function jsonResponse(
  status: number,
  value: unknown,
  contentType = 'application/json',
): HttpResponse {
  return {
    kind: 'response',
    status,
    headers: { 'content-type': `${contentType}; charset=utf-8`, 'cache-control': 'no-store' },
    body: JSON.stringify(value),
  };
}

/** The 503 answer for a call an open circuit rejected: names the breaker, says when to retry. */
export function circuitOpenResponse(breaker: string, retryAfterMs: number): HttpResponse {
  const seconds = retryAfterSeconds(retryAfterMs);
  return problemResponse(
    503,
    'Service Unavailable',
    `Circuit breaker "${breaker}" is open`,
    { breaker, retryAfter: seconds },
    { 'retry-after': String(seconds) },
  );
}

/** The 429 answer for a refused rate-limit decision. */
export function rateLimitedResponse(limiter: string, decision: RateLimitDecision): HttpResponse {
  const seconds = retryAfterSeconds(decision.retryAfterMs);
  return problemResponse(
    429,
    'Too Many Requests',
    `Rate limit "${limiter}" exceeded`,
    { limiter, retryAfter: seconds },
    { 'retry-after': String(seconds) },
  );
}

/**
 * The HTTP answer for a Breakwater error: `CircuitOpenError`, `BulkheadFullError` and
 * `ConcurrencyLimitError` → 503,
 * `RateLimitError` → 429, `TimeoutError` → 504, each with `Retry-After` where it applies.
 * Returns `undefined` for any other error. The error's own message is not exposed beyond what
 * the error type says.
 */
export function errorResponse(error: unknown): HttpResponse | undefined {
  if (isCircuitOpenError(error)) return circuitOpenResponse(error.breaker, error.retryAfterMs);
  if (isRateLimitError(error)) {
    const seconds = retryAfterSeconds(error.retryAfterMs);
    return problemResponse(
      429,
      'Too Many Requests',
      'Rate limit exceeded',
      { retryAfter: seconds },
      {
        'retry-after': String(seconds),
      },
    );
  }
  if (isTimeoutError(error))
    return problemResponse(504, 'Gateway Timeout', 'The operation timed out');
  if (isConcurrencyLimitError(error)) {
    const seconds = retryAfterSeconds(error.retryAfterMs);
    return problemResponse(
      503,
      'Service Unavailable',
      'Concurrency limit reached',
      { limiter: error.limiter, retryAfter: seconds },
      { 'retry-after': String(seconds) },
    );
  }
  if (isBulkheadFullError(error)) {
    return problemResponse(503, 'Service Unavailable', 'Too many concurrent requests', undefined, {
      'retry-after': '1',
    });
  }
  return undefined;
}
