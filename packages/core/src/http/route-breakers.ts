import { CircuitBreaker, type BreakerPermit } from '../breaker/circuit-breaker';
import { CircuitBreakerRegistry, type BreakerDefaults } from '../breaker/registry';
import { ConfigError, isRegistryFullError } from '../errors';
import { functionOption, integerOption, stringOption } from '../internal/validate';
import { circuitOpenResponse, type HttpResponse } from './http-response';

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
   * Most per-route breakers; requests for further routes share one overflow breaker per method
   * (`METHOD *`), so a flood of distinct URLs cannot create breakers without limit.
   * @defaultValue 1 000
   */
  maxRoutes?: number;
  /** Which response statuses count as failures. @defaultValue `status >= 500` */
  isFailureStatus?: (status: number) => boolean;
  /**
   * The adapter's handler that answers while the circuit is open, instead of the 503.
   * @defaultValue none (503 with `Retry-After`)
   */
  fallback?: Fallback;
}

const OWNER = 'circuitBreaker';
const defaultIsFailureStatus = (status: number): boolean => status >= 500;
// isFailure stays: it classifies errors thrown through the middleware (permit.failure(error)).
const NOT_FOR_ROUTES = ['timeoutMs', 'isResultFailure'] as const;

/**
 * The framework-free part of route-level protection: picks the breaker for a request, admits it
 * through `tryAcquire()` (no exception on the reject path) and settles the permit from the
 * response status. Adapters call it and write what it returns.
 *
 * @throws ConfigError at construction when an option is invalid
 */
export class RouteBreakers<Fallback = never> {
  /** The handler that answers while the circuit is open, if one was given. */
  readonly fallback: Fallback | undefined;
  private readonly fixed: CircuitBreaker | undefined;
  private readonly registry: CircuitBreakerRegistry | undefined;
  private readonly options: BreakerDefaults;
  private readonly maxRoutes: number;
  private readonly routes = new Map<string, CircuitBreaker>();
  /** Overflow breakers kept here when the registry itself is full. */
  private readonly spare = new Map<string, CircuitBreaker>();
  private readonly isFailureStatus: (status: number) => boolean;

  constructor(input: RouteBreakerOptions<Fallback> | CircuitBreaker = {}) {
    if (input instanceof CircuitBreaker) {
      this.fallback = undefined;
      this.fixed = input;
      this.options = {};
      this.maxRoutes = 0;
      this.isFailureStatus = defaultIsFailureStatus;
      return;
    }
    if (typeof input !== 'object' || input === null || Array.isArray(input)) {
      throw new ConfigError(OWNER, 'options', input, 'must be an object or a CircuitBreaker');
    }
    const { name, registry, maxRoutes, isFailureStatus, fallback, ...breakerOptions } = input;
    if (fallback !== undefined && typeof fallback !== 'function') {
      throw new ConfigError(OWNER, 'fallback', fallback, 'must be a function');
    }
    this.fallback = fallback;
    for (const key of NOT_FOR_ROUTES) {
      if (key in breakerOptions) {
        const value = (breakerOptions as Record<string, unknown>)[key];
        throw new ConfigError(
          OWNER,
          key,
          value,
          'does not apply to a route breaker (it sees only the response)',
        );
      }
    }
    this.isFailureStatus =
      isFailureStatus === undefined
        ? defaultIsFailureStatus
        : functionOption<(status: number) => boolean>(OWNER, 'isFailureStatus', isFailureStatus);
    if (registry !== undefined && !(registry instanceof CircuitBreakerRegistry)) {
      throw new ConfigError(OWNER, 'registry', registry, 'must be a CircuitBreakerRegistry');
    }
    this.maxRoutes =
      maxRoutes === undefined ? 1_000 : integerOption(OWNER, 'maxRoutes', maxRoutes, 1, 1_000_000);
    this.options = breakerOptions;
    if (name !== undefined) {
      const fixedName = stringOption(OWNER, 'name', name);
      this.fixed =
        registry?.get(fixedName, breakerOptions) ??
        new CircuitBreaker({ ...breakerOptions, name: fixedName });
      return;
    }
    // Validate the breaker options once, now, rather than at the first request.
    new CircuitBreaker({ ...breakerOptions, name: 'validation' });
    this.registry = registry ?? new CircuitBreakerRegistry({ maxBreakers: this.maxRoutes + 16 });
  }

  /**
   * The breaker for a request: the fixed one, or the route's (`METHOD pattern`). `pattern` should
   * be the framework's route pattern; a raw path works but spends the `maxRoutes` bound.
   */
  breakerFor(method: string, pattern: string): CircuitBreaker {
    if (this.fixed !== undefined) return this.fixed;
    const verb = method === 'HEAD' ? 'GET' : method; // HEAD is GET without a body: one circuit
    const key = `${verb} ${pattern}`;
    const known = this.routes.get(key);
    if (known !== undefined) return known;
    if (this.routes.size < this.maxRoutes) {
      const breaker = this.fromRegistry(key);
      if (breaker !== undefined) {
        this.routes.set(key, breaker);
        return breaker;
      }
    }
    const overflow = `${verb} *`;
    return this.fromRegistry(overflow) ?? this.spareBreaker(overflow);
  }

  /** The registry's breaker of that name, or `undefined` when a shared registry is full. */
  private fromRegistry(name: string): CircuitBreaker | undefined {
    const registry = this.registry!;
    try {
      return registry.find(name) ?? registry.get(name, this.options);
    } catch (error) {
      if (isRegistryFullError(error)) return undefined;
      throw error;
    }
  }

  private spareBreaker(name: string): CircuitBreaker {
    let breaker = this.spare.get(name);
    if (breaker === undefined) {
      breaker = new CircuitBreaker({ ...this.options, name });
      this.spare.set(name, breaker);
    }
    return breaker;
  }

  /** Admits a request: a permit, or the 503 answer for an open circuit. */
  admit(breaker: CircuitBreaker): BreakerPermit | HttpResponse {
    const permit = breaker.tryAcquire();
    return permit ?? circuitOpenResponse(breaker.name, breaker.retryAfterMs);
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
    if (this.isFailureStatus(status)) permit.failure();
    else permit.success();
  }
}

function errorStatus(error: unknown): number | undefined {
  if (typeof error !== 'object' || error === null) return undefined;
  const { status, statusCode } = error as { status?: unknown; statusCode?: unknown };
  const named = typeof status === 'number' ? status : statusCode;
  return typeof named === 'number' && Number.isInteger(named) && named >= 400 && named <= 599
    ? named
    : undefined;
}
