import { SetMetadata } from '@nestjs/common';
import type { Duration } from '@breakwater/core';
import { TIMEOUT_METADATA } from './breakwater.constants';

/** Options of {@link Timeout}. */
export interface TimeoutDecoratorOptions {
  /** Time limit of each call (`'2s'` also accepted). Required unless `name` is configured in the module. */
  timeoutMs?: Duration;
  /**
   * The policy's name. A name configured in the module (`timeouts`) uses that limit.
   * @defaultValue `'<ClassName>.<methodName>'`
   */
  name?: string;
  /**
   * A method of the same instance that answers when the call fails or times out, called as
   * `fallbackMethod(...args, error)`. Never called for an `HttpException` below 500.
   * @defaultValue none
   */
  fallback?: string;
}

/**
 * Gives each call a time limit (resilience4j's `@TimeLimiter`): past it the call rejects with a
 * `TimeoutError` (504 through `BreakwaterExceptionFilter`). An Observable's subscription is
 * ended at the limit; a Promise-returning method cannot be stopped, so its result is ignored.
 * Only records metadata; `BreakwaterModule` wraps the method once at bootstrap.
 *
 * @param msOrNameOrOptions - a limit in milliseconds, the name of a module `timeouts` entry, or
 * options
 * @example
 * ```ts
 * @Timeout(2_000)
 * @Timeout('plant-api') // BreakwaterModule.forRoot({ timeouts: { 'plant-api': '2s' } })
 * @Timeout({ timeoutMs: '2s', fallback: 'cached' })
 * ```
 */
export function Timeout(
  msOrNameOrOptions: number | string | TimeoutDecoratorOptions,
): MethodDecorator {
  const options: TimeoutDecoratorOptions =
    typeof msOrNameOrOptions === 'number'
      ? { timeoutMs: msOrNameOrOptions }
      : typeof msOrNameOrOptions === 'string'
        ? { name: msOrNameOrOptions }
        : { ...msOrNameOrOptions };
  return SetMetadata(TIMEOUT_METADATA, options);
}
