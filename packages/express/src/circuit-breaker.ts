import type { NextFunction, Request, RequestHandler, Response } from 'express';
import {
  type CircuitBreaker,
  RouteBreakers,
  type RouteBreakerOptions,
  type RouteEntry,
} from '@breakwater/core';
import { requestError, type Tracked } from './breaker-errors';
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

/** An Express request inside a route breaker with `timeoutMs`: `signal` aborts at the limit. */
export type BreakerRequest = Request & { signal?: AbortSignal };

/**
 * Route-level circuit breaker middleware for Express 4 and 5.
 *
 * Inside a route (`app.get('/users/:id', circuitBreaker(), handler)`) each route gets its own
 * breaker named `METHOD /base/route/:pattern`; mounted with `app.use()` the breaker is named after
 * the path, bounded by `maxRoutes`. The permit settles when the response is sent: a status >= 500
 * (or what `isFailureStatus` says) and a slow response count against the breaker; an error that
 * reaches `breakerErrors()` counts as the status it names, else as a failure subject to the
 * breaker's `isFailure`. A client that goes away first is not recorded. While the circuit is open
 * the request gets 503 with `Retry-After` and an `application/problem+json` body naming the
 * breaker, or the `fallback` handler. `timeoutMs` gives the handler `req.signal` and answers 504
 * at the limit; `maxConcurrent` answers 503 beyond it.
 *
 * @throws ConfigError when an option is invalid
 * @example
 * ```ts
 * const registry = new CircuitBreakerRegistry();
 * app.get('/plants/:id', circuitBreaker({ registry, failureThreshold: 3, timeoutMs: 5_000 }), getPlant);
 * app.use(breakerErrors()); // after the routes: lets isFailure see the errors
 * ```
 */
export function circuitBreaker(options?: CircuitBreakerMiddlewareOptions): RequestHandler;
/** Circuit breaker middleware around one breaker built elsewhere. */
export function circuitBreaker(breaker: CircuitBreaker): RequestHandler;
export function circuitBreaker(
  options: CircuitBreakerMiddlewareOptions | CircuitBreaker = {},
): RequestHandler {
  const routes = new RouteBreakers<ExpressFallback>(options);
  const { fallback, timeoutMs } = routes;

  return function breakwaterCircuitBreaker(req, res: Tracked, next) {
    const entry: RouteEntry = routes.fixed ?? routes.routeFor(req.method, routePattern(req));
    const admitted = routes.enter(entry);
    if ('kind' in admitted) {
      if (fallback === undefined) return writeResponse(res, admitted);
      const failed = (error: unknown): void => {
        routes.hookErrors.report('fallback', error, 'the 503 answer was sent');
        writeResponse(res, admitted);
      };
      try {
        const result = fallback(req, res, next);
        if (isPromiseLike(result)) result.then(undefined, failed);
      } catch (error) {
        failed(error);
      }
      return;
    }
    let timer: ReturnType<typeof setTimeout> | undefined;
    if (timeoutMs > 0) {
      const controller = new AbortController();
      (req as BreakerRequest).signal = controller.signal;
      timer = setTimeout(() => {
        controller.abort(routes.timedOutError());
        writeResponse(res, routes.timedOut(admitted));
      }, timeoutMs);
    }
    res.on('close', () => {
      if (timer !== undefined) clearTimeout(timer);
      routes.leave(entry);
      // Not finished: the client went away first, and the request is not recorded.
      if (!res.writableFinished) return admitted.ignore();
      const error = requestError(res);
      if (error === undefined) routes.settle(admitted, res.statusCode);
      else routes.settleError(admitted, error);
    });
    next();
  };
}

/** The route pattern of a request (`/base/users/:id`), or the path outside a route. */
function routePattern(req: Request): string {
  const route = req.route as { path?: unknown } | undefined;
  const base = req.baseUrl;
  const path = route === undefined ? req.path : String(route.path);
  return base === '' ? path : base + path;
}
