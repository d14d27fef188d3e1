import { Injectable, type CanActivate, type ExecutionContext } from '@nestjs/common';
import type { HttpResponse } from '@breakwater/core';
import type { HttpRequestLike } from './breakwater-options.interface';
import { RateLimitRoutes } from './internal/rate-limit-routes';
import { stackHeaders } from './internal/stacked-headers';
import { setHeaders } from './internal/write-response';
import { RateLimitedException } from './rate-limited.exception';

/** The request a context carries and the response to set headers on (none on a WebSocket). */
export interface RateLimitRequestResponse {
  req: HttpRequestLike;
  res?: unknown;
}

/**
 * Applies `@RateLimit()` (or the module's `defaultLimiter`) to HTTP routes, GraphQL resolvers and
 * WebSocket gateways (see {@link RateLimitGuard.getRequestResponse}): sets the
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
interface GraphQLContextLike {
  req?: HttpRequestLike;
  res?: unknown;
  reply?: unknown;
}

interface HandshakeLike {
  headers: HttpRequestLike['headers'];
  address?: string;
}

@Injectable()
export class RateLimitGuard implements CanActivate {
  constructor(private readonly routes: RateLimitRoutes) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    const route = this.routes.resolve(context.getHandler(), context.getClass());
    if (route === null) return true;
    let pair: RateLimitRequestResponse | undefined;
    try {
      pair = this.getRequestResponse(context);
    } catch {
      return true; // A hook that fails never turns into a 500.
    }
    if (pair === undefined) return true;
    let address: string | undefined;
    if (route.byAddress) {
      try {
        address = await this.getKey(context);
      } catch {
        return true; // A key that cannot be resolved never turns into a 500.
      }
    }
    const { req, res } = pair;
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
    if (res !== undefined) setHeaders(res, headers);
    if (refusal !== undefined) {
      const answer = { ...refusal, headers: { ...refusal.headers, ...headers } };
      if (res !== undefined) setHeaders(res, answer.headers);
      throw new RateLimitedException(answer);
    }
    return true;
  }

  /**
   * The request and response of a context (as throttler's `ThrottlerGuard.getRequestResponse`);
   * `undefined` lets the call through unlimited. By default:
   * - `http`: the platform's request and response;
   * - `graphql`: `req` and `res` (or `reply`) of the GraphQL context. The Apollo driver's
   *   default context has `req`, and on Express `req.res`; on Fastify give
   *   `context: (req, reply) => ({ req, reply })` for the headers;
   * - `ws`: a Socket.IO client's handshake (headers and address), without a response;
   * - anything else (RPC, a `ws` library client): `undefined`.
   *
   * Override it for other set-ups.
   * @example
   * ```ts
   * @Injectable()
   * export class GqlRateLimitGuard extends RateLimitGuard {
   *   protected override getRequestResponse(context: ExecutionContext) {
   *     const ctx = GqlExecutionContext.create(context).getContext<{ req: Request; res: Response }>();
   *     return { req: ctx.req, res: ctx.res };
   *   }
   * }
   * ```
   */
  protected getRequestResponse(context: ExecutionContext): RateLimitRequestResponse | undefined {
    const type = context.getType<string>();
    if (type === 'http') {
      const http = context.switchToHttp();
      return { req: http.getRequest<HttpRequestLike>(), res: http.getResponse<unknown>() };
    }
    if (type === 'graphql') {
      const ctx = context.getArgByIndex<GraphQLContextLike | undefined>(2);
      if (ctx?.req === undefined) return undefined;
      // Express links the response from the request: enough for the drivers' default context.
      return { req: ctx.req, res: ctx.res ?? ctx.reply ?? (ctx.req as { res?: unknown }).res };
    }
    if (type === 'ws') {
      const handshake = context.switchToWs().getClient<{ handshake?: HandshakeLike }>().handshake;
      if (handshake === undefined) return undefined;
      return { req: { headers: handshake.headers, ip: handshake.address } };
    }
    return undefined;
  }

  /**
   * The key a request counts under when the route has no `key` hook.
   * @defaultValue the client address, `req.ip`
   */
  protected getKey(context: ExecutionContext): string | undefined | Promise<string | undefined> {
    return this.getRequestResponse(context)?.req.ip;
  }
}
