import { CircuitBreaker, isCircuitOpenError } from '@breakwater/core';
import { BrokenCircuitError, ConsecutiveBreaker, circuitBreaker, handleAll } from 'cockatiel';
import Opossum from 'opossum';
import type { Group, TimedCase } from '../harness';
import { check, rejection, work } from '../work';

const HOUR_MS = 3_600_000;

/** Rejecting a call while the circuit is open: what a failing dependency costs the caller. */
export const breakerOpen: Group = {
  name: 'breaker-open',
  description: 'open circuit: the call is rejected without running fn (errors caught).',
  setup: () => {
    const forced = new CircuitBreaker({ name: 'bench-forced-open' });
    forced.open();
    const tripped = new CircuitBreaker({ name: 'bench-open', openDurationMs: HOUR_MS });
    tripped.openFor(HOUR_MS);
    const permits = new CircuitBreaker({ name: 'bench-open-permits' });
    permits.open();
    const cockatiel = circuitBreaker(handleAll, {
      halfOpenAfter: 10_000,
      breaker: new ConsecutiveBreaker(5),
    });
    const isolation = cockatiel.isolate();
    // A long reset timeout keeps the circuit open for the whole run.
    const opossum = new Opossum(work, { resetTimeout: HOUR_MS });
    opossum.open();

    const rejectsWith =
      (call: () => Promise<unknown>, accept: (error: unknown) => boolean, what: string) =>
      async () => {
        const error = await rejection(call);
        check(accept(error), `expected ${what}, got ${String(error)}`);
      };

    const cases: TimedCase[] = [
      {
        id: 'breakwater-execute',
        label: 'breakwater execute, forced open (catch)',
        library: 'breakwater',
        kind: 'async',
        expect: 'reject',
        fn: () => forced.execute(work),
        verify: rejectsWith(() => forced.execute(work), isCircuitOpenError, 'a CircuitOpenError'),
        compare: [
          { vs: 'cockatiel-isolated', max: 0.5 },
          { vs: 'opossum-open' },
          { vs: 'floor/await-rejection' },
        ],
      },
      {
        id: 'breakwater-execute-tripped',
        label: 'breakwater execute, open for 1 h (catch)',
        library: 'breakwater',
        kind: 'async',
        expect: 'reject',
        fn: () => tripped.execute(work),
        verify: rejectsWith(() => tripped.execute(work), isCircuitOpenError, 'a CircuitOpenError'),
        compare: [{ vs: 'cockatiel-isolated' }, { vs: 'opossum-open' }],
      },
      {
        id: 'breakwater-try-acquire',
        label: 'breakwater tryAcquire() -> undefined (sync)',
        library: 'breakwater',
        kind: 'sync',
        fn: () => permits.tryAcquire(),
        verify: () => check(permits.tryAcquire() === undefined, 'tryAcquire admitted a call'),
        maxNs: 50,
        compare: [],
      },
      {
        id: 'cockatiel-isolated',
        label: 'cockatiel isolate() (catch)',
        library: 'cockatiel',
        kind: 'async',
        baseline: true,
        expect: 'reject',
        fn: () => cockatiel.execute(work),
        verify: rejectsWith(
          () => cockatiel.execute(work),
          (e) => e instanceof BrokenCircuitError,
          'a BrokenCircuitError',
        ),
      },
      {
        id: 'opossum-open',
        label: 'opossum open() (catch)',
        library: 'opossum',
        kind: 'async',
        expect: 'reject',
        fn: () => opossum.fire(),
        verify: rejectsWith(
          () => opossum.fire(),
          (e) => (e as { code?: unknown }).code === 'EOPENBREAKER',
          'an EOPENBREAKER error',
        ),
      },
    ];
    return {
      cases,
      teardown: () => {
        isolation.dispose();
        opossum.shutdown();
      },
    };
  },
};
