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
 * its own budget) when `RateLimitGuard` runs. Only records metadata; the limiter is built once per
 * route at bootstrap.
 *
 * @example
 * ```ts
 * @RateLimit('10/m')
 * @Post('login')
 * login() {}
 *
 * @RateLimit({ limiter: 'api', key: (req) => String(req.headers['x-api-key'] ?? req.ip) })
 * @Get('plants')
 * plants() {}
 * ```
 */
export function RateLimit<Req = HttpRequestLike>(
  rateOrOptions: Rate | RateLimitOptions<Req>,
): MethodDecorator & ClassDecorator {
  const options: RateLimitOptions<Req> =
    typeof rateOrOptions === 'string' || isRateSpec(rateOrOptions)
      ? { rate: rateOrOptions }
      : { ...rateOrOptions };
  return SetMetadata(RATE_LIMIT_METADATA, options);
}

/**
 * Exempts a route (on a method) or a controller (on the class) from `RateLimitGuard`;
 * `@SkipRateLimit(false)` on a method re-enables limiting inside a skipped controller.
 */
export function SkipRateLimit(skip = true): MethodDecorator & ClassDecorator {
  return SetMetadata(SKIP_RATE_LIMIT_METADATA, skip);
}

function isRateSpec(value: object): value is Exclude<Rate, string> {
  const keys = Object.keys(value);
  return keys.length === 2 && keys.includes('limit') && keys.includes('window');
}
