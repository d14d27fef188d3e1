import { CircuitBreaker } from '@breakwater/core';
import {
  ConsecutiveBreaker,
  CountBreaker,
  SamplingBreaker,
  circuitBreaker,
  handleAll,
} from 'cockatiel';
import Opossum from 'opossum';
import type { Group, TimedCase } from '../harness';
import { check, work } from '../work';

const WRAPPER = 'floor/async-wrapper';

function resolvesTo42(call: () => Promise<unknown>): () => Promise<void> {
  return async () => {
    const value = await call();
    check(value === 42, `expected the call to resolve to 42, got ${String(value)}`);
  };
}

/** A closed breaker in front of an async function that resolves: the price of every call. */
export const breakerClosed: Group = {
  name: 'breaker-closed',
  description:
    'closed circuit, sequential awaited calls of a resolving async fn (what a request handler does).',
  setup: () => {
    const consecutive = new CircuitBreaker({ name: 'bench-consecutive' });
    const countWindow = new CircuitBreaker({
      name: 'bench-count',
      failureRateThreshold: 50,
      window: { type: 'count', size: 100 },
    });
    const timeWindow = new CircuitBreaker({
      name: 'bench-time',
      failureRateThreshold: 50,
      window: { type: 'time', durationMs: 10_000, buckets: 10 },
    });
    const permits = new CircuitBreaker({ name: 'bench-permits' });
    const opossumDefaults = new Opossum(work);
    const opossumNoTimeout = new Opossum(work, { timeout: false });
    const cockatielConsecutive = circuitBreaker(handleAll, {
      halfOpenAfter: 10_000,
      breaker: new ConsecutiveBreaker(5),
    });
    const cockatielSampling = circuitBreaker(handleAll, {
      halfOpenAfter: 10_000,
      breaker: new SamplingBreaker({ threshold: 0.5, duration: 10_000 }),
    });
    const cockatielCount = circuitBreaker(handleAll, {
      halfOpenAfter: 10_000,
      breaker: new CountBreaker({ threshold: 0.5, size: 100 }),
    });

    const cases: TimedCase[] = [
      {
        id: 'breakwater-consecutive',
        label: 'breakwater execute, consecutive (defaults)',
        library: 'breakwater',
        kind: 'async',
        fn: () => consecutive.execute(work),
        verify: resolvesTo42(() => consecutive.execute(work)),
        compare: [
          { vs: WRAPPER, max: 1.15 },
          { vs: 'cockatiel-consecutive', max: 0.75 },
          { vs: 'opossum-defaults', max: 0.2 },
        ],
      },
      {
        id: 'breakwater-count-window',
        label: 'breakwater execute, count window 100, rate 50%',
        library: 'breakwater',
        kind: 'async',
        fn: () => countWindow.execute(work),
        verify: resolvesTo42(() => countWindow.execute(work)),
        compare: [{ vs: WRAPPER }, { vs: 'cockatiel-count' }],
      },
      {
        id: 'breakwater-time-window',
        label: 'breakwater execute, time window 10s/10 buckets',
        library: 'breakwater',
        kind: 'async',
        fn: () => timeWindow.execute(work),
        verify: resolvesTo42(() => timeWindow.execute(work)),
        compare: [{ vs: WRAPPER }, { vs: 'cockatiel-sampling' }],
      },
      {
        id: 'breakwater-try-acquire',
        label: 'breakwater tryAcquire + await fn() + success()',
        library: 'breakwater',
        kind: 'async',
        fn: async () => {
          const permit = permits.tryAcquire()!;
          await work();
          permit.success();
        },
        verify: () =>
          check(permits.tryAcquire() !== undefined, 'tryAcquire rejected a closed call'),
        compare: [{ vs: WRAPPER }, { vs: 'breakwater-consecutive' }],
      },
      {
        id: 'opossum-defaults',
        label: 'opossum fire(), defaults (10 s timeout)',
        library: 'opossum',
        kind: 'async',
        fn: () => opossumDefaults.fire(),
        verify: resolvesTo42(() => opossumDefaults.fire()),
        compare: [{ vs: WRAPPER }],
      },
      {
        id: 'opossum-no-timeout',
        label: 'opossum fire(), timeout: false',
        library: 'opossum',
        kind: 'async',
        fn: () => opossumNoTimeout.fire(),
        verify: resolvesTo42(() => opossumNoTimeout.fire()),
        compare: [{ vs: WRAPPER }],
      },
      {
        id: 'cockatiel-consecutive',
        label: 'cockatiel ConsecutiveBreaker(5)',
        library: 'cockatiel',
        kind: 'async',
        fn: () => cockatielConsecutive.execute(work),
        verify: resolvesTo42(() => cockatielConsecutive.execute(work)),
        compare: [{ vs: WRAPPER }],
      },
      {
        id: 'cockatiel-sampling',
        label: 'cockatiel SamplingBreaker(50%, 10 s)',
        library: 'cockatiel',
        kind: 'async',
        fn: () => cockatielSampling.execute(work),
        verify: resolvesTo42(() => cockatielSampling.execute(work)),
        compare: [{ vs: WRAPPER }],
      },
      {
        id: 'cockatiel-count',
        label: 'cockatiel CountBreaker(50%, 100)',
        library: 'cockatiel',
        kind: 'async',
        fn: () => cockatielCount.execute(work),
        verify: resolvesTo42(() => cockatielCount.execute(work)),
        compare: [{ vs: WRAPPER }],
      },
    ];
    return {
      cases,
      teardown: () => {
        opossumDefaults.shutdown();
        opossumNoTimeout.shutdown();
      },
    };
  },
};
