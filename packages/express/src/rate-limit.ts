import type { Request, RequestHandler } from 'express';
import {
  HttpRateLimit,
  type HttpRateLimitOptions,
  type HttpRateLimitVerdict,
  type RateLimiter,
} from '@breakwater/core';
import { writeResponse } from './internal/write-response';

/** Options of {@link rateLimit}: `key`, `skip` and `cost` receive the Express request. */
export type RateLimitMiddlewareOptions = HttpRateLimitOptions<Request>;

/** The middleware {@link rateLimit} returns, with the limiter it decides with. */
export interface RateLimitMiddleware extends RequestHandler {
  /** The limiter behind the middleware (e.g. for `healthRoutes({ limiters: [...] })`). */
  readonly limiter: RateLimiter;
}

/**
 * Rate-limiting middleware for Express 4 and 5.
 *
 * Counts each request under the client address (`req.ip`, which honours the app's
 * `'trust proxy'` setting) or `key(req)`, sets the `RateLimit-Policy` and `RateLimit` headers of
 * draft-ietf-httpapi-ratelimit-headers-11 (and the legacy `X-RateLimit-*` trio when asked) on every
 * response it counts, and answers 429 with `Retry-After` and an `application/problem+json` body
 * when the limit is reached. A store outage never becomes a 500: the limiter's `onStoreFailure`
 * decides, and a failing hook lets the request through.
 *
 * @throws ConfigError when an option is invalid
 * @example
 * ```ts
 * app.use(rateLimit({ name: 'api', rate: '100/m' }));
 * app.post('/identify', rateLimit({ name: 'identify', limit: 10, window: '1h', key: (req) => req.get('x-api-key') ?? req.ip ?? '' }), identify);
 * ```
 */
export function rateLimit(options: RateLimitMiddlewareOptions | RateLimiter): RateLimitMiddleware {
  const http = new HttpRateLimit<Request>(options);

  const middleware: RequestHandler = (req, res, next) => {
    const apply = (verdict: HttpRateLimitVerdict | undefined): void => {
      if (verdict !== undefined && !res.headersSent) {
        for (const name of Object.keys(verdict.headers))
          res.setHeader(name, verdict.headers[name]!);
        if (verdict.refusal !== undefined) return writeResponse(res, verdict.refusal);
      }
      next();
    };
    // decide() never rejects; Express catches what the next handlers throw.
    http.decide(req, req.ip).then(apply).catch(next);
  };
  return Object.assign(middleware, { limiter: http.limiter });
}
