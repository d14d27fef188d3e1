import { SetMetadata } from '@nestjs/common';
import type { BreakerDefaults } from '@breakwater/core';
import { CIRCUIT_BREAKER_METADATA } from './breakwater.constants';

/** Options of {@link CircuitBreaker}: breaker options plus the name and a fallback method. */
export interface CircuitBreakerDecoratorOptions extends Omit<BreakerDefaults, 'fallback'> {
  /** The breaker's name in the registry. @defaultValue `'<ClassName>.<methodName>'` */
  name?: string;
  /**
   * A method of the same instance that answers when the call fails or the circuit is open. It is
   * called with the same `this`, the same arguments and the error last:
   * `fallbackMethod(...args, error)`. Never called for an error the breaker does not count (by
   * default an `HttpException` below 500). @defaultValue none (the error is thrown)
   */
  fallback?: string;
}

/**
 * Protects a provider or controller method with the circuit breaker `name` from the module's
 * registry. The decorator only records metadata; `BreakwaterModule` wraps the method once at
 * bootstrap. A method declared to return an `Observable` keeps returning one (the breaker
 * guards each subscription); any other protected method returns a Promise (a synchronous method
 * becomes asynchronous).
 *
 * An `HttpException` with a status below 500 (`NotFoundException`...) is the caller's mistake:
 * it is neither a failure nor a success and is never replaced by the fallback, unless `isFailure`
 * (here, or in the module's options for the name) decides otherwise.
 *
 * Breaker options given here apply when the breaker is created; the module's per-name options
 * (`breakers.breakers[name]`) override them.
 *
 * @example
 * ```ts
 * @Injectable()
 * export class PlantService {
 *   @CircuitBreaker({ name: 'plant-id', failureThreshold: 3, fallback: 'cached' })
 *   async identify(image: Buffer): Promise<Plant> { ... }
 *
 *   cached(image: Buffer, error: unknown): Plant { ... }
 * }
 * ```
 */
export function CircuitBreaker(
  nameOrOptions: string | CircuitBreakerDecoratorOptions = {},
): MethodDecorator {
  const options: CircuitBreakerDecoratorOptions =
    typeof nameOrOptions === 'string' ? { name: nameOrOptions } : { ...nameOrOptions };
  return SetMetadata(CIRCUIT_BREAKER_METADATA, options);
}
