import { ConfigError, isConfigError, type CircuitBreaker } from '@breakwater/core';
import { isObservable, Observable } from 'rxjs';
import type { CircuitBreakerDecoratorOptions } from '../circuit-breaker.decorator';
import type { BreakwaterState } from './breakwater-state';
import type { MethodBinding } from './method-wrapper';

type Method = (this: unknown, ...args: unknown[]) => unknown;

const OWNER = '@CircuitBreaker';
const OBSERVABLE =
  'returns an Observable, which a circuit breaker cannot protect: return a Promise (e.g. lastValueFrom(observable))';

/**
 * Binds a decorated method to its breaker: checks the decorator options once, gets the breaker
 * from the registry (decorator options under the module's per-name options) and returns how a
 * call runs, with the fallback method when one is named.
 * @throws ConfigError when the method is declared to return an Observable, the fallback is not a
 * method, or the breaker options are invalid
 * @internal
 */
export function breakerBinding(
  app: object,
  state: BreakwaterState,
  prototype: object,
  owner: object,
  key: string,
  original: Method,
  options: CircuitBreakerDecoratorOptions,
): MethodBinding {
  const where = `${(owner.constructor as { name: string }).name}.${key}`;
  const { name = where, fallback, ...breakerOptions } = options;
  const returnType = Reflect.getMetadata('design:returntype', owner, key) as unknown;
  if (
    returnType === Observable ||
    (typeof returnType === 'function' && returnType.prototype instanceof Observable)
  ) {
    throw new ConfigError(OWNER, where, 'Observable', OBSERVABLE);
  }
  if (
    fallback !== undefined &&
    typeof (prototype as Record<string, unknown>)[fallback] !== 'function'
  ) {
    throw new ConfigError(
      OWNER,
      `${where}.fallback`,
      fallback,
      'must name a method of the same class',
    );
  }
  let breaker: CircuitBreaker;
  try {
    breaker = state.registry.get(name, { ...breakerOptions, ...state.breakerOptions[name] });
  } catch (error) {
    if (!isConfigError(error)) throw error;
    throw new ConfigError(
      OWNER,
      `${where}.${error.path}`,
      error.value,
      `is invalid (${error.message})`,
    );
  }
  const call = breaker.wrap(function (this: unknown, ...args: unknown[]): unknown {
    const result = original.apply(this, args);
    if (isObservable(result)) throw new TypeError(`${where} ${OBSERVABLE}`);
    return result;
  });
  if (fallback === undefined) return { app, invoke: (self, args) => call.apply(self, args) };
  return {
    app,
    invoke: (self, args) =>
      call.apply(self, args).catch((error: unknown) => {
        const method = (self as Record<string, Method>)[fallback]!;
        return method.apply(self, [...args, error]);
      }),
  };
}
