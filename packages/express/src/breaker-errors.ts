import type { ErrorRequestHandler, Response } from 'express';

/** Where {@link breakerErrors} leaves the error a request failed with, for the route breaker. */
const ERROR = Symbol.for('breakwater.requestError');

/** A response that may carry the error of its request. @internal */
export type Tracked = Response & { [ERROR]?: unknown };

/** The error {@link breakerErrors} saw for this response, if any. @internal */
export function requestError(res: Tracked): unknown {
  return res[ERROR];
}

/**
 * Error-handling middleware that shows route breakers the errors handlers throw or pass to
 * `next(err)`, so an error's own `status` and the breaker's `isFailure` decide how it counts (as
 * on Koa and Nest). Add it after the routes and before your own error handlers; it passes every
 * error on unchanged.
 *
 * @example
 * ```ts
 * app.get('/plants/:id', circuitBreaker({ isFailure: (e) => !(e instanceof NotFound) }), getPlant);
 * app.use(breakerErrors());
 * ```
 */
export function breakerErrors(): ErrorRequestHandler {
  return function breakwaterBreakerErrors(error: unknown, _req, res: Tracked, next) {
    if (res[ERROR] === undefined) res[ERROR] = error ?? null;
    next(error);
  };
}
