import { CircuitBreaker, pipeline, retry, timeout } from '@breakwater/core';
import {
  ConsecutiveBreaker,
  ExponentialBackoff,
  TimeoutStrategy,
  circuitBreaker,
  handleAll,
  retry as cockatielRetry,
  timeout as cockatielTimeout,
  wrap,
} from 'cockatiel';
import type { Group, TimedCase } from '../harness';
import { check, work } from '../work';

const resolvesTo42 = (call: () => Promise<unknown>) => async (): Promise<void> => {
  const value = await call();
  check(value === 42, `expected the call to resolve to 42, got ${String(value)}`);
};

/**
 * Composed policies on the success path: retry (3 attempts), a circuit breaker and a 2 s
 * timeout, ours against cockatiel's `wrap`, and each policy alone. Our timeout rejects as soon
 * as the limit passes, so cockatiel's counterpart is its aggressive strategy.
 */
export const policies: Group = {
  name: 'policies',
  description:
    'retry (3 attempts) + breaker + timeout (2 s) composed, and each alone, on a resolving fn.',
  setup: () => {
    const ours = {
      pipeline: pipeline(
        retry({ maxAttempts: 3 }),
        new CircuitBreaker({ name: 'bench-pipeline' }),
        timeout(2_000),
      ),
      retry: retry({ maxAttempts: 3 }),
      timeout: timeout(2_000),
    };
    // cockatiel counts retries after the first attempt: 2 retries = 3 attempts.
    const cockatielRetryPolicy = () =>
      cockatielRetry(handleAll, { maxAttempts: 2, backoff: new ExponentialBackoff() });
    const cockatielTimeoutPolicy = () => cockatielTimeout(2_000, TimeoutStrategy.Aggressive);
    const theirs = {
      wrap: wrap(
        cockatielRetryPolicy(),
        circuitBreaker(handleAll, { halfOpenAfter: 10_000, breaker: new ConsecutiveBreaker(5) }),
        cockatielTimeoutPolicy(),
      ),
      retry: cockatielRetryPolicy(),
      timeout: cockatielTimeoutPolicy(),
    };

    const cases: TimedCase[] = [
      {
        id: 'breakwater-pipeline',
        label: 'breakwater pipeline(retry, breaker, timeout)',
        library: 'breakwater',
        kind: 'async',
        fn: () => ours.pipeline.execute(work),
        verify: resolvesTo42(() => ours.pipeline.execute(work)),
        compare: [{ vs: 'cockatiel-wrap' }, { vs: 'floor/async-wrapper' }],
      },
      {
        id: 'breakwater-retry',
        label: 'breakwater retry({ maxAttempts: 3 })',
        library: 'breakwater',
        kind: 'async',
        fn: () => ours.retry.execute(work),
        verify: resolvesTo42(() => ours.retry.execute(work)),
        compare: [{ vs: 'cockatiel-retry' }],
      },
      {
        id: 'breakwater-timeout',
        label: 'breakwater timeout(2_000)',
        library: 'breakwater',
        kind: 'async',
        fn: () => ours.timeout.execute(work),
        verify: resolvesTo42(() => ours.timeout.execute(work)),
        compare: [{ vs: 'cockatiel-timeout' }],
      },
      {
        id: 'cockatiel-wrap',
        label: 'cockatiel wrap(retry, circuitBreaker, timeout)',
        library: 'cockatiel',
        kind: 'async',
        baseline: true,
        fn: () => theirs.wrap.execute(work),
        verify: resolvesTo42(() => theirs.wrap.execute(work)),
      },
      {
        id: 'cockatiel-retry',
        label: 'cockatiel retry(handleAll, { maxAttempts: 2 })',
        library: 'cockatiel',
        kind: 'async',
        fn: () => theirs.retry.execute(work),
        verify: resolvesTo42(() => theirs.retry.execute(work)),
        compare: [],
      },
      {
        id: 'cockatiel-timeout',
        label: 'cockatiel timeout(2_000, Aggressive)',
        library: 'cockatiel',
        kind: 'async',
        fn: () => theirs.timeout.execute(work),
        verify: resolvesTo42(() => theirs.timeout.execute(work)),
        compare: [],
      },
    ];
    return { cases };
  },
};
