import { CircuitBreakerRegistry } from '../breaker/registry';
import type { CircuitBreaker } from '../breaker/circuit-breaker';
import { durationOption, type Duration } from '../time/duration';
import { CircuitOpenError, ConfigError } from '../errors';
import { neverAbortedSignal } from '../internal/never-aborted';
import { checkKnownKeys, checkObject, functionOption, nestedOption } from '../internal/validate';
import {
  type RetryEvent,
  type RetryOptions,
  type RetryOutcome,
  RetryPolicy,
  defaultRetryOn,
} from '../policies/retry';
import { TimeoutPolicy } from '../policies/timeout';

/** A function with the signature of the global `fetch`. */
export type FetchFunction = typeof globalThis.fetch;

/** Options of {@link createFetch}. */
export interface CreateFetchOptions {
  /**
   * Where the per-origin breakers live: `registry.get(origin)` is the breaker of
   * `https://api.example.com`, created from the registry's defaults on first use.
   * @defaultValue a new `CircuitBreakerRegistry()`
   */
  registry?: CircuitBreakerRegistry;
  /**
   * Time limit of each attempt until the response headers arrive (`'5s'` also accepted); the
   * body is not limited. A timed-out attempt rejects with `TimeoutError`. @defaultValue none
   */
  timeoutMs?: Duration;
  /**
   * Retries failed attempts of idempotent requests (see {@link retry}). By default network errors,
   * timeouts and failure responses are retried, never an open circuit, and never a response
   * whose `Retry-After` opened the circuit. @defaultValue no retries
   */
  retry?: RetryOptions;
  /** Whether a response counts as a failure of its origin. @defaultValue status >= 500 or 429 */
  isFailure?: (response: Response) => boolean;
  /** Retry POST, PATCH and other non-idempotent methods too. @defaultValue false */
  retryNonIdempotent?: boolean;
  /** The fetch to protect. @defaultValue `globalThis.fetch` */
  fetch?: FetchFunction;
}

const OWNER = 'createFetch';
const KNOWN = [
  'registry',
  'timeoutMs',
  'retry',
  'isFailure',
  'retryNonIdempotent',
  'fetch',
] as const;
const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE', 'TRACE']);
const DELTA_SECONDS = /^\d+$/;
/** The three HTTP-date forms all start with a day name and carry a time of day. */
const HTTP_DATE = /^(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun)[a-z]*,? .*\d{2}:\d{2}:\d{2}/;

const defaultIsFailure = (response: Response): boolean =>
  response.status >= 500 || response.status === 429;

/**
 * Wraps `fetch` with a circuit breaker per origin, an optional per-attempt timeout and optional
 * retries.
 *
 * - Network errors, timeouts and failure responses (`isFailure`) count against the origin's
 *   breaker; an abort by the caller counts as neither success nor failure.
 * - A 429 or 503 with `Retry-After` (seconds or an HTTP date) opens the origin's circuit for
 *   exactly that long.
 * - Only GET, HEAD, OPTIONS, PUT, DELETE and TRACE are retried unless `retryNonIdempotent` is set,
 *   and never a request whose body is a stream (it cannot be sent twice).
 * - The body of a failed attempt that is retried is cancelled, so its connection is released.
 * - The final response is returned even when it is a failure (a 5xx); only an open circuit
 *   rejects, with `CircuitOpenError`. URLs that are not http(s) pass through unprotected.
 *
 * @throws ConfigError when an option is invalid
 * @example
 * ```ts
 * const registry = new CircuitBreakerRegistry({ defaults: { failureThreshold: 5 } });
 * const fetch = createFetch({ registry, timeoutMs: '5s', retry: { maxAttempts: 3 } });
 * const response = await fetch('https://api.example.com/plants/42');
 * ```
 */
export function createFetch(options: CreateFetchOptions = {}): FetchFunction {
  const raw: unknown = options;
  checkObject(OWNER, 'options', raw);
  checkKnownKeys(OWNER, '', raw, KNOWN);
  const registry = options.registry ?? new CircuitBreakerRegistry();
  if (!(registry instanceof CircuitBreakerRegistry)) {
    throw new ConfigError(OWNER, 'registry', registry, 'must be a CircuitBreakerRegistry');
  }
  const fetchImpl: FetchFunction =
    options.fetch === undefined
      ? (input, init) => globalThis.fetch(input, init)
      : functionOption<FetchFunction>(OWNER, 'fetch', options.fetch);
  const isFailure =
    options.isFailure === undefined
      ? defaultIsFailure
      : functionOption<(response: Response) => boolean>(OWNER, 'isFailure', options.isFailure);
  const retryNonIdempotent = options.retryNonIdempotent ?? false;
  if (typeof retryNonIdempotent !== 'boolean') {
    throw new ConfigError(OWNER, 'retryNonIdempotent', retryNonIdempotent, 'must be a boolean');
  }
  const timeoutPolicy =
    options.timeoutMs === undefined
      ? undefined
      : new TimeoutPolicy(
          durationOption(OWNER, 'timeoutMs', options.timeoutMs, { allowZero: false, timer: true }),
        );
  const retryPolicy =
    options.retry === undefined
      ? undefined
      : nestedOption(OWNER, 'retry', () => buildRetry(options.retry!, isFailure));

  const attempt = async (
    breaker: CircuitBreaker,
    input: RequestInfo | URL,
    init: RequestInit | undefined,
    signal: AbortSignal,
  ): Promise<Response> => {
    const permit = breaker.tryAcquire();
    if (permit === undefined) throw CircuitOpenError.create(breaker.name, breaker.retryAfterMs);
    let response: Response;
    try {
      response =
        timeoutPolicy === undefined
          ? await fetchImpl(input, withSignal(init, signal))
          : await timeoutPolicy.execute((s) => fetchImpl(input, withSignal(init, s)), signal);
    } catch (error) {
      // The caller went away: that says nothing about the origin.
      if (signal.aborted) permit.ignore();
      else permit.failure(error);
      throw error;
    }
    let failed: boolean;
    try {
      failed = isFailure(response);
    } catch (error) {
      permit.ignore();
      throw error;
    }
    if (failed) permit.failure();
    else permit.success();
    const retryAfterMs = openingRetryAfter(response);
    if (retryAfterMs !== undefined) breaker.openFor(retryAfterMs);
    return response;
  };

  return async function protectedFetch(
    input: RequestInfo | URL,
    init?: RequestInit,
  ): Promise<Response> {
    const origin = originOf(input);
    if (origin === undefined) return fetchImpl(input, init);
    const breaker = registry.get(origin);
    const request = isRequest(input) ? input : undefined;
    const callerSignal = init?.signal ?? request?.signal ?? neverAbortedSignal;
    if (retryPolicy !== undefined && mayRetry(request, init, retryNonIdempotent)) {
      return retryPolicy.execute((signal) => attempt(breaker, input, init, signal), callerSignal);
    }
    return attempt(breaker, input, init, callerSignal);
  };
}

function buildRetry(
  options: RetryOptions,
  isFailure: (response: Response) => boolean,
): RetryPolicy {
  const raw: unknown = options;
  checkObject(OWNER, 'retry', raw);
  const onRetry = options.onRetry;
  const retryOn =
    options.retryOn ??
    ((outcome: RetryOutcome): boolean => {
      if (!('result' in outcome)) return defaultRetryOn(outcome);
      const response = outcome.result as Response;
      return isFailure(response) && openingRetryAfter(response) === undefined;
    });
  return new RetryPolicy({
    ...options,
    retryOn,
    onRetry: (event: RetryEvent) => {
      if ('result' in event) cancelBody(event.result as Response);
      if (typeof onRetry === 'function') onRetry(event);
    },
  });
}

/** Releases the connection of a response nobody will read. */
function cancelBody(response: Response): void {
  try {
    const body = response.body;
    if (body !== null && !body.locked) body.cancel().catch(noop);
  } catch {
    // Already consumed or not a stream: nothing holds the connection.
  }
}

function noop(): void {}

/**
 * The time a 429 or 503 response asks the client to stay away, when it says so in
 * `Retry-After` (delay-seconds or an HTTP date) and that time is in the future.
 */
function openingRetryAfter(response: Response): number | undefined {
  if (response.status !== 429 && response.status !== 503) return undefined;
  const ms = parseRetryAfter(response.headers.get('retry-after'), Date.now());
  return ms !== undefined && ms > 0 ? ms : undefined;
}

/** Parses a `Retry-After` value into milliseconds from `now`. */
export function parseRetryAfter(value: string | null, now: number): number | undefined {
  if (value === null) return undefined;
  const trimmed = value.trim();
  if (DELTA_SECONDS.test(trimmed)) return Number(trimmed) * 1_000;
  if (!HTTP_DATE.test(trimmed)) return undefined;
  // HTTP dates are always GMT; the asctime form does not say so.
  const date = Date.parse(/GMT|UTC/.test(trimmed) ? trimmed : `${trimmed} GMT`);
  if (Number.isNaN(date)) return undefined;
  return date > now ? date - now : 0;
}

function withSignal(init: RequestInit | undefined, signal: AbortSignal): RequestInit | undefined {
  if (signal === neverAbortedSignal || signal === init?.signal) return init;
  return { ...init, signal };
}

function isRequest(input: RequestInfo | URL): input is Request {
  return (
    typeof input === 'object' && input !== null && !(input instanceof URL) && 'method' in input
  );
}

function originOf(input: RequestInfo | URL): string | undefined {
  let url: URL;
  try {
    url = input instanceof URL ? input : new URL(typeof input === 'string' ? input : input.url);
  } catch {
    return undefined;
  }
  return url.protocol === 'http:' || url.protocol === 'https:' ? url.origin : undefined;
}

function mayRetry(
  request: Request | undefined,
  init: RequestInit | undefined,
  retryNonIdempotent: boolean,
): boolean {
  const method = (init?.method ?? request?.method ?? 'GET').toUpperCase();
  if (!retryNonIdempotent && !IDEMPOTENT.has(method)) return false;
  // A stream is consumed by the first attempt and cannot be sent again.
  if (init?.body !== undefined && init.body !== null) return !isStream(init.body);
  return request === undefined || request.body === null;
}

function isStream(body: BodyInit): boolean {
  return (
    (typeof ReadableStream !== 'undefined' && body instanceof ReadableStream) ||
    (typeof body === 'object' && Symbol.asyncIterator in body)
  );
}
