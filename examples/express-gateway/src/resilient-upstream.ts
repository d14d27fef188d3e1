/**
 * The resilient proxy of one upstream: retry with jitter, outside the service's circuit breaker,
 * outside a per-attempt timeout; the upstream's `Retry-After` honoured by opening the circuit;
 * and, where it makes sense, the last good answer served (marked degraded) when the upstream
 * cannot answer.
 */
import {
  circuitOpenResponse,
  defaultRetryOn,
  errorResponse,
  exponential,
  isCircuitOpenError,
  isTimeoutError,
  jsonResponse,
  pipeline,
  problemResponse,
  retry,
  timeout,
  type BreakerDefaults,
  type CircuitBreaker,
  type CircuitBreakerRegistry,
  type HttpResponse,
  type Policy,
  type RetryOutcome,
  type RetryPolicy,
  type TimeoutPolicy,
} from '@breakwater/core';
import type { GatewayStats, ServiceName } from './stats';

/** An upstream answered with a status that is not 2xx. */
export class UpstreamHttpError extends Error {
  constructor(
    readonly service: string,
    readonly status: number,
    /** From the upstream's `Retry-After` (delay-seconds), when it sent one. */
    readonly retryAfterMs: number | undefined,
  ) {
    super(`${service} answered HTTP ${status}`);
    this.name = 'UpstreamHttpError';
  }

  /** Whether the upstream is at fault: 5xx, or a 429 that does not say how long to wait. */
  get isUpstreamFault(): boolean {
    return this.status >= 500 || (this.status === 429 && this.retryAfterMs === undefined);
  }
}

/** How one upstream is called. */
export interface ResilientUpstreamOptions {
  name: ServiceName;
  baseUrl: string;
  /** The registry the service's breaker is taken from (`registry.get(name, breaker)`). */
  registry: CircuitBreakerRegistry;
  breaker: BreakerDefaults;
  /** Time limit of each attempt (headers and body). */
  timeoutMs: number;
  /** Attempts per request, the first included. */
  maxAttempts: number;
  /** First retry delay; later ones double, with full jitter, up to 8 times this. */
  retryDelayMs: number;
  /**
   * Keep the last good answer per key and serve it, marked degraded, when the upstream fails or
   * its circuit is open. `freshMs > 0` also answers from the cache without calling the upstream
   * while the entry is younger than that (saves a quota). `false`: no fallback.
   */
  cache: { freshMs: number; maxEntries: number } | false;
  stats: GatewayStats;
  /** Told when an upstream's `Retry-After` opens the circuit. */
  onNotice?: ((notice: { service: string; message: string }) => void) | undefined;
}

/** One call to the upstream. */
export interface UpstreamRequest {
  path: string;
  method?: 'GET' | 'POST';
  /** A JSON body. */
  body?: unknown;
  /** What the last good answer is kept under. */
  cacheKey: string;
}

interface CacheEntry {
  data: unknown;
  at: number;
}

/** One upstream behind its breaker, retry and timeout, with an optional last-good-answer cache. */
export class ResilientUpstream {
  readonly name: ServiceName;
  readonly breaker: CircuitBreaker;
  /** The retry and timeout policies, by the name their metrics carry. */
  readonly policies: Readonly<Record<string, RetryPolicy | TimeoutPolicy>>;
  private readonly baseUrl: string;
  private readonly policy: Policy;
  private readonly cache: Map<string, CacheEntry> | undefined;
  private readonly freshMs: number;
  private readonly maxEntries: number;
  private readonly stats: GatewayStats;
  private readonly onNotice: ResilientUpstreamOptions['onNotice'];

  constructor(options: ResilientUpstreamOptions) {
    this.name = options.name;
    this.baseUrl = options.baseUrl;
    this.stats = options.stats;
    this.onNotice = options.onNotice;
    this.breaker = options.registry.get(options.name, {
      // 4xx answers say nothing about the upstream's health (a 429 with Retry-After is handled
      // by opening the circuit for exactly that long).
      isFailure: (error) => !(error instanceof UpstreamHttpError) || error.isUpstreamFault,
      ...options.breaker,
    });
    const name = options.name;
    const retries = retry({
      maxAttempts: options.maxAttempts,
      backoff: exponential({
        initialMs: options.retryDelayMs,
        maxMs: options.retryDelayMs * 8,
        jitter: 'full',
      }),
      retryOn: (outcome: RetryOutcome) =>
        'error' in outcome &&
        defaultRetryOn(outcome) &&
        !(outcome.error instanceof UpstreamHttpError && outcome.error.status < 500),
      onRetry: () => this.stats.count(name, 'retries'),
    });
    const limit = timeout(options.timeoutMs);
    this.policies = { [`${name} retry`]: retries, [`${name} timeout`]: limit };
    this.policy = pipeline(retries, this.breaker, limit);
    this.cache = options.cache === false ? undefined : new Map();
    this.freshMs = options.cache === false ? 0 : options.cache.freshMs;
    this.maxEntries = options.cache === false ? 0 : options.cache.maxEntries;
  }

  /**
   * Calls the upstream and returns the gateway's answer: the upstream's JSON in an envelope
   * `{ service, degraded, data }`, the last good answer (`degraded: true`), or a problem+json
   * error (503 with Retry-After while the circuit is open, 502, 504, or the upstream's 4xx).
   */
  async call(
    request: UpstreamRequest,
    requestId: string,
    signal: AbortSignal,
  ): Promise<HttpResponse> {
    const cached = this.cache?.get(request.cacheKey);
    if (cached !== undefined && Date.now() - cached.at < this.freshMs) {
      this.stats.count(this.name, 'successes');
      return this.answer(cached.data, false);
    }
    let attempts = 0;
    try {
      const data = await this.policy.execute((attemptSignal) => {
        attempts++;
        return this.fetchJson(request, requestId, attemptSignal);
      }, signal);
      this.remember(request.cacheKey, data);
      this.stats.count(this.name, 'successes');
      return this.answer(data, false);
    } catch (error) {
      return this.failed(error, attempts, cached, signal);
    }
  }

  private failed(
    error: unknown,
    attempts: number,
    cached: CacheEntry | undefined,
    signal: AbortSignal,
  ): HttpResponse {
    if (signal.aborted) {
      // The client went away; nobody reads this and the breaker did not count it.
      return problemResponse(503, 'Service Unavailable', 'The request was cancelled');
    }
    if (error instanceof UpstreamHttpError && error.status < 500 && error.status !== 429) {
      // The client's mistake (an unknown image or SKU): passed on, not a failure.
      return problemResponse(
        error.status,
        error.status === 404 ? 'Not Found' : 'Bad Request',
        error.message,
      );
    }
    this.stats.count(
      this.name,
      isCircuitOpenError(error) && attempts === 0 ? 'rejected' : 'failures',
    );
    const retryAfterMs =
      error instanceof UpstreamHttpError && error.status === 429 ? error.retryAfterMs : undefined;
    if (retryAfterMs !== undefined) this.honourRetryAfter(retryAfterMs);
    if (cached !== undefined) {
      this.stats.count(this.name, 'fallbacks');
      return this.answer(cached.data, true, reasonOf(error), cached.at);
    }
    if (isCircuitOpenError(error)) return circuitOpenResponse(this.name, error.retryAfterMs);
    if (retryAfterMs !== undefined)
      return circuitOpenResponse(this.name, this.breaker.retryAfterMs);
    return (
      errorResponse(error) ??
      problemResponse(502, 'Bad Gateway', `Upstream "${this.name}" failed`, { service: this.name })
    );
  }

  /** The upstream said how long to stay away: open the circuit for exactly that long. */
  private honourRetryAfter(ms: number): void {
    if (this.breaker.state === 'open' && this.breaker.retryAfterMs >= ms) return;
    this.onNotice?.({
      service: this.name,
      message: `upstream answered 429, Retry-After ${Math.round(ms / 1_000)} s`,
    });
    this.breaker.openFor(ms);
  }

  private async fetchJson(
    request: UpstreamRequest,
    requestId: string,
    signal: AbortSignal,
  ): Promise<unknown> {
    const headers: Record<string, string> = {
      accept: 'application/json',
      'x-request-id': requestId,
    };
    const init: RequestInit = { method: request.method ?? 'GET', headers, signal };
    if (request.body !== undefined) {
      headers['content-type'] = 'application/json';
      init.body = JSON.stringify(request.body);
    }
    const response = await fetch(this.baseUrl + request.path, init);
    if (!response.ok) {
      // Release the connection; the body of an error is not needed.
      await response.body?.cancel();
      throw new UpstreamHttpError(
        this.name,
        response.status,
        retryAfterMs(response.headers.get('retry-after')),
      );
    }
    return (await response.json()) as unknown;
  }

  private remember(key: string, data: unknown): void {
    const cache = this.cache;
    if (cache === undefined) return;
    cache.delete(key);
    cache.set(key, { data, at: Date.now() });
    if (cache.size > this.maxEntries) cache.delete(cache.keys().next().value!);
  }

  private answer(
    data: unknown,
    degraded: boolean,
    reason?: string,
    cachedAt?: number,
  ): HttpResponse {
    const body: Record<string, unknown> = { service: this.name, degraded };
    if (degraded) {
      body.reason = reason;
      body.cachedAt = new Date(cachedAt!).toISOString();
    }
    body.data = data;
    return jsonResponse(200, body);
  }
}

function reasonOf(error: unknown): string {
  if (isCircuitOpenError(error)) return 'circuit open';
  if (isTimeoutError(error)) return 'upstream timed out';
  if (error instanceof UpstreamHttpError && error.status === 429) return 'upstream quota exceeded';
  return 'upstream failed';
}

function retryAfterMs(value: string | null): number | undefined {
  if (value === null || !/^\d+$/.test(value.trim())) return undefined;
  return Number(value.trim()) * 1_000;
}
