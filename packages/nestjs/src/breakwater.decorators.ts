import { Inject } from '@nestjs/common';
import {
  BREAKWATER_OPTIONS,
  RateLimiters,
  getBreakerToken,
  getRateLimiterToken,
} from './breakwater.constants';

/**
 * Injects the circuit breaker `name`. The name must be listed in the module options
 * (`breakers.breakers`, or `breakerNames` with `forRootAsync()`); any other breaker is reached
 * through the injectable `CircuitBreakerRegistry` (`registry.get(name)`).
 */
export function InjectBreaker(name: string): PropertyDecorator & ParameterDecorator {
  return Inject(getBreakerToken(name));
}

/**
 * Injects the rate limiter `name` configured in the module options (`limiters`; with
 * `forRootAsync()` also list it in `limiterNames`).
 */
export function InjectRateLimiter(name: string): PropertyDecorator & ParameterDecorator {
  return Inject(getRateLimiterToken(name));
}

/** Injects every configured limiter by name (a `ReadonlyMap<string, RateLimiter>`). */
export function InjectRateLimiters(): PropertyDecorator & ParameterDecorator {
  return Inject(RateLimiters);
}

/** Injects the module options. */
export function InjectBreakwaterOptions(): PropertyDecorator & ParameterDecorator {
  return Inject(BREAKWATER_OPTIONS);
}
