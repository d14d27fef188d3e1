import { Inject, Injectable } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import {
  ConfigError,
  HttpRateLimit,
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
import type { BreakwaterState } from './breakwater-state';
import { nestedDecorator } from './validate';

type Callable = (...args: never[]) => unknown;

/** One limit of a route. */
export interface RouteLimit {
  readonly http: HttpRateLimit<HttpRequestLike>;
  /** Whether the key is the client address (no `key` hook): the guard resolves it. */
  readonly byAddress: boolean;
}

/** The limits of one route, in the order they are enforced. */
export interface RouteLimits {
  readonly limits: readonly RouteLimit[];
  /** Whether any limit is keyed by the client address. */
  readonly byAddress: boolean;
}

/**
 * The name of a decorated method's own limiter: the given `name`, else `Class.method`, with
 * `#2`, `#3`... for further unnamed limits of the same method.
 */
export function rateLimitName(where: string, name: string | undefined, index: number): string {
  return name ?? (index === 0 ? where : `${where}#${index + 1}`);
}

/**
 * Resolves the rate limits of each route once (`@RateLimit`, `@SkipRateLimit`, the module's
 * `defaultLimiter`) and caches them by handler, so no metadata is read per request.
 * @internal
 */
@Injectable()
export class RateLimitRoutes {
  private readonly cache = new WeakMap<object, WeakMap<object, RouteLimits | null>>();

  constructor(
    private readonly reflector: Reflector,
    @Inject(BREAKWATER_STATE) private readonly state: BreakwaterState,
  ) {}

  /** The limits of the route `type.handler`, or `null` when it is not limited. */
  resolve(handler: object, type: object): RouteLimits | null {
    let routes = this.cache.get(type);
    if (routes === undefined) this.cache.set(type, (routes = new WeakMap()));
    let route = routes.get(handler);
    if (route === undefined) routes.set(handler, (route = this.build(handler, type)));
    return route;
  }

  private build(handlerRef: object, typeRef: object): RouteLimits | null {
    const handler = handlerRef as Callable;
    const type = typeRef as Callable;
    const targets = [handler, type];
    const skip = this.reflector.getAllAndOverride<boolean | string[] | undefined>(
      SKIP_RATE_LIMIT_METADATA,
      targets,
    );
    if (skip === true) return null;
    const skipped = new Set(Array.isArray(skip) ? skip : []);
    const list = this.reflector.getAllAndOverride<RateLimitOptions[] | undefined>(
      RATE_LIMIT_METADATA,
      targets,
    );
    const where = `${type.name}.${handler.name}`;
    const limits: RouteLimit[] = [];
    if (list === undefined) {
      const limiter = this.state.defaultLimiter;
      if (
        limiter !== undefined &&
        !skipped.has(limiter.name) &&
        !skipped.has(this.state.defaultLimiterKey!)
      ) {
        const headers = this.state.headers;
        const http = new HttpRateLimit<HttpRequestLike>(
          headers === undefined ? limiter : { limiter, headers },
        );
        limits.push({ http, byAddress: true });
      }
    } else {
      list.forEach((options, index) => {
        if (options.limiter !== undefined && skipped.has(options.limiter)) return;
        const limit = this.limit(where, options, index);
        if (!skipped.has(limit.http.limiter.name)) limits.push(limit);
      });
    }
    if (limits.length === 0) return null;
    return { limits, byAddress: limits.some((limit) => limit.byAddress) };
  }

  private limit(where: string, options: RateLimitOptions, index: number): RouteLimit {
    const { key, skip, cost, headers } = options;
    const limiter = decoratorLimiter(this.state, where, options, index);
    const httpOptions: HttpRateLimitOptions<HttpRequestLike> = { limiter };
    const headerOptions = headers ?? this.state.headers;
    if (headerOptions !== undefined) httpOptions.headers = headerOptions;
    if (key !== undefined) httpOptions.key = key;
    if (skip !== undefined) httpOptions.skip = skip;
    if (cost !== undefined) httpOptions.cost = cost;
    return { http: new HttpRateLimit(httpOptions), byAddress: key === undefined };
  }
}

/**
 * The limiter of one `@RateLimit()` entry: a named limiter of the module, the method's own limiter
 * built from its rate, or the module's default limiter.
 * @throws ConfigError naming `<where>.<option>` when the entry is invalid
 */
export function decoratorLimiter(
  state: BreakwaterState,
  where: string,
  options: RateLimitOptions,
  index: number,
): RateLimiter {
  // eslint-disable-next-line @typescript-eslint/no-unused-vars
  const { limiter: limiterName, name, key, skip, cost, headers, ...rate } = options;
  if (limiterName === undefined) {
    const own = Object.keys(rate).length > 0 || name !== undefined;
    const limiter = own
      ? nestedDecorator('@RateLimit', where, () =>
          state.routeLimiter(rateLimitName(where, name, index), rate),
        )
      : state.defaultLimiter;
    if (limiter === undefined) {
      throw new ConfigError(
        '@RateLimit',
        where,
        options,
        'needs a rate or a limiter (no defaultLimiter is configured)',
      );
    }
    return limiter;
  }
  const limiter = state.limiters.get(limiterName);
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
  return limiter;
}
