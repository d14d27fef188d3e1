import { Inject, Injectable } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import {
  ConfigError,
  HttpRateLimit,
  isConfigError,
  type HttpRateLimitOptions,
  type RateLimiter,
} from '@breakwater/core';
import type { HttpRequestLike } from '../breakwater-options.interface';
import {
  BREAKWATER_STATE,
  RATE_LIMIT_METADATA,
  SKIP_RATE_LIMIT_METADATA,
} from '../breakwater.constants';
import type { RateLimitOptions } from '../rate-limit.decorator';
import type { BreakwaterState, RouteRate } from './breakwater-state';

type Callable = (...args: never[]) => unknown;

/** The rate limit of one route. */
export interface RouteLimit {
  readonly http: HttpRateLimit<HttpRequestLike>;
  /** Whether the key is the client address (no `key` hook): the guard resolves it. */
  readonly byAddress: boolean;
}

/**
 * Resolves the rate limit of each route once (`@RateLimit`, `@SkipRateLimit`, the module's
 * `defaultLimiter`) and caches it by handler, so no metadata is read per request.
 * @internal
 */
@Injectable()
export class RateLimitRoutes {
  private readonly cache = new WeakMap<object, WeakMap<object, RouteLimit | null>>();
  private fallback: RouteLimit | null | undefined;

  constructor(
    private readonly reflector: Reflector,
    @Inject(BREAKWATER_STATE) private readonly state: BreakwaterState,
  ) {}

  /** The limit of the route `type.handler`, or `null` when it is not limited. */
  resolve(handler: object, type: object): RouteLimit | null {
    let routes = this.cache.get(type);
    if (routes === undefined) this.cache.set(type, (routes = new WeakMap()));
    let route = routes.get(handler);
    if (route === undefined) routes.set(handler, (route = this.build(handler, type)));
    return route;
  }

  private build(handlerRef: object, typeRef: object): RouteLimit | null {
    const handler = handlerRef as Callable;
    const type = typeRef as Callable;
    const targets = [handler, type];
    if (this.reflector.getAllAndOverride<boolean | undefined>(SKIP_RATE_LIMIT_METADATA, targets)) {
      return null;
    }
    const options = this.reflector.getAllAndOverride<RateLimitOptions | undefined>(
      RATE_LIMIT_METADATA,
      targets,
    );
    if (options === undefined) return (this.fallback ??= this.defaultRoute());
    const where = `${type.name}.${handler.name}`;
    const { limiter: limiterName, name, key, skip, cost, headers, ...rate } = options;
    let limiter;
    if (limiterName === undefined) {
      const own = Object.keys(rate).length > 0 || name !== undefined;
      limiter = own ? this.routeLimiter(name ?? where, rate, where) : this.state.defaultLimiter;
      if (limiter === undefined) {
        throw new ConfigError(
          '@RateLimit',
          where,
          options,
          'needs a rate or a limiter (no defaultLimiter is configured)',
        );
      }
    } else {
      limiter = this.state.limiters.get(limiterName);
      if (limiter === undefined) {
        throw new ConfigError(
          '@RateLimit',
          `${where}.limiter`,
          limiterName,
          'must name a limiter of BreakwaterModule',
        );
      }
      const extra = Object.keys(rate)[0] ?? (name === undefined ? undefined : 'name');
      if (extra !== undefined) {
        throw new ConfigError(
          '@RateLimit',
          `${where}.${extra}`,
          options[extra as keyof RateLimitOptions],
          'cannot be combined with limiter',
        );
      }
    }
    const httpOptions: HttpRateLimitOptions<HttpRequestLike> = { limiter };
    const headerOptions = headers ?? this.state.headers;
    if (headerOptions !== undefined) httpOptions.headers = headerOptions;
    if (key !== undefined) httpOptions.key = key;
    if (skip !== undefined) httpOptions.skip = skip;
    if (cost !== undefined) httpOptions.cost = cost;
    return { http: new HttpRateLimit(httpOptions), byAddress: key === undefined };
  }

  private routeLimiter(name: string, rate: RouteRate, where: string): RateLimiter {
    try {
      return this.state.routeLimiter(name, rate);
    } catch (error) {
      if (!isConfigError(error)) throw error;
      throw new ConfigError(
        '@RateLimit',
        `${where}.${error.path}`,
        error.value,
        `is invalid (${error.message})`,
      );
    }
  }

  private defaultRoute(): RouteLimit | null {
    const limiter = this.state.defaultLimiter;
    if (limiter === undefined) return null;
    const headers = this.state.headers;
    const http = new HttpRateLimit<HttpRequestLike>(
      headers === undefined ? limiter : { limiter, headers },
    );
    return { http, byAddress: true };
  }
}
