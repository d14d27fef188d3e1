import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import fc from 'fast-check';
import { LONG } from '../support/paths';
import { judge, unwatchTimers, watchTimers } from './judge';
import { targets, type Args, type Target } from './targets';

/**
 * Every public constructor and middleware factory, fed random option objects (valid ones with
 * zero to three faults: junk values at any depth, dropped fields, unknown keys; and junk in place
 * of the options): each returns a working object or throws a `ConfigError` whose path names an
 * option of the input, and nothing else. "Working" includes arming no timer Node cannot hold.
 */

const RUNS = Number(process.env.BREAKWATER_FC_RUNS ?? (LONG ? 20_000 : 400));

const unhandled: unknown[] = [];
const onUnhandled = (reason: unknown): void => {
  unhandled.push(reason);
};

beforeAll(() => {
  watchTimers();
  // Hooks that fail on purpose make the rate-limit middleware warn once per instance.
  jest.spyOn(process, 'emitWarning').mockImplementation(() => undefined);
  process.on('unhandledRejection', onUnhandled);
});

afterAll(() => {
  unwatchTimers();
  jest.restoreAllMocks();
  process.off('unhandledRejection', onUnhandled);
});

function find(name: string): Target {
  const found = targets.find((t) => t.name === name);
  if (found === undefined) throw new Error(`no target ${name}`);
  return found;
}

describe('config fuzzing: a working object or a ConfigError naming an input option', () => {
  it.each(targets.map((t) => [t.name, t] as const))(
    '%s',
    async (_name, subject) => {
      await fc.assert(
        fc.asyncProperty(subject.args, (args) => judge(subject, args)),
        { numRuns: RUNS },
      );
    },
    LONG ? 600_000 : 60_000,
  );
});

/**
 * Durations parse up to 2^53 ms, but a Node.js timer holds at most 2^31 - 1 ms (24.8 days) and
 * fires a longer one after 1 ms. Every duration option that ends up in a timer is tried with a
 * value just past that bound, with everything else valid: refused with a ConfigError, or used
 * without arming such a timer.
 */
const LONGER_THAN_A_TIMER = '25d';
const hugeDurations: [string, Args][] = [
  ['CircuitBreaker', { options: { name: 'b', timeoutMs: LONGER_THAN_A_TIMER } }],
  ['CircuitBreaker', { options: { name: 'b', openDurationMs: LONGER_THAN_A_TIMER } }],
  ['CircuitBreaker', { options: { name: 'b', halfOpen: { maxWaitMs: LONGER_THAN_A_TIMER } } }],
  [
    'CircuitBreaker',
    { options: { name: 'b', slowCallDurationMs: LONGER_THAN_A_TIMER, slowCallRateThreshold: 50 } },
  ],
  ['CircuitBreakerRegistry', { options: { defaults: { timeoutMs: LONGER_THAN_A_TIMER } } }],
  ['timeout', { timeoutMs: LONGER_THAN_A_TIMER }],
  ['bulkhead', { options: { maxConcurrent: 1, queueTimeoutMs: LONGER_THAN_A_TIMER } }],
  ['exponential', { options: { initialMs: LONGER_THAN_A_TIMER, maxMs: LONGER_THAN_A_TIMER } }],
  ['constant', { ms: LONGER_THAN_A_TIMER }],
  ['RetryBudget', { options: { windowMs: LONGER_THAN_A_TIMER } }],
  ['createFetch', { options: { timeoutMs: LONGER_THAN_A_TIMER } }],
  ['MemoryRateLimitStore', { options: { sweepIntervalMs: LONGER_THAN_A_TIMER } }],
  ['RateLimiter', { options: { name: 'l', rate: '10/s', storeTimeoutMs: LONGER_THAN_A_TIMER } }],
  ['FailoverRateLimitStore', { stores: [], options: { storeTimeoutMs: LONGER_THAN_A_TIMER } }],
  ['HealthRoutes', { options: { stream: { heartbeatMs: LONGER_THAN_A_TIMER } } }],
];

describe(`durations longer than a timer can hold (${LONGER_THAN_A_TIMER})`, () => {
  it.each(hugeDurations.map(([name, args]) => [name, JSON.stringify(args), args] as const))(
    '%s %s',
    async (name, _shown, args) => {
      // A failover store needs a member that is not local for its timer to run.
      const input = name === 'FailoverRateLimitStore' ? { ...args, stores: [slowMember()] } : args;
      await judge(find(name), input);
    },
  );
});

/** A shared store that answers (allowing) after 10 ms. */
function slowMember(): object {
  return {
    local: false,
    consume: () =>
      new Promise((resolve) =>
        setTimeout(
          () => resolve({ allowed: true, limit: 5, remaining: 4, resetMs: 1_000, retryAfterMs: 0 }),
          10,
        ),
      ),
    reset: () => Promise.resolve(),
  };
}

describe('config fuzzing side effects', () => {
  it('left no rejection unhandled', async () => {
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(unhandled).toEqual([]);
  });
});
