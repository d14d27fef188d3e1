import { SetMetadata } from '@nestjs/common';
import type { RetryOptions } from '@breakwater/core';
import { RETRY_METADATA } from './breakwater.constants';

/** Options of {@link Retry}: core's `RetryOptions` plus the name and a fallback method. */
export interface RetryDecoratorOptions extends RetryOptions {
  /**
   * The policy's name. A name configured in the module (`retries`) uses that policy; other
   * names are created from these options and shared by every method that uses the name.
   * @defaultValue `'<ClassName>.<methodName>'`
   */
  name?: string;
  /**
   * A method of the same instance that answers when the last attempt fails, called as
   * `fallbackMethod(...args, error)`. Never called for an `HttpException` below 500.
   * @defaultValue none (the last error is thrown unchanged)
   */
  fallback?: string;
}

/**
 * Runs the method again when it fails (resilience4j's `@Retry`): the outermost policy of a
 * method, so each attempt passes the circuit breaker, rate limit, timeout and bulkhead again.
 * A Promise-returning method is called again; an Observable is subscribed again. By default an
 * `HttpException` below 500, an open circuit, a rate-limit refusal and a full bulkhead are not
 * retried (give `retryOn` to decide yourself). Only records metadata; `BreakwaterModule` wraps
 * the method once at bootstrap.
 *
 * @example
 * ```ts
 * @Retry({ maxAttempts: 3, backoff: exponential({ initialMs: 100 }) })
 * @CircuitBreaker('plant-id')
 * async identify(id: string): Promise<Plant> { ... }
 *
 * @Retry('plant-api') // BreakwaterModule.forRoot({ retries: { 'plant-api': { maxAttempts: 4 } } })
 * ```
 */
export function Retry(nameOrOptions: string | RetryDecoratorOptions = {}): MethodDecorator {
  const options: RetryDecoratorOptions =
    typeof nameOrOptions === 'string' ? { name: nameOrOptions } : { ...nameOrOptions };
  return SetMetadata(RETRY_METADATA, options);
}
