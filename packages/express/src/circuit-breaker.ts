import type { NextFunction, Request, RequestHandler, Response } from 'express';
import {
  type CircuitBreaker,
  RouteBreakers,
  type BreakerPermit,
  type RouteBreakerOptions,
} from '@breakwater/core';
import { isPromiseLike, writeResponse } from './internal/write-response';

type ExpressFallback = (req: Request, res: Response, next: NextFunction) => unknown;

/** Options of {@link circuitBreaker}: route-breaker options plus an Express fallback handler. */
export interface CircuitBreakerMiddlewareOptions extends Omit<
  RouteBreakerOptions<ExpressFallback>,
  'fallback'
> {
  /**
   * The handler that answers while the circuit is open, instead of the 503 problem+json answer.
   * @defaultValue none (503 with `Retry-After`)
   */
  fallback?: (req: Request, res: Response, next: NextFunction) => unknown;
}

/**
 * Route-level circuit breaker middleware for Express 4 and 5.
 *
 * Inside a route (`app.get('/users/:id', circuitBreaker(), handler)`) each route gets its own
 * breaker named `METHOD /base/route/:pattern`; mounted with `app.use()` the breaker is named after
 * the path, bounded by `maxRoutes`. A response with status >= 500 (or what `isFailureStatus`
 * says), a thrown error or `next(err)` that Express answers with a 5xx, and a slow response count
 * against the breaker; a client that goes away before the response is sent is not recorded. While
 * the circuit is open the request gets 503 with `Retry-After` and an `application/problem+json`
 * body naming the breaker, or the `fallback` handler.
 *
 * @throws ConfigError when an option is invalid
 * @example
 * ```ts
 * const registry = new CircuitBreakerRegistry();
 * app.get('/plants/:id', circuitBreaker({ registry, failureThreshold: 3 }), getPlant);
 * app.use('/partner', circuitBreaker({ name: 'partner-api', openDurationMs: '30s' }));
 * ```
 */
export function circuitBreaker(options?: CircuitBreakerMiddlewareOptions): RequestHandler;
/** Circuit breaker middleware around one breaker built elsewhere. */
export function circuitBreaker(breaker: CircuitBreaker): RequestHandler;
export function circuitBreaker(
  options: CircuitBreakerMiddlewareOptions | CircuitBreaker = {},
): RequestHandler {
  const routes = new RouteBreakers<ExpressFallback>(options);
  const fallback = routes.fallback;

  return function breakwaterCircuitBreaker(req, res, next) {
    const route = (req as { route?: { path?: unknown } }).route;
    const pattern = route === undefined ? req.baseUrl + req.path : req.baseUrl + String(route.path);
    const admitted = routes.admit(routes.breakerFor(req.method, pattern));
    if ('kind' in admitted) {
      if (fallback === undefined) return writeResponse(res, admitted);
      const result = fallback(req, res, next);
      if (isPromiseLike(result)) result.then(undefined, next);
      return;
    }
    const permit: BreakerPermit = admitted;
    res.once('finish', () => routes.settle(permit, res.statusCode));
    // After 'finish' the permit is settled and this is a no-op; before it, the client went away.
    res.once('close', () => permit.ignore());
    next();
  };
}
