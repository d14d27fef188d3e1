import type { Context, Middleware } from 'koa';
import { HttpRateLimit, type HttpRateLimitOptions, type RateLimiter } from '@breakwater/core';
import { writeResponse } from './internal/write-response';

/** Options of {@link rateLimit}: `key`, `skip` and `cost` receive the Koa context. */
export type RateLimitMiddlewareOptions = HttpRateLimitOptions<Context>;

/** The middleware {@link rateLimit} returns, with the limiter it decides with. */
export interface RateLimitMiddleware extends Middleware {
  /** The limiter behind the middleware (e.g. for `healthRoutes({ limiters: [...] })`). */
  readonly limiter: RateLimiter;
}

/**
 * Rate-limiting middleware for Koa 2 and 3.
 *
 * Counts each request under the client address (`ctx.ip`, which honours `app.proxy`) or
 * `key(ctx)`, sets the `RateLimit-Policy` and `RateLimit` headers of
 * draft-ietf-httpapi-ratelimit-headers-11 (and the legacy `X-RateLimit-*` trio when asked), and
 * answers 429 with `Retry-After` and an `application/problem+json` body when the limit is reached.
 * A store outage never becomes a 500: the limiter's `onStoreFailure` decides, and a failing hook
 * lets the request through.
 *
 * @throws ConfigError when an option is invalid
 * @example
 * ```ts
 * app.use(rateLimit({ name: 'api', rate: '100/m' }));
 * router.post('/identify', rateLimit({ name: 'identify', limit: 10, window: '1h', key: (ctx) => ctx.get('x-api-key') || ctx.ip }), identify);
 * ```
 */
export function rateLimit(options: RateLimitMiddlewareOptions | RateLimiter): RateLimitMiddleware {
  const http = new HttpRateLimit<Context>(options);

  const middleware: Middleware = async (ctx, next) => {
    // decide() never rejects: a failed decision is `undefined` and the request goes through.
    const verdict = await http.decide(ctx, ctx.ip === '' ? undefined : ctx.ip);
    if (verdict !== undefined) {
      ctx.set(verdict.headers);
      if (verdict.refusal !== undefined) return writeResponse(ctx, verdict.refusal);
    }
    await next();
  };
  return Object.assign(middleware, { limiter: http.limiter });
}
