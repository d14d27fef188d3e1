import { Injectable, type CanActivate, type ExecutionContext } from '@nestjs/common';
import type { HttpResponse } from '@breakwater/core';
import type { HttpRequestLike } from './breakwater-options.interface';
import { RateLimitRoutes } from './internal/rate-limit-routes';
import { stackHeaders } from './internal/stacked-headers';
import { setHeaders } from './internal/write-response';
import { RateLimitedException } from './rate-limited.exception';

/**
 * Applies `@RateLimit()` (or the module's `defaultLimiter`) to HTTP routes: sets the
 * `RateLimit-Policy` / `RateLimit` headers and refuses with a {@link RateLimitedException} (429,
 * `Retry-After`, `application/problem+json`). A store outage or a failing hook lets the request
 * through: the guard never causes a 500. Use it per route (`@UseGuards(RateLimitGuard)`) or
 * globally (`{ provide: APP_GUARD, useClass: RateLimitGuard }`).
 *
 * The key is the client address (`req.ip`, which honours Express's `trust proxy` and Fastify's
 * `trustProxy`) unless the route's `key` hook is given; override {@link RateLimitGuard.getKey} in a
 * subclass to change it everywhere.
 *
 * @example
 * ```ts
 * @Injectable()
 * export class ApiKeyRateLimitGuard extends RateLimitGuard {
 *   protected override getKey(context: ExecutionContext): string | undefined {
 *     const req = context.switchToHttp().getRequest<Request>();
 *     return req.get('x-api-key') ?? req.ip;
 *   }
 * }
 * ```
 */
@Injectable()
export class RateLimitGuard implements CanActivate {
  constructor(private readonly routes: RateLimitRoutes) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    if (context.getType() !== 'http') return true;
    const route = this.routes.resolve(context.getHandler(), context.getClass());
    if (route === null) return true;
    const http = context.switchToHttp();
    let address: string | undefined;
    if (route.byAddress) {
      try {
        address = await this.getKey(context);
      } catch {
        return true; // A key that cannot be resolved never turns into a 500.
      }
    }
    const req = http.getRequest<HttpRequestLike>();
    // Limits run in order; a refusal stops there, so later limits do not count the request.
    const sets: Record<string, string>[] = [];
    let refusal: HttpResponse | undefined;
    for (const limit of route.limits) {
      const verdict = await limit.http.decide(req, address);
      if (verdict === undefined) continue;
      sets.push(verdict.headers);
      if (verdict.refusal !== undefined) {
        refusal = verdict.refusal;
        break;
      }
    }
    if (sets.length === 0) return true;
    const headers = stackHeaders(sets);
    const res: unknown = http.getResponse();
    setHeaders(res, headers);
    if (refusal !== undefined) {
      const answer = { ...refusal, headers: { ...refusal.headers, ...headers } };
      setHeaders(res, answer.headers);
      throw new RateLimitedException(answer);
    }
    return true;
  }

  /**
   * The key a request counts under when the route has no `key` hook.
   * @defaultValue the client address, `req.ip`
   */
  protected getKey(context: ExecutionContext): string | undefined | Promise<string | undefined> {
    return context.switchToHttp().getRequest<HttpRequestLike>().ip;
  }
}
