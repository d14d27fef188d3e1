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
   * `fallbackMethod(...args, error)`. @defaultValue none (the error is thrown)
   */
  fallback?: string;
}

/**
 * Protects a provider or controller method with the circuit breaker `name` from the module's
 * registry. The decorator only records metadata; `BreakwaterModule` wraps the method once at
 * bootstrap. The protected method always returns a Promise (a synchronous method becomes
 * asynchronous); a method returning an Observable is refused.
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
