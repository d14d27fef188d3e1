import type { RateLimiter } from '@breakwater/core';

/**
 * Injection token of the options given to `BreakwaterModule.forRoot()` (or returned by the
 * `forRootAsync()` factory).
 */
export const BREAKWATER_OPTIONS: unique symbol = Symbol.for('@breakwater/nestjs:options');

/** Every rate limiter configured in `BreakwaterModule` options, by name. */
export type RateLimiters = ReadonlyMap<string, RateLimiter>;
/** Injection token of the {@link RateLimiters} map (`@InjectRateLimiters()`). */
export const RateLimiters: unique symbol = Symbol.for('@breakwater/nestjs:rate-limiters');

/** Metadata key written by `@CircuitBreaker()`. */
export const CIRCUIT_BREAKER_METADATA = 'breakwater:circuit-breaker';
/** Metadata key written by `@RateLimit()`. */
export const RATE_LIMIT_METADATA = 'breakwater:rate-limit';
/** Metadata key written by `@SkipRateLimit()`. */
export const SKIP_RATE_LIMIT_METADATA = 'breakwater:skip-rate-limit';
/** Metadata key written by `@Retry()`. */
export const RETRY_METADATA = 'breakwater:retry';
/** Metadata key written by `@Timeout()`. */
export const TIMEOUT_METADATA = 'breakwater:timeout';
/** Metadata key written by `@Bulkhead()`. */
export const BULKHEAD_METADATA = 'breakwater:bulkhead';

/** @internal The resolved module state (registry, limiters, health routes). */
export const BREAKWATER_STATE: unique symbol = Symbol.for('@breakwater/nestjs:state');

/**
 * The injection token of the rate limiter called `name` (see `@InjectRateLimiter()`).
 * @example
 * ```ts
 * const limiter = app.get<RateLimiter>(getRateLimiterToken('api'));
 * ```
 */
export function getRateLimiterToken(name: string): string {
  return `BreakwaterRateLimiter:${name}`;
}

/**
 * The injection token of the circuit breaker called `name` (see `@InjectBreaker()`).
 * @example
 * ```ts
 * const breaker = app.get<CircuitBreaker>(getBreakerToken('plant-id'));
 * ```
 */
export function getBreakerToken(name: string): string {
  return `BreakwaterCircuitBreaker:${name}`;
}
