import type { Context, Middleware } from 'koa';
import { LoadShedder, isLoadShedder, type LoadShedOptions } from '@breakwater/core';
import { writeResponse } from './internal/write-response';

/** The `loadShed()` middleware, with its {@link LoadShedder} (for metrics, health, `close()`). */
export interface LoadShedMiddleware extends Middleware {
  /** The shedder that decides; pass it to `collectLoadShedMetrics` or `healthRoutes`. */
  readonly shedder: LoadShedder<Context>;
}

/**
 * Server-side overload protection for Koa 2 and 3: an adaptive limit on requests in flight,
 * learned from their latency, plus optional event-loop delay, event-loop utilisation and heap
 * thresholds. Over the limit a request is answered at once with 503, `Retry-After` and
 * `application/problem+json`, before any later middleware runs; `low` priority requests are shed
 * first and `critical` ones last; `/health` and `/metrics` are never shed. Mount it first.
 *
 * @throws ConfigError when an option is invalid
 * @example
 * ```ts
 * app.use(loadShed({ maxEventLoopDelayMs: 200, priority: (ctx) => (ctx.path === '/pay' ? 'critical' : 'normal') }));
 * ```
 */
export function loadShed(
  options: LoadShedOptions<Context> | LoadShedder<Context> = {},
): LoadShedMiddleware {
  const shedder = isLoadShedder<Context>(options) ? options : new LoadShedder<Context>(options);
  const middleware: Middleware = async function breakwaterLoadShed(ctx, next) {
    const decided = shedder.admit(ctx, ctx.path);
    if ('kind' in decided) return writeResponse(ctx, decided);
    try {
      await next();
    } catch (error) {
      // Koa answers an error with its status (`ctx.throw(404)`), any other with 500.
      const status = (error as { status?: unknown } | null)?.status;
      decided.finish(typeof status === 'number' ? status : 500);
      throw error;
    }
    decided.finish(ctx.status);
  };
  return Object.assign(middleware, { shedder });
}
