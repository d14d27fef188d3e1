import { SetMetadata } from '@nestjs/common';
import type { HttpRateLimitOptions, Rate, RateLimitHeaderOptions } from '@breakwater/core';
import type { HttpRequestLike } from './breakwater-options.interface';
import { RATE_LIMIT_METADATA, SKIP_RATE_LIMIT_METADATA } from './breakwater.constants';

/**
 * Options of {@link RateLimit}: a named limiter of the module (`limiter`), or a rate for a limiter
 * of the route's own, plus the request hooks.
 */
export interface RateLimitOptions<Req = HttpRequestLike> extends Pick<
  HttpRateLimitOptions<Req>,
  'rate' | 'limit' | 'window' | 'algorithm' | 'burst' | 'blockDurationMs' | 'key' | 'skip' | 'cost'
> {
  /** A limiter configured in `BreakwaterModule` options, instead of a rate. */
  limiter?: string;
  /** Name of the route's own limiter (headers, health, store keys). @defaultValue `'<Class>.<method>'` */
  name?: string;
  /** Which headers to send. @defaultValue the module's `rateLimit.headers` */
  headers?: RateLimitHeaderOptions;
}

/**
 * Rate-limits a route (on a method) or every route of a controller (on the class; each route gets
 * its own budget) when `RateLimitGuard` runs. Several `@RateLimit()` on one target (or one with a
 * list) stack: every limit is enforced, in the order written, and each appears in the
 * `RateLimit-Policy` / `RateLimit` header lists. Method limits replace class limits.
 *
 * On a provider method (not a route) the call itself is limited, every call counting under one
 * key, and a refusal rejects with a `RateLimitError` (429 through `BreakwaterExceptionFilter`).
 * Only records metadata; limiters are built once at bootstrap.
 *
 * @example
 * ```ts
 * @RateLimit('10/m')
 * @Post('login')
 * login() {}
 *
 * @RateLimit({ name: 'short', rate: '3/s' })
 * @RateLimit({ name: 'long', rate: '100/m' })
 * @Get('search')
 * search() {}
 *
 * @RateLimit({ limiter: 'api', key: (req) => String(req.headers['x-api-key'] ?? req.ip) })
 * @Get('plants')
 * plants() {}
 * ```
 */
export function RateLimit<Req = HttpRequestLike>(
  rateOrOptions: Rate | RateLimitOptions<Req> | readonly (Rate | RateLimitOptions<Req>)[],
): MethodDecorator & ClassDecorator {
  const list = (Array.isArray(rateOrOptions) ? rateOrOptions : [rateOrOptions]) as readonly (
    Rate | RateLimitOptions<Req>
  )[];
  const added = list.map((item): RateLimitOptions<Req> =>
    typeof item === 'string' || isRateSpec(item) ? { rate: item } : { ...item },
  );
  return prepend(RATE_LIMIT_METADATA, added);
}

/**
 * Exempts a route (on a method) or a controller (on the class) from `RateLimitGuard`:
 * `@SkipRateLimit()` from every limit, `@SkipRateLimit('name')` from the limits of that name (a
 * limiter of the module, or the `name` of a route's own limit); several names stack.
 * `@SkipRateLimit(false)` on a method re-enables limiting inside a skipped controller. Method
 * settings replace class settings.
 */
export function SkipRateLimit(skip: boolean | string = true): MethodDecorator & ClassDecorator {
  if (typeof skip === 'string') return prepend(SKIP_RATE_LIMIT_METADATA, [skip]);
  return SetMetadata(SKIP_RATE_LIMIT_METADATA, skip);
}

/** Records `items` before the list already recorded, so stacked decorators keep their written order. */
function prepend(key: string, items: readonly unknown[]): MethodDecorator & ClassDecorator {
  return (target: object, _key?: string | symbol, descriptor?: PropertyDescriptor): void => {
    const on = (descriptor?.value ?? target) as object;
    const existing: unknown = Reflect.getOwnMetadata(key, on);
    const earlier: readonly unknown[] = Array.isArray(existing) ? existing : [];
    Reflect.defineMetadata(key, [...items, ...earlier], on);
  };
}

function isRateSpec(value: object): value is Exclude<Rate, string> {
  const keys = Object.keys(value);
  return keys.length === 2 && keys.includes('limit') && keys.includes('window');
}
