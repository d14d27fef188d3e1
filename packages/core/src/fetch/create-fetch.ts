import { isBranded } from '../brand';
import { CircuitBreakerRegistry } from '../breaker/registry';
import type { CircuitBreaker } from '../breaker/circuit-breaker';
import { durationOption, type Duration } from '../time/duration';
import { CircuitOpenError, ConfigError } from '../errors';
import { describeError, log, loggerOption, type Logger } from '../internal/log';
import { neverAbortedSignal } from '../internal/never-aborted';
import { parseRetryAfter } from './retry-after';
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
  /**
   * Where warnings go: an upstream `Retry-After` that was ignored, an `isFailure` that threw.
   * `console` or a pino-shaped logger. @defaultValue silent
   */
  logger?: Logger;
}

const OWNER = 'createFetch';
const KNOWN = [
  'registry',
  'timeoutMs',
  'retry',
  'isFailure',
  'retryNonIdempotent',
  'fetch',
  'logger',
] as const satisfies readonly (keyof CreateFetchOptions)[];
const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE', 'TRACE']);

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
  if (!isBranded(OWNER, 'registry', registry, 'CircuitBreakerRegistry')) {
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
  const logger = options.logger === undefined ? undefined : loggerOption(OWNER, options.logger);
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
  /** A predicate that throws counts the response as a failure; the caller still gets it. */
  const responseFailed = (response: Response): boolean => {
    try {
      return isFailure(response);
    } catch (error) {
      if (logger !== undefined) {
        log(logger, 'error', `[FETCH] isFailure threw: ${describeError(error)}`);
      }
      return true;
    }
  };
  const retryPolicy =
    options.retry === undefined
      ? undefined
      : nestedOption(OWNER, 'retry', () => buildRetry(options.retry!, responseFailed));

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
    if (responseFailed(response)) permit.failure();
    else permit.success();
    const retryAfterMs = openingRetryAfter(response, breaker.name, logger);
    // The breaker clamps it to its maxOpenMs.
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
      return isFailure(response) && openingRetryAfter(response, '', undefined) === undefined;
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
 * `Retry-After` (delay-seconds or an HTTP date) and that time is in the future. A value that does
 * not parse (malformed, absurdly long) is ignored with a warning: it never fails the caller.
 */
function openingRetryAfter(
  response: Response,
  origin: string,
  logger: Logger | undefined,
): number | undefined {
  if (response.status !== 429 && response.status !== 503) return undefined;
  const header = response.headers.get('retry-after');
  if (header === null) return undefined;
  const ms = parseRetryAfter(header, Date.now());
  if (ms === undefined) {
    if (logger !== undefined) {
      log(
        logger,
        'warn',
        `[FETCH] ${origin}: ignored an invalid Retry-After (${JSON.stringify(header.slice(0, 40))}${header.length > 40 ? '...' : ''})`,
      );
    }
    return undefined;
  }
  return ms > 0 ? ms : undefined;
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
