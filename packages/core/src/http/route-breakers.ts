import { isBranded } from '../brand';
import { CircuitBreaker, type BreakerPermit } from '../breaker/circuit-breaker';
import { CircuitBreakerRegistry, type BreakerDefaults } from '../breaker/registry';
import { ConfigError, TimeoutError } from '../errors';
import { functionOption, integerOption, stringOption } from '../internal/validate';
import { durationOption, type Duration } from '../time/duration';
import { HookErrors } from './hook-errors';
import { circuitOpenResponse, problemResponse, type HttpResponse } from './http-response';

/** Options of the `circuitBreaker()` middleware of every HTTP adapter (framework glue aside). */
export interface RouteBreakerOptions<Fallback = never> extends Omit<
  BreakerDefaults,
  'timeoutMs' | 'isResultFailure' | 'fallback'
> {
  /**
   * One breaker name for every request through the middleware. Without it, each route gets its
   * own breaker named `METHOD /route/:pattern`.
   */
  name?: string;
  /** Where per-route breakers live. @defaultValue a registry bounded by `maxRoutes` */
  registry?: CircuitBreakerRegistry;
  /**
   * Most per-route breakers; requests for further routes (and routes whose name would exceed 200
   * characters) share one overflow breaker per method (`METHOD *`), so a flood of distinct URLs
   * cannot create breakers without limit.
   * @defaultValue 1 000
   */
  maxRoutes?: number;
  /**
   * Which response statuses count as failures. One that throws counts the request by the default
   * rule and the error goes to the logger.
   * @defaultValue `status >= 500`
   */
  isFailureStatus?: (status: number) => boolean;
  /**
   * Time limit of a request through the route: the handler gets an `AbortSignal` (Express
   * `req.signal`, Koa `ctx.state.signal`) that aborts at the limit, and a response not started
   * by then is answered 504 (problem+json) and counted as a failure.
   * @defaultValue off
   */
  timeoutMs?: Duration;
  /**
   * Most requests in flight through one breaker; beyond it, 503 at once (problem+json,
   * `Retry-After: 1`), not counted as a failure (opossum's `capacity`).
   * @defaultValue no bound
   */
  maxConcurrent?: number;
  /**
   * The adapter's handler that answers while the circuit is open, instead of the 503.
   * @defaultValue none (503 with `Retry-After`)
   */
  fallback?: Fallback;
}

/** A route's protection: its breaker and the requests in flight through it. */
export class RouteEntry {
  /** Requests admitted and not yet finished. */
  inFlight = 0;
  constructor(
    /** The route's breaker. */
    readonly breaker: CircuitBreaker,
  ) {}
}

const OWNER = 'circuitBreaker';
/** Longest breaker name (the breaker's own bound). */
const MAX_NAME = 200;
/**
 * `Retry-After` of a circuit forced open by an operator: it has no scheduled end, and a short
 * value would invite every client to hammer it.
 */
export const FORCED_OPEN_RETRY_AFTER_MS = 60_000;
const defaultIsFailureStatus = (status: number): boolean => status >= 500;

/**
 * The framework-free part of route-level protection: picks the breaker for a request, admits it
 * through `tryAcquire()` (no exception on the reject path), bounds requests in flight and settles
 * the permit from the response. Adapters call it and write what it returns.
 *
 * @throws ConfigError at construction when an option is invalid
 */
export class RouteBreakers<Fallback = never> {
  /** The handler that answers while the circuit is open, if one was given. */
  readonly fallback: Fallback | undefined;
  /** The route time limit in milliseconds (0: off). */
  readonly timeoutMs: number;
  /** Most requests in flight per breaker (`Infinity`: no bound). */
  readonly maxConcurrent: number;
  /** Where failing hooks are reported. @internal */
  readonly hookErrors: HookErrors;
  /** The entry of the one breaker every request uses (`name` or a breaker given), if any. */
  readonly fixed: RouteEntry | undefined;
  private readonly registry: CircuitBreakerRegistry | undefined;
  private readonly options: BreakerDefaults;
  private readonly maxRoutes: number;
  /** Route entries by method, then by pattern (no string built per request). */
  private readonly routes = new Map<string, Map<string, RouteEntry>>();
  private routeCount = 0;
  /** Overflow entries by method. */
  private readonly overflow = new Map<string, RouteEntry>();
  private readonly isFailureStatus: (status: number) => boolean;

  constructor(input: RouteBreakerOptions<Fallback> | CircuitBreaker = {}) {
    if (isBranded(OWNER, 'options', input, 'CircuitBreaker')) {
      this.fallback = undefined;
      this.fixed = new RouteEntry(input);
      this.options = {};
      this.maxRoutes = 0;
      this.timeoutMs = 0;
      this.maxConcurrent = Infinity;
      this.isFailureStatus = defaultIsFailureStatus;
      this.hookErrors = new HookErrors('CIRCUIT', input.name, undefined);
      return;
    }
    if (typeof input !== 'object' || input === null || Array.isArray(input)) {
      throw new ConfigError(OWNER, 'options', input, 'must be an object or a CircuitBreaker');
    }
    const {
      name,
      registry,
      maxRoutes,
      isFailureStatus,
      fallback,
      timeoutMs,
      maxConcurrent,
      ...breakerOptions
    } = input;
    if (fallback !== undefined && typeof fallback !== 'function') {
      throw new ConfigError(OWNER, 'fallback', fallback, 'must be a function');
    }
    this.fallback = fallback;
    if ('isResultFailure' in breakerOptions) {
      throw new ConfigError(
        OWNER,
        'isResultFailure',
        (breakerOptions as Record<string, unknown>).isResultFailure,
        'does not apply to a route breaker (it sees only the response)',
      );
    }
    this.timeoutMs =
      timeoutMs === undefined
        ? 0
        : durationOption(OWNER, 'timeoutMs', timeoutMs, { allowZero: false, timer: true });
    this.maxConcurrent =
      maxConcurrent === undefined
        ? Infinity
        : integerOption(OWNER, 'maxConcurrent', maxConcurrent, 1);
    this.isFailureStatus =
      isFailureStatus === undefined
        ? defaultIsFailureStatus
        : functionOption<(status: number) => boolean>(OWNER, 'isFailureStatus', isFailureStatus);
    if (
      registry !== undefined &&
      !isBranded(OWNER, 'registry', registry, 'CircuitBreakerRegistry')
    ) {
      throw new ConfigError(OWNER, 'registry', registry, 'must be a CircuitBreakerRegistry');
    }
    this.maxRoutes =
      maxRoutes === undefined ? 1_000 : integerOption(OWNER, 'maxRoutes', maxRoutes, 1, 1_000_000);
    this.options = breakerOptions;
    const logger = breakerOptions.logger;
    if (name !== undefined) {
      const fixedName = stringOption(OWNER, 'name', name);
      this.fixed = new RouteEntry(
        registry?.get(fixedName, breakerOptions) ??
          new CircuitBreaker({ ...breakerOptions, name: fixedName }),
      );
      this.hookErrors = new HookErrors('CIRCUIT', fixedName, logger);
      return;
    }
    // Validate the breaker options once, now, rather than at the first request.
    new CircuitBreaker({ ...breakerOptions, name: 'validation' });
    this.registry = registry ?? new CircuitBreakerRegistry({ maxBreakers: this.maxRoutes + 16 });
    this.hookErrors = new HookErrors('CIRCUIT', 'route breakers', logger);
  }

  /**
   * The route entry for a request: the fixed one, or the route's (`METHOD pattern`). `pattern`
   * should be the framework's route pattern; a raw path works but spends the `maxRoutes` bound.
   */
  routeFor(method: string, pattern: string): RouteEntry {
    if (this.fixed !== undefined) return this.fixed;
    const verb = method === 'HEAD' ? 'GET' : method; // HEAD is GET without a body: one circuit
    let byPattern = this.routes.get(verb);
    if (byPattern === undefined) {
      byPattern = new Map();
      this.routes.set(verb, byPattern);
    }
    const known = byPattern.get(pattern);
    if (known !== undefined) return known;
    if (this.routeCount < this.maxRoutes && verb.length + 1 + pattern.length <= MAX_NAME) {
      const breaker = this.create(`${verb} ${pattern}`);
      if (breaker !== undefined) {
        const entry = new RouteEntry(breaker);
        byPattern.set(pattern, entry);
        this.routeCount++;
        return entry;
      }
    }
    return this.overflowFor(verb);
  }

  /** The breaker for a request; see {@link routeFor}. */
  breakerFor(method: string, pattern: string): CircuitBreaker {
    return this.routeFor(method, pattern).breaker;
  }

  /**
   * Admits a request through `route`: a permit (the request is then in flight until
   * {@link leave}), or the 503 answer when the circuit is open or `maxConcurrent` is reached.
   */
  enter(route: RouteEntry): BreakerPermit | HttpResponse {
    if (route.inFlight >= this.maxConcurrent) return busyResponse(route.breaker.name);
    const admitted = this.admit(route.breaker);
    if (!('kind' in admitted)) route.inFlight++;
    return admitted;
  }

  /** A request admitted by {@link enter} has finished. */
  leave(route: RouteEntry): void {
    if (route.inFlight > 0) route.inFlight--;
  }

  /** Admits a request: a permit, or the 503 answer for an open circuit. */
  admit(breaker: CircuitBreaker): BreakerPermit | HttpResponse {
    const permit = breaker.tryAcquire();
    if (permit !== undefined) return permit;
    const forced = breaker.state === 'forced_open';
    return circuitOpenResponse(
      breaker.name,
      forced ? FORCED_OPEN_RETRY_AFTER_MS : breaker.retryAfterMs,
    );
  }

  /**
   * Settles a permit from an error thrown through the middleware: an error that names an HTTP
   * status (`status` or `statusCode`, 400–599, as http-errors and `ctx.throw(404)` do) counts as
   * that status; any other error is a failure (subject to the breaker's `isFailure`).
   */
  settleError(permit: BreakerPermit, error: unknown): void {
    const status = errorStatus(error);
    if (status === undefined) permit.failure(error);
    else this.settle(permit, status);
  }

  /** Settles a permit from the status the response was sent with. */
  settle(permit: BreakerPermit, status: number): void {
    let failed: boolean;
    try {
      failed = this.isFailureStatus(status);
    } catch (error) {
      failed = status >= 500;
      this.hookErrors.report('isFailureStatus', error, `status ${status} counted by status >= 500`);
    }
    if (failed) permit.failure();
    else permit.success();
  }

  /** The error a route's AbortSignal is aborted with when its time limit passes. */
  timedOutError(): TimeoutError {
    return new TimeoutError(this.timeoutMs);
  }

  /** The route's time limit passed: counts a failure and returns the 504 answer. */
  timedOut(permit: BreakerPermit): HttpResponse {
    permit.failure(this.timedOutError());
    return TIMEOUT_RESPONSE;
  }

  /** A breaker from the registry, or `undefined` when it cannot be had (full, bad name). */
  private create(name: string): CircuitBreaker | undefined {
    const registry = this.registry!;
    try {
      return registry.find(name) ?? registry.get(name, this.options);
    } catch {
      return undefined;
    }
  }

  private overflowFor(verb: string): RouteEntry {
    let entry = this.overflow.get(verb);
    if (entry === undefined) {
      const name = `${verb} *`;
      const breaker = this.create(name) ?? new CircuitBreaker({ ...this.options, name });
      entry = new RouteEntry(breaker);
      this.overflow.set(verb, entry);
    }
    return entry;
  }
}

const TIMEOUT_RESPONSE = problemResponse(504, 'Gateway Timeout', 'The request timed out');

function busyResponse(breaker: string): HttpResponse {
  return problemResponse(
    503,
    'Service Unavailable',
    'Too many concurrent requests',
    { breaker, retryAfter: 1 },
    { 'retry-after': '1' },
  );
}

/** The HTTP status an error names (`status` or `statusCode`, 400–599), if any. */
export function errorStatus(error: unknown): number | undefined {
  if (typeof error !== 'object' || error === null) return undefined;
  const { status, statusCode } = error as { status?: unknown; statusCode?: unknown };
  const named = typeof status === 'number' ? status : statusCode;
  return typeof named === 'number' && Number.isInteger(named) && named >= 400 && named <= 599
    ? named
    : undefined;
}
