import { CircuitBreaker, type CircuitBreakerOptions } from '../src/breaker/circuit-breaker';
import { isConfigError, type ConfigError } from '../src/errors';

/** Helpers shared by the breaker's unit tests. */

export class FakeClock {
  t = 1_000_000;
  now = (): number => this.t;
  advance(ms: number): void {
    this.t += ms;
  }
}

export const boom = new Error('boom');
export const ok = (): Promise<string> => Promise.resolve('ok');
export const fail = (): Promise<never> => Promise.reject(boom);

export function make(options: Partial<CircuitBreakerOptions> = {}, clock = new FakeClock()) {
  const breaker = new CircuitBreaker({ name: 'test', clock, ...options });
  return { breaker, clock };
}

export async function failTimes(breaker: CircuitBreaker, n: number): Promise<void> {
  for (let i = 0; i < n; i++) await breaker.execute(fail).catch(() => undefined);
}

export function configError(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (error) {
    if (isConfigError(error)) return error;
    throw error;
  }
  throw new Error('expected a ConfigError');
}
