import type { Context, Middleware, Next } from 'koa';
import {
  type BreakerPermit,
  type CircuitBreaker,
  RouteBreakers,
  type RouteBreakerOptions,
  type RouteEntry,
} from '@breakwater/core';
import { callNext } from './internal/call-next';
import { routePattern } from './internal/route-pattern';
import { runWithin } from './internal/run-within';
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
 * `app.use()` the breaker is named after the path, bounded by `maxRoutes`. The permit settles on
 * the response the route produced, never on the request stream (reading the body does not
 * matter): a status >= 500 after `next()` (or what `isFailureStatus` says), a thrown error
 * (rethrown unchanged; one that names its status, such as `ctx.throw(404)`, counts by that
 * status, any other is a failure subject to the breaker's `isFailure`) and a slow response count
 * against the breaker; a client whose connection is gone by then is not recorded. While the
 * circuit is open the request gets 503 with `Retry-After` and an `application/problem+json` body
 * naming the breaker, or the `fallback` handler. `timeoutMs` gives the handler
 * `ctx.state.signal` and answers 504 at the limit; `maxConcurrent` answers 503 beyond it.
 *
 * @throws ConfigError when an option is invalid
 * @example
 * ```ts
 * const registry = new CircuitBreakerRegistry();
 * router.get('/plants/:id', circuitBreaker({ registry, failureThreshold: 3, timeoutMs: 5_000 }), getPlant);
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
  const { fallback, timeoutMs } = routes;

  const settle = (ctx: Context, entry: RouteEntry, permit: BreakerPermit): void => {
    routes.leave(entry);
    if (ctx.req.socket.destroyed && !ctx.res.writableEnded) permit.ignore();
    else routes.settle(permit, ctx.status);
  };
  const fail = (entry: RouteEntry, permit: BreakerPermit, error: unknown): never => {
    routes.leave(entry);
    routes.settleError(permit, error);
    throw error;
  };

  return function breakwaterCircuitBreaker(ctx, next) {
    const entry = routes.fixed ?? routes.routeFor(ctx.method, routePattern(ctx));
    const admitted = routes.enter(entry);
    if ('kind' in admitted) {
      if (fallback === undefined) {
        writeResponse(ctx, admitted);
        return Promise.resolve();
      }
      return Promise.resolve()
        .then(() => fallback(ctx, next))
        .then(undefined, (error: unknown) => {
          routes.hookErrors.report('fallback', error, 'the 503 answer was sent');
          writeResponse(ctx, admitted);
        });
    }
    if (timeoutMs > 0) {
      const timedOut = () => {
        routes.leave(entry);
        return routes.timedOut(admitted);
      };
      return runWithin(ctx, next, timeoutMs, timedOut, () => routes.timedOutError()).then(
        (late) => (late ? undefined : settle(ctx, entry, admitted)),
        (error: unknown) => fail(entry, admitted, error),
      );
    }
    return callNext(next).then(
      () => settle(ctx, entry, admitted),
      (error: unknown) => fail(entry, admitted, error),
    );
  };
}
