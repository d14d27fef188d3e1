import { describe, expect, it, jest } from '@jest/globals';
import { CircuitBreakerRegistry, RateLimiter, isConfigError } from '@breakwater/core';
import { BreakwaterState } from './breakwater-state';

function configErrorPath(fn: () => unknown): unknown {
  try {
    fn();
  } catch (error) {
    return isConfigError(error) ? error.path : error;
  }
  return undefined;
}

describe('BreakwaterState', () => {
  it('builds the registry and named limiters, and uses given ones as they are', async () => {
    const registry = new CircuitBreakerRegistry();
    const shared = new RateLimiter({ name: 'shared', rate: '1/s' });
    const state = new BreakwaterState(
      { breakers: registry, limiters: { api: { rate: '5/m' }, shared }, defaultLimiter: 'api' },
      undefined,
    );
    expect(state.registry).toBe(registry);
    expect(state.limiters.get('shared')).toBe(shared);
    expect(state.limiters.get('api')?.name).toBe('api');
    expect(state.defaultLimiter).toBe(state.limiters.get('api'));
    expect(state.health).toBeUndefined();
    await state.close();
  });

  it('gives route limiters one shared memory store and reports them', async () => {
    const state = new BreakwaterState({}, '/health');
    const a = state.routeLimiter('A.a', { rate: '1/m' });
    const b = state.routeLimiter('B.b', { rate: '1/m' });
    expect(a.store).toBe(b.store);
    expect(state.reporters).toEqual([a, b]);
    expect(state.health?.basePath).toBe('/health');
    await state.close();
  });

  it('adapts a Nest LoggerService and logs breaker transitions through it', async () => {
    const log = jest.fn<(message: string) => void>();
    const nest = { log, warn: jest.fn(), error: jest.fn() };
    const state = new BreakwaterState({ logger: nest }, undefined);
    const breaker = state.registry.get('plant-id', { failureThreshold: 1 });
    breaker.open();
    expect(log.mock.calls.length + nest.warn.mock.calls.length).toBeGreaterThan(0);
    const lines = [...log.mock.calls, ...nest.warn.mock.calls].map((c) => String(c[0]));
    expect(lines.some((line) => line.includes('plant-id'))).toBe(true);
    await state.close();
  });

  it('names the option at fault', () => {
    expect(configErrorPath(() => new BreakwaterState(null as never, undefined))).toBe('options');
    expect(
      configErrorPath(() => new BreakwaterState({ limiters: { a: 5 as never } }, undefined)),
    ).toBe('limiters.a');
    expect(configErrorPath(() => new BreakwaterState({ defaultLimiter: 'x' }, undefined))).toBe(
      'defaultLimiter',
    );
    expect(
      configErrorPath(
        () =>
          new BreakwaterState({ rateLimit: { defaults: { algorithm: 'x' as never } } }, undefined),
      ),
    ).toBe('rateLimit.defaults.algorithm');
    expect(
      configErrorPath(() => new BreakwaterState({ health: { path: '/status' } }, '/health')),
    ).toBe('health.path');
    expect(
      configErrorPath(() => new BreakwaterState({ health: { admin: {} as never } }, '/h')),
    ).toBe('health.admin.authorize');
  });
});
