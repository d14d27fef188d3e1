import { RateLimiter, type RateLimitAlgorithm } from '@breakwater/core';
import { MemoryStore, type Options } from 'express-rate-limit';
import { RateLimiterMemory } from 'rate-limiter-flexible';
import type { Group, TimedCase } from '../harness';
import { check } from '../work';
import { LIMIT, keyCycle } from './keys';

const ALGORITHMS: readonly RateLimitAlgorithm[] = [
  'fixed-window',
  'sliding-window',
  'token-bucket',
];

/** In-process rate limiting: one decision per request, over 1,024 client keys. */
export const rateLimit: Group = {
  name: 'rate-limit',
  description: `in-memory limiters, one consume per call over 1,024 keys, ${LIMIT.toLocaleString('en-US')}/min (always allowed).`,
  setup: () => {
    const ours = ALGORITHMS.map(
      (algorithm) =>
        [
          algorithm,
          new RateLimiter({ name: `bench-${algorithm}`, algorithm, limit: LIMIT, window: '1m' }),
        ] as const,
    );
    const flexible = new RateLimiterMemory({ points: LIMIT, duration: 60 });
    const erl = new MemoryStore();
    erl.init({ windowMs: 60_000 } as Options);

    const cases: TimedCase[] = ours.map(([algorithm, limiter]) => {
      const next = keyCycle();
      return {
        id: `breakwater-${algorithm}`,
        label: `breakwater RateLimiter ${algorithm}, memory`,
        library: 'breakwater',
        kind: 'async',
        fn: () => limiter.consume(next()),
        verify: async () => {
          const decision = await limiter.consume('verify');
          check(decision.allowed, `${algorithm}: the first call was refused`);
        },
        compare: [{ vs: 'rate-limiter-flexible-memory' }, { vs: 'express-rate-limit-memory' }],
      };
    });
    const nextFlexible = keyCycle();
    const nextErl = keyCycle();
    cases.push(
      {
        id: 'rate-limiter-flexible-memory',
        label: 'rate-limiter-flexible RateLimiterMemory',
        library: 'rate-limiter-flexible',
        kind: 'async',
        baseline: true,
        fn: () => flexible.consume(nextFlexible()),
        verify: async () => {
          const res = await flexible.consume('verify');
          check(res.remainingPoints === LIMIT - 1, 'rate-limiter-flexible did not count the call');
        },
      },
      {
        id: 'express-rate-limit-memory',
        label: 'express-rate-limit MemoryStore.increment',
        library: 'express-rate-limit',
        kind: 'async',
        fn: () => erl.increment(nextErl()),
        verify: async () => {
          const info = await erl.increment('verify');
          check(info.totalHits === 1, 'express-rate-limit did not count the call');
        },
      },
    );
    return {
      cases,
      teardown: async () => {
        erl.shutdown();
        await Promise.all(ours.map(([, limiter]) => limiter.close()));
      },
    };
  },
};
