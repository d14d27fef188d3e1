import type { Context, Middleware, Next } from 'koa';
import {
  errorStatus,
  HttpRateLimit,
  type DynamicHttpRateLimitOptions,
  type RateLimiter,
  type RateLimitInfo,
} from '@breakwater/core';
import { callNext } from './internal/call-next';
import { keepHeadersOnError } from './internal/carry-headers';
import { writeResponse } from './internal/write-response';

/** A 429 handler: runs instead of the default answer, with the headers already set. */
export type RateLimitHandler = (ctx: Context, next: Next, info: RateLimitInfo) => unknown;

/**
 * Options of {@link rateLimit}: the hooks receive the Koa context (`requestWasSuccessful` gets it
 * twice: `(ctx) => ctx.status < 400` is enough).
 */
export type RateLimitMiddlewareOptions = DynamicHttpRateLimitOptions<
  Context,
  Context,
  RateLimitHandler
>;

/** The middleware {@link rateLimit} returns, with the limiter it decides with. */
export interface RateLimitMiddleware extends Middleware {
  /** The limiter behind the middleware (e.g. for `healthRoutes({ limiters: [...] })`). */
  readonly limiter: RateLimiter;
}

/**
 * Rate-limiting middleware for Koa 2 and 3.
 *
 * Counts each request under the client address (`ctx.ip`, which honours `app.proxy` and
 * `app.maxIpsCount`; IPv6 grouped by `ipv6Subnet`) or `key(ctx)`, sets the `RateLimit-Policy` and
 * `RateLimit` headers of draft-ietf-httpapi-ratelimit-headers-11 (or the draft `headers` names,
 * stacked limiters each listed; kept on thrown errors), puts the decision on
 * `ctx.state.rateLimit`, and answers 429 with `Retry-After` and an `application/problem+json` body
 * (or `message` / `statusCode` / `handler`) when the limit is reached. A store outage never
 * becomes a 500: the limiter's `onStoreFailure` decides, and a failing hook lets the request
 * through and reaches the logger.
 *
 * @throws ConfigError when an option is invalid
 * @example
 * ```ts
 * app.use(rateLimit({ name: 'api', rate: '100/m' }));
 * router.post('/identify', rateLimit({ name: 'identify', limit: 10, window: '1h', key: (ctx) => ctx.get('x-api-key') || ctx.ip }), identify);
 * ```
 */
export function rateLimit(options: RateLimitMiddlewareOptions | RateLimiter): RateLimitMiddleware {
  const http = new HttpRateLimit<Context, Context, RateLimitHandler>(options);
  const property = http.requestProperty;

  const refuse = async (ctx: Context, next: Next, info: RateLimitInfo): Promise<void> => {
    const handler = http.handler;
    if (handler !== undefined) {
      try {
        await handler(ctx, next, info);
        return;
      } catch (error) {
        http.hookErrors.report('handler', error, 'the default answer was sent');
      }
    }
    writeResponse(ctx, await http.refusal(ctx, info));
  };

  const run = (ctx: Context, next: Next, info: RateLimitInfo | undefined): Promise<void> => {
    if (info === undefined) return next();
    http.writeHeaders(ctx.res, info);
    if (property !== undefined) (ctx.state as Record<string, unknown>)[property] = info;
    if (!info.allowed) return refuse(ctx, next, info);
    keepHeadersOnError(ctx.app);
    if (!http.settles) return next();
    return callNext(next).then(
      () => {
        const finished = !ctx.req.socket.destroyed || ctx.res.writableEnded;
        http.settle(ctx, ctx, info, finished, ctx.status);
      },
      (error: unknown) => {
        http.settle(ctx, ctx, info, true, errorStatus(error) ?? 500);
        throw error;
      },
    );
  };

  const middleware: Middleware = (ctx, next) => {
    let address: string | undefined;
    if (http.byAddress) {
      address = ctx.ip === '' ? undefined : ctx.ip;
      if (
        http.watchingForwarded &&
        ctx.headers['x-forwarded-for'] !== undefined &&
        !ctx.app.proxy
      ) {
        http.forwardedUntrusted();
      }
    }
    const decided = http.decideNow(ctx, address);
    // decideNow() never rejects: a failed decision is `undefined` and the request goes through.
    if (decided instanceof Promise) return decided.then((info) => run(ctx, next, info));
    return run(ctx, next, decided);
  };
  return Object.assign(middleware, { limiter: http.limiter });
}
