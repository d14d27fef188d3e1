import type { Context, Middleware, Next } from 'koa';
import { type CircuitBreaker, RouteBreakers, type RouteBreakerOptions } from '@breakwater/core';
import { routePattern } from './internal/route-pattern';
import { writeResponse } from './internal/write-response';

type KoaFallback = (ctx: Context, next: Next) => unknown;

/** Options of {@link circuitBreaker}: route-breaker options plus a Koa fallback handler. */
export interface CircuitBreakerMiddlewareOptions extends RouteBreakerOptions<KoaFallback> {
  /**
   * Answers while the circuit is open, instead of the 503 problem+json answer. It may set
   * `ctx.body` itself or call `next()` to serve a degraded version of the route.
   * @defaultValue none (503 with `Retry-After`)
   */
  fallback?: (ctx: Context, next: Next) => unknown;
}

/**
 * Route-level circuit breaker middleware for Koa 2 and 3.
 *
 * Inside a @koa/router route (`router.get('/users/:id', circuitBreaker(), handler)`) or added with
 * `router.use()`, each route gets its own breaker named `METHOD /route/:pattern`; mounted with
 * `app.use()` the breaker is named after the path, bounded by `maxRoutes`. A status >= 500 after
 * `next()` (or what `isFailureStatus` says), a thrown error (rethrown unchanged; one that names
 * its status, such as `ctx.throw(404)`, counts by that status) and a slow response count against
 * the breaker; a client that goes away before the response is sent is not recorded. While the
 * circuit is open the request gets 503 with `Retry-After` and an `application/problem+json` body
 * naming the breaker, or the `fallback` handler.
 *
 * @throws ConfigError when an option is invalid
 * @example
 * ```ts
 * const registry = new CircuitBreakerRegistry();
 * router.get('/plants/:id', circuitBreaker({ registry, failureThreshold: 3 }), getPlant);
 * app.use(circuitBreaker({ name: 'partner-api', openDurationMs: '30s' }));
 * ```
 */
export function circuitBreaker(options?: CircuitBreakerMiddlewareOptions): Middleware;
/** Protects every request through the middleware with one existing breaker. */
export function circuitBreaker(breaker: CircuitBreaker): Middleware;
export function circuitBreaker(
  options: CircuitBreakerMiddlewareOptions | CircuitBreaker = {},
): Middleware {
  const routes = new RouteBreakers<KoaFallback>(options);
  const fallback = routes.fallback;

  return async function breakwaterCircuitBreaker(ctx, next) {
    const admitted = routes.admit(routes.breakerFor(ctx.method, routePattern(ctx)));
    if ('kind' in admitted) {
      if (fallback === undefined) return writeResponse(ctx, admitted);
      await fallback(ctx, next);
      return;
    }
    // Once the response has finished the permit is settled; before that, the client went away.
    const onClose = (): void => {
      if (!ctx.res.writableFinished) admitted.ignore();
    };
    ctx.req.once('close', onClose);
    try {
      await next();
    } catch (error) {
      // Settle as Koa will answer: `ctx.throw(404)` is a 404, an error naming no status a failure.
      routes.settleError(admitted, error);
      throw error;
    } finally {
      ctx.req.off('close', onClose);
    }
    routes.settle(admitted, ctx.status);
  };
}
