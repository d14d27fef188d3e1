import { describe, expect, it } from '@jest/globals';
import { CircuitBreaker } from './circuit-breaker';
import { CircuitBreakerRegistry } from './registry';
import { isConfigError, isRegistryFullError } from '../errors';

const clock = {
  t: 0,
  now(): number {
    return this.t;
  },
};

describe('CircuitBreakerRegistry', () => {
  it('gets or creates breakers, merging defaults, per-name options and call options', async () => {
    const registry = new CircuitBreakerRegistry({
      defaults: { failureThreshold: 5, openDurationMs: 1000 },
      breakers: { 'plant-id': { failureThreshold: 3 } },
      clock,
    });
    const plant = registry.get('plant-id', { openDurationMs: 60_000 });
    expect(registry.get('plant-id')).toBe(plant);
    for (let i = 0; i < 3; i++)
      await plant.execute(() => Promise.reject(new Error('x'))).catch(() => undefined);
    expect(plant.snapshot()).toMatchObject({ state: 'open', retryAfterMs: 60_000 });

    const other = registry.get('other');
    for (let i = 0; i < 4; i++)
      await other.execute(() => Promise.reject(new Error('x'))).catch(() => undefined);
    expect(other.state).toBe('closed');
    expect(registry.list().map((b) => b.name)).toEqual(['plant-id', 'other']);
    expect(registry.snapshot().map((s) => s.state)).toEqual(['open', 'closed']);
  });

  it('validates defaults and per-name options at construction', () => {
    expect(() => new CircuitBreakerRegistry({ defaults: { failureThreshold: -1 } })).toThrow(
      /failureThreshold/,
    );
    expect(
      () => new CircuitBreakerRegistry({ breakers: { a: { openDurationMs: 'later' } } }),
    ).toThrow(/openDurationMs/);
    expect(() => new CircuitBreakerRegistry({ maxBreakers: 0 })).toThrow(/maxBreakers/);
    expect(() => new CircuitBreakerRegistry({ maxbreakers: 10 } as never)).toThrow(/maxbreakers/);
  });

  it('refuses to grow past maxBreakers', () => {
    const registry = new CircuitBreakerRegistry({ maxBreakers: 2 });
    registry.get('a');
    registry.get('b');
    let caught: unknown;
    try {
      registry.get('c');
    } catch (error) {
      caught = error;
    }
    expect(isRegistryFullError(caught)).toBe(true);
    expect(registry.size).toBe(2);
    expect(registry.get('a').name).toBe('a'); // existing names still work
    registry.delete('a');
    expect(registry.get('c').name).toBe('c');
  });

  it('resets one or all breakers and reports unknown names', () => {
    const registry = new CircuitBreakerRegistry();
    registry.get('a').open();
    registry.get('b').open();
    expect(registry.reset('a')).toBe(true);
    expect(registry.reset('missing')).toBe(false);
    expect(registry.find('a')!.state).toBe('closed');
    expect(registry.find('b')!.state).toBe('forced_open');
    registry.resetAll();
    expect(registry.find('b')!.state).toBe('closed');
    expect(registry.find('missing')).toBeUndefined();
    expect(registry.has('missing')).toBe(false);
  });

  it('forwards every breaker transition with its name, and stops after delete', () => {
    const registry = new CircuitBreakerRegistry();
    const seen: string[] = [];
    registry.on('stateChange', ({ breaker, from, to }) => seen.push(`${breaker} ${from}->${to}`));
    const added: string[] = [];
    registry.on('add', ({ breaker }) => added.push(breaker.name));
    const a = registry.get('a');
    a.open();
    registry.delete('a');
    a.reset();
    const own = registry.add(new CircuitBreaker({ name: 'own' }));
    own.open();
    expect(seen).toEqual(['a closed->forced_open', 'own closed->forced_open']);
    expect(added).toEqual(['a', 'own']);
    let caught: unknown;
    try {
      registry.add(new CircuitBreaker({ name: 'own' }));
    } catch (error) {
      caught = error;
    }
    expect(isConfigError(caught)).toBe(true);
  });
});

describe('CircuitBreakerRegistry logger', () => {
  it('gives its logger to the breakers it creates', () => {
    const lines: string[] = [];
    const logger = {
      info: (m: string) => lines.push(m),
      warn: (m: string) => lines.push(m),
      error: (m: string) => lines.push(m),
    };
    const registry = new CircuitBreakerRegistry({ logger });
    registry.get('db').open();
    expect(lines).toEqual(['[CIRCUIT] db closed -> forced_open (forced open)']);
    expect(() => new CircuitBreakerRegistry({ logger: {} as never })).toThrow(/"logger"/);
  });
});
