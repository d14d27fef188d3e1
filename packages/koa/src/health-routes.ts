import { PassThrough } from 'node:stream';
import type { Context, Middleware } from 'koa';
import { HealthRoutes, type HealthRoutesOptions } from '@breakwater/core';
import { writeResponse } from './internal/write-response';

/** Options of {@link healthRoutes}: `admin.authorize` receives the Koa context. */
export type HealthRoutesMiddlewareOptions = HealthRoutesOptions<Context>;

/** The middleware {@link healthRoutes} returns. */
export interface HealthRoutesMiddleware extends Middleware {
  /** Ends every open event stream (call it before `server.close()` on shutdown). */
  close(): void;
}

/**
 * Health, readiness, breaker status, a server-sent events stream and the live dashboard, for
 * Koa 2 and 3. Add it with `app.use()`; other paths pass on to `next()`. Paths are matched on
 * `ctx.url`, which koa-mount makes relative to its mount point.
 *
 * Routes under `basePath` (default `/health`): `GET /live`, `GET /ready`, `GET /` (health+json),
 * `GET /circuit-breakers`, `GET /circuit-breakers/:name`, `GET /circuit-breakers/stream`,
 * `GET /dashboard`, and `POST /circuit-breakers/:name/reset` when `admin.authorize` is given.
 *
 * @throws ConfigError when an option is invalid
 * @example
 * ```ts
 * const health = healthRoutes({ registry, critical: ['payments'] });
 * app.use(health);
 * process.on('SIGTERM', () => { health.close(); server.close(); });
 * ```
 */
export function healthRoutes(options: HealthRoutesMiddlewareOptions): HealthRoutesMiddleware {
  const routes = new HealthRoutes<Context>(options);

  const middleware: Middleware = async (ctx, next) => {
    const pending = routes.handle(ctx.method, ctx.url, ctx);
    if (pending === undefined) {
      await next();
      return;
    }
    const result = await pending;
    if (result.kind === 'response') return writeResponse(ctx, result);
    ctx.status = result.status;
    // `no-transform` (and `ctx.compress = false` for koa-compress) keeps the stream uncompressed.
    ctx.set({ ...result.headers, 'cache-control': 'no-store, no-transform' });
    // An event stream stays open for as long as the client wants it.
    ctx.req.socket.setTimeout(0);
    (ctx as Context & { compress?: boolean }).compress = false;
    const pass = new PassThrough();
    ctx.body = pass;
    const stop = result.start(
      (chunk) => pass.write(chunk),
      () => pass.end(),
    );
    ctx.req.on('close', stop);
  };
  return Object.assign(middleware, { close: () => routes.close() });
}
