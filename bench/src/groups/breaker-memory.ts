import { CircuitBreaker } from '@breakwater/core';
import { ConsecutiveBreaker, CountBreaker, circuitBreaker, handleAll } from 'cockatiel';
import Opossum from 'opossum';
import type { Group, MemoryCase } from '../harness';
import { work } from '../work';

const COUNT = 10_000;

const names = (count: number): string[] =>
  Array.from({ length: count }, (_, i) => `dependency-${i}`);

/** Idle breakers, e.g. one per route or tenant: heap and timers each one holds. */
export const breakerMemory: Group = {
  name: 'breaker-memory',
  description: `heap bytes and timers per idle breaker, over ${COUNT.toLocaleString('en-US')} breakers kept alive.`,
  setup: () => {
    const cases: MemoryCase[] = [
      {
        id: 'breakwater-count-100',
        label: 'breakwater, count window 100',
        library: 'breakwater',
        kind: 'memory',
        count: COUNT,
        prepare: names,
        create: (i, prepared) =>
          new CircuitBreaker({
            name: prepared[i]!,
            failureRateThreshold: 50,
            window: { type: 'count', size: 100 },
          }),
        maxBytes: 700,
        maxTimers: 0,
        compare: [{ vs: 'cockatiel-count-100' }, { vs: 'opossum-defaults' }],
      },
      {
        id: 'opossum-defaults',
        label: 'opossum, defaults',
        library: 'opossum',
        kind: 'memory',
        count: COUNT,
        prepare: names,
        create: (i, prepared) => new Opossum(work, { name: prepared[i]! }),
        dispose: (instances) => {
          for (const breaker of instances) (breaker as Opossum).shutdown();
        },
      },
      {
        id: 'cockatiel-count-100',
        label: 'cockatiel CountBreaker(50%, 100)',
        library: 'cockatiel',
        kind: 'memory',
        count: COUNT,
        create: () =>
          circuitBreaker(handleAll, {
            halfOpenAfter: 10_000,
            breaker: new CountBreaker({ threshold: 0.5, size: 100 }),
          }),
      },
      {
        id: 'cockatiel-consecutive',
        label: 'cockatiel ConsecutiveBreaker(5)',
        library: 'cockatiel',
        kind: 'memory',
        count: COUNT,
        create: () =>
          circuitBreaker(handleAll, { halfOpenAfter: 10_000, breaker: new ConsecutiveBreaker(5) }),
      },
    ];
    return { cases };
  },
};
