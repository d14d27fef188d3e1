import type { Request, RequestHandler } from 'express';
import { LoadShedder, isLoadShedder, type LoadShedOptions } from '@breakwater/core';
import { writeResponse } from './internal/write-response';

/** The `loadShed()` middleware, with its {@link LoadShedder} (for metrics, health, `close()`). */
export interface LoadShedMiddleware extends RequestHandler {
  /** The shedder that decides; pass it to `collectLoadShedMetrics` or `healthRoutes`. */
  readonly shedder: LoadShedder<Request>;
}

/**
 * Server-side overload protection for Express 4 and 5: an adaptive limit on requests in flight,
 * learned from their latency, plus optional event-loop delay, event-loop utilisation and heap
 * thresholds. Over the limit a request is answered at once with 503, `Retry-After` and
 * `application/problem+json`, before any later handler runs; `low` priority requests are shed
 * first and `critical` ones last; `/health` and `/metrics` are never shed. Mount it first.
 *
 * @throws ConfigError when an option is invalid
 * @example
 * ```ts
 * const shed = loadShed({
 *   maxEventLoopDelayMs: 200,
 *   priority: (req) => (req.path.startsWith('/checkout') ? 'critical' : 'normal'),
 * });
 * app.use(shed);
 * ```
 */
export function loadShed(
  options: LoadShedOptions<Request> | LoadShedder<Request> = {},
): LoadShedMiddleware {
  const shedder = isLoadShedder<Request>(options) ? options : new LoadShedder<Request>(options);
  const middleware: RequestHandler = function breakwaterLoadShed(req, res, next) {
    const url = req.originalUrl;
    const query = url.indexOf('?');
    const decided = shedder.admit(req, query === -1 ? url : url.slice(0, query));
    if ('kind' in decided) return writeResponse(res, decided);
    res.once('finish', () => decided.finish(res.statusCode));
    // After 'finish' the permit is settled and this is a no-op; before it, the client went away.
    res.once('close', () => decided.abort());
    next();
  };
  return Object.assign(middleware, { shedder });
}
