import type { Request, RequestHandler, Response } from 'express';
import { HealthRoutes, type HealthRouteResult, type HealthRoutesOptions } from '@breakwater/core';
import { isPromiseLike, writeResponse } from './internal/write-response';

/** Options of {@link healthRoutes}: `admin.authorize` receives the Express request. */
export type HealthRoutesMiddlewareOptions = HealthRoutesOptions<Request>;

/** The middleware {@link healthRoutes} returns. */
export interface HealthRoutesMiddleware extends RequestHandler {
  /** Ends every open event stream (call it before `server.close()` on shutdown). */
  close(): void;
}

/**
 * Health, readiness, breaker status, a server-sent events stream and the live dashboard, for
 * Express 4 and 5. Mount it at the root (`/health/...`) or under a prefix
 * (`app.use('/ops', healthRoutes(...))` serves `/ops/health/...`); other paths pass through.
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
  const routes = new HealthRoutes<Request>(options);

  const middleware: RequestHandler = (req, res, next) => {
    const result = routes.handle(req.method, req.url, req);
    if (result === undefined) return next();
    if (isPromiseLike<HealthRouteResult>(result)) {
      result.then((answer) => write(req, res, answer)).catch(next);
    } else {
      write(req, res, result);
    }
  };
  return Object.assign(middleware, { close: () => routes.close() });
}

function write(req: Request, res: Response, result: HealthRouteResult): void {
  if (result.kind === 'response') return writeResponse(res, result);
  // `no-transform` keeps compression() (and proxies) from buffering the stream into gzip blocks.
  res.writeHead(result.status, { ...result.headers, 'cache-control': 'no-store, no-transform' });
  res.flushHeaders();
  // An event stream stays open for as long as the client wants it.
  req.socket.setTimeout(0);
  const flushable = res as Response & { flush?: () => void };
  const stop = result.start(
    (chunk) => {
      const written = res.write(chunk);
      // Behind a compression middleware that compresses anyway, push each event out at once.
      flushable.flush?.();
      return written;
    },
    () => res.end(),
  );
  res.on('close', stop);
}
