import { CircuitBreaker, CircuitBreakerRegistry } from '@breakwater/core';
import { collectMetrics } from '@breakwater/prometheus';
import { Registry } from 'prom-client';
import type { Group, TimedCase } from '../harness';
import { check, work } from '../work';

/** Closed-circuit `execute()` with the collector attached, at most this times the bare breaker. */
const MAX_OVERHEAD = 1.3;

/** Successful calls the collector has counted for `breaker`. */
async function countedSuccesses(register: Registry, breaker: string): Promise<number> {
  const metric = register.getSingleMetric('breakwater_calls_total');
  check(metric !== undefined, 'collectMetrics registered no breakwater_calls_total');
  const { values } = await metric.get();
  return (
    values.find((v) => v.labels.breaker === breaker && v.labels.outcome === 'success')?.value ?? 0
  );
}

/**
 * The price of Prometheus metrics on the call path: a closed-circuit `execute()` with
 * `collectMetrics` attached, against the same breaker without it and with an empty `success`
 * listener (what makes a breaker read the clock around every call, the collector's floor).
 */
export const metrics: Group = {
  name: 'metrics',
  description:
    'closed-circuit execute() of a resolving fn: no listener, an empty success listener, and ' +
    'collectMetrics (@breakwater/prometheus, own prom-client Registry) attached.',
  setup: () => {
    const bare = new CircuitBreaker({ name: 'bench-no-metrics' });
    const listened = new CircuitBreaker({ name: 'bench-success-listener' });
    listened.on('success', () => {});
    const registry = new CircuitBreakerRegistry();
    const collected = registry.get('bench-metrics');
    const register = new Registry();
    const collector = collectMetrics(registry, { register });
    const countsOnlyRegistry = new CircuitBreakerRegistry();
    const countsOnly = countsOnlyRegistry.get('bench-metrics-counts');
    const countsRegister = new Registry();
    const countsCollector = collectMetrics(countsOnlyRegistry, {
      register: countsRegister,
      durations: false,
    });

    const resolvesTo42 = (breaker: CircuitBreaker) => async (): Promise<void> => {
      const value = await breaker.execute(work);
      check(value === 42, `expected the call to resolve to 42, got ${String(value)}`);
    };

    const cases: TimedCase[] = [
      {
        id: 'no-metrics',
        label: 'breakwater execute, no metrics',
        library: 'breakwater',
        kind: 'async',
        baseline: true,
        fn: () => bare.execute(work),
        verify: resolvesTo42(bare),
      },
      {
        id: 'success-listener',
        label: 'breakwater execute, empty success listener (breaker times each call)',
        library: 'breakwater',
        kind: 'async',
        fn: () => listened.execute(work),
        verify: resolvesTo42(listened),
      },
      {
        id: 'collect-metrics',
        label: 'breakwater execute, collectMetrics attached',
        library: 'breakwater',
        kind: 'async',
        fn: () => collected.execute(work),
        verify: async () => {
          const before = await countedSuccesses(register, collected.name);
          await resolvesTo42(collected)();
          const after = await countedSuccesses(register, collected.name);
          check(after === before + 1, `the collector counted ${after - before} calls, not 1`);
        },
        compare: [{ vs: 'no-metrics', max: MAX_OVERHEAD }, { vs: 'success-listener' }],
      },
      {
        id: 'collect-metrics-counts',
        label: 'breakwater execute, collectMetrics({ durations: false }) attached',
        library: 'breakwater',
        kind: 'async',
        fn: () => countsOnly.execute(work),
        verify: async () => {
          const before = await countedSuccesses(countsRegister, countsOnly.name);
          await resolvesTo42(countsOnly)();
          const after = await countedSuccesses(countsRegister, countsOnly.name);
          check(after === before + 1, `the collector counted ${after - before} calls, not 1`);
        },
        compare: [{ vs: 'no-metrics', max: MAX_OVERHEAD }],
      },
    ];
    return {
      cases,
      teardown: () => {
        collector.stop();
        countsCollector.stop();
      },
    };
  },
};
