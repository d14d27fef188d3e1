import type { NextFunction, Request, RequestHandler, Response } from 'express';
import {
  HttpRateLimit,
  type DynamicHttpRateLimitOptions,
  type RateLimiter,
  type RateLimitInfo,
} from '@breakwater/core';
import { decisionSharer } from './internal/share-decision';
import { isPromiseLike, writeResponse } from './internal/write-response';

/** A 429 handler: runs instead of the default answer, with the headers already set. */
export type RateLimitHandler = (
  req: Request,
  res: Response,
  next: NextFunction,
  info: RateLimitInfo,
) => unknown;

/** Options of {@link rateLimit}: the hooks receive the Express request (and response). */
export type RateLimitMiddlewareOptions = DynamicHttpRateLimitOptions<
  Request,
  Response,
  RateLimitHandler
>;

/** The middleware {@link rateLimit} returns, with the limiter it decides with. */
export interface RateLimitMiddleware extends RequestHandler {
  /** The limiter behind the middleware (e.g. for `healthRoutes({ limiters: [...] })`). */
  readonly limiter: RateLimiter;
}

/** An Express request after {@link rateLimit}: the decision, as express-rate-limit has it. */
export type RateLimitedRequest = Request & { rateLimit?: RateLimitInfo };

/**
 * Rate-limiting middleware for Express 4 and 5.
 *
 * Counts each request under the client address (`req.ip`, which honours the app's
 * `'trust proxy'` setting; IPv6 grouped by `ipv6Subnet`) or `key(req)`, sets the
 * `RateLimit-Policy` and `RateLimit` headers of draft-ietf-httpapi-ratelimit-headers-11 (or the
 * draft `headers` names, stacked limiters each listed) on every response it counts, puts the
 * decision on `req.rateLimit`, and answers 429 with `Retry-After` and an `application/problem+json`
 * body (or `message` / `statusCode` / `handler`) when the limit is reached. A store outage never
 * becomes a 500: the limiter's `onStoreFailure` decides, and a failing hook lets the request
 * through and reaches the logger.
 *
 * @throws ConfigError when an option is invalid
 * @example
 * ```ts
 * app.use(rateLimit({ name: 'api', rate: '100/m' }));
 * app.post('/identify', rateLimit({ name: 'identify', limit: 10, window: '1h', key: (req) => req.get('x-api-key') ?? req.ip ?? '' }), identify);
 * ```
 */
export function rateLimit(options: RateLimitMiddlewareOptions | RateLimiter): RateLimitMiddleware {
  const http = new HttpRateLimit<Request, Response, RateLimitHandler>(options);
  const name = http.requestProperty;
  const shareDecision = name === undefined ? undefined : decisionSharer(name);

  const apply = (
    req: RateLimitedRequest,
    res: Response,
    next: NextFunction,
    info?: RateLimitInfo,
  ) => {
    if (info === undefined || res.headersSent) return next();
    http.writeHeaders(res, info);
    shareDecision?.(req, info);
    if (!info.allowed) return refuse(req, res, next, info);
    if (http.settles) {
      res.on('close', () => http.settle(req, res, info, res.writableFinished, res.statusCode));
    }
    next();
  };

  const refuse = (req: Request, res: Response, next: NextFunction, info: RateLimitInfo) => {
    const fallback = (error: unknown): void => {
      http.hookErrors.report('handler', error, 'the default answer was sent');
      const answer = http.refusal(req, info);
      if (isPromiseLike(answer)) void Promise.resolve(answer).then((a) => writeResponse(res, a));
      else writeResponse(res, answer);
    };
    const handler = http.handler;
    if (handler !== undefined) {
      try {
        const result = handler(req, res, next, info);
        if (isPromiseLike(result)) result.then(undefined, fallback);
      } catch (error) {
        fallback(error);
      }
      return;
    }
    const answer = http.refusal(req, info);
    if (isPromiseLike(answer)) answer.then((a) => writeResponse(res, a), next);
    else writeResponse(res, answer);
  };

  const middleware: RequestHandler = (req, res, next) => {
    let address: string | undefined;
    if (http.byAddress) {
      if (req.headers['x-forwarded-for'] === undefined) {
        // Without the header req.ip is the socket's address whatever 'trust proxy' says.
        address = req.socket.remoteAddress;
      } else {
        address = req.ip;
        if (http.watchingForwarded && req.app.get('trust proxy') === false) {
          http.forwardedUntrusted();
        }
      }
    }
    const decided = http.decideNow(req, address);
    if (!isPromiseLike(decided)) return apply(req, res, next, decided);
    // decideNow() never rejects; Express catches what the next handlers throw.
    decided.then((info) => apply(req, res, next, info), next);
  };
  return Object.assign(middleware, { limiter: http.limiter });
}
