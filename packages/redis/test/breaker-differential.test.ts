import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { CircuitBreaker, type CircuitBreakerOptions } from '@breakwater/core';
import type { Redis } from 'ioredis';
import { RedisBreakerStore, createRedisClient } from '../src';
import { redisUrl, skipReason, whenReady } from './helpers';

/*
 * Differential test of the two circuits: the TypeScript one (a local CircuitBreaker) and the Lua
 * one (a CircuitBreaker in shared scope on a real redis-server). The same random sequence of
 * calls, outcomes, clock steps and operator actions drives both, and their state is compared
 * after every step.
 *
 * Both decide on one fake clock: the breakers read it through their `clock` option, and the
 * store sends it to the script instead of the server's TIME. The store's quiet period is zero
 * and every step ends once the store has answered everything, so the shared breaker decides on
 * exactly the calls the local one saw.
 */

const describeRedis = redisUrl ? describe : describe.skip;
/** As many runs as the model test (1,000; BREAKWATER_FC_RUNS=10000 for the long run). */
const NUM_RUNS = Number(process.env.BREAKWATER_FC_RUNS ?? 1_000);
const runId = `${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;
let nameSeq = 0;

interface Config {
  failureThreshold: number | false;
  openDurationMs: number;
  backoff?: { multiplier: number; maxMs: number; resetAfterMs?: number };
  halfOpen: { maxConcurrent: number; successThreshold: number; maxWaitMs?: number };
  rate?: {
    failureRateThreshold: number;
    minimumCalls: number;
    window: { type: 'count'; size: number } | { type: 'time'; durationMs: number; buckets: number };
  };
}

const configArb: fc.Arbitrary<Config> = fc
  .record({
    failureThreshold: fc.oneof(
      { arbitrary: fc.integer({ min: 1, max: 4 }), weight: 9 },
      { arbitrary: fc.constant(false as const), weight: 1 },
    ),
    openDurationMs: fc.integer({ min: 1, max: 100 }),
    backoff: fc.option(
      fc.record({
        // Both sides floor a backoff open time to whole milliseconds (1 ms * 1.5 = 1 ms).
        multiplier: fc.constantFrom(1.5, 2, 3),
        maxExtraMs: fc.integer({ min: 0, max: 400 }),
        resetAfterMs: fc.option(fc.integer({ min: 1, max: 300 }), { nil: undefined }),
      }),
      { nil: undefined, freq: 2 },
    ),
    maxConcurrent: fc.integer({ min: 1, max: 3 }),
    successThreshold: fc.integer({ min: 1, max: 3 }),
    maxWaitMs: fc.option(fc.integer({ min: 1, max: 200 }), { nil: undefined, freq: 2 }),
    rate: fc.option(
      fc.record({
        failureRateThreshold: fc.oneof(fc.integer({ min: 1, max: 100 }), fc.constant(33.3)),
        minimumCalls: fc.integer({ min: 1, max: 6 }),
        window: fc.oneof(
          fc.record({ type: fc.constant('count' as const), size: fc.integer({ min: 1, max: 8 }) }),
          fc.record({
            type: fc.constant('time' as const),
            durationMs: fc.integer({ min: 10, max: 1_000 }),
            buckets: fc.integer({ min: 1, max: 10 }),
          }),
        ),
      }),
      { nil: undefined, freq: 2 },
    ),
  })
  .map((drawn): Config => {
    const config: Config = {
      failureThreshold: drawn.failureThreshold,
      openDurationMs: drawn.openDurationMs,
      halfOpen: { maxConcurrent: drawn.maxConcurrent, successThreshold: drawn.successThreshold },
    };
    if (drawn.maxWaitMs !== undefined) config.halfOpen.maxWaitMs = drawn.maxWaitMs;
    if (drawn.rate !== undefined) config.rate = drawn.rate;
    if (drawn.backoff !== undefined) {
      const { multiplier, maxExtraMs, resetAfterMs } = drawn.backoff;
      config.backoff = { multiplier, maxMs: drawn.openDurationMs + maxExtraMs };
      if (resetAfterMs !== undefined) config.backoff.resetAfterMs = resetAfterMs;
    }
    return config;
  });

type Outcome = 'success' | 'failure' | 'ignore';

type Step =
  | { type: 'call'; outcome: Outcome } // a call settled at once
  | { type: 'start' } // a call left in flight
  | { type: 'settle'; pick: number; outcome: Outcome }
  | { type: 'advance'; ms: number }
  | { type: 'open' }
  | { type: 'openFor'; ms: number }
  | { type: 'disable' }
  | { type: 'reset' };

const outcomeArb = fc.oneof(
  { arbitrary: fc.constant<Outcome>('failure'), weight: 4 },
  { arbitrary: fc.constant<Outcome>('success'), weight: 4 },
  { arbitrary: fc.constant<Outcome>('ignore'), weight: 1 },
);

const stepArb = (operatorWeight: number): fc.Arbitrary<Step> =>
  fc.oneof(
    {
      arbitrary: fc.record({ type: fc.constant('call' as const), outcome: outcomeArb }),
      weight: 10,
    },
    { arbitrary: fc.constant({ type: 'start' as const }), weight: 4 },
    {
      arbitrary: fc.record({
        type: fc.constant('settle' as const),
        pick: fc.nat(),
        outcome: outcomeArb,
      }),
      weight: 4,
    },
    {
      arbitrary: fc.record({
        type: fc.constant('advance' as const),
        ms: fc.oneof(fc.integer({ min: 1, max: 20 }), fc.integer({ min: 1, max: 600 })),
      }),
      weight: 5,
    },
    { arbitrary: fc.constant({ type: 'open' as const }), weight: operatorWeight },
    {
      arbitrary: fc.record({
        type: fc.constant('openFor' as const),
        ms: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 300 })),
      }),
      weight: operatorWeight,
    },
    { arbitrary: fc.constant({ type: 'disable' as const }), weight: operatorWeight },
    { arbitrary: fc.constant({ type: 'reset' as const }), weight: 2 * operatorWeight },
  );

const stepsArb = fc
  .constantFrom(0, 1, 2)
  .chain((operatorWeight) => fc.array(stepArb(operatorWeight), { minLength: 1, maxLength: 30 }));

class Ignored extends Error {}

/** A call in flight in one breaker, settled by the test. */
interface Held {
  started: boolean;
  settle: (outcome: Outcome) => void;
  done: Promise<unknown>;
}

/** Starts a call through `breaker` that stays in flight until settled. */
function startCall(breaker: CircuitBreaker): Held {
  let resolve!: () => void;
  let reject!: (error: Error) => void;
  const held: Held = {
    started: false,
    settle: (outcome) => {
      if (outcome === 'success') resolve();
      else reject(outcome === 'failure' ? new Error('upstream failed') : new Ignored());
    },
    done: Promise.resolve(),
  };
  held.done = breaker
    .execute(() => {
      held.started = true;
      return new Promise<void>((res, rej) => {
        resolve = res;
        reject = rej;
      });
    })
    .catch(() => {});
  return held;
}

function options(config: Config, clock: { now(): number }, name: string): CircuitBreakerOptions {
  const result: CircuitBreakerOptions = {
    name,
    clock,
    failureThreshold: config.failureThreshold,
    openDurationMs: config.openDurationMs,
    halfOpen: { ...config.halfOpen },
    isFailure: (error) => !(error instanceof Ignored),
  };
  if (config.backoff !== undefined) result.backoff = { ...config.backoff };
  if (config.rate !== undefined) {
    result.failureRateThreshold = config.rate.failureRateThreshold;
    result.minimumCalls = config.rate.minimumCalls;
    result.window = { ...config.rate.window };
  }
  return result;
}

describeRedis(`Local and Redis circuits agree (differential)${skipReason}`, () => {
  let client: Redis;
  let store: RedisBreakerStore;
  /** Transitions the shared breakers took from the script: the test must exercise it. */
  let decidedByStore = 0;
  const clock = { t: 1_700_000_000_000, now: () => clock.t };

  beforeAll(async () => {
    client = createRedisClient(redisUrl!);
    await whenReady(client);
    store = new RedisBreakerStore({
      client,
      prefix: `test:diff:${runId}:`,
      quietPeriodMs: 0,
      // Generous bounds: a slow answer on a loaded machine must not send a breaker local.
      claimTimeoutMs: 10_000,
      commandTimeoutMs: 10_000,
      clock,
    });
    // Wait until the store subscribed: breakers connect to an available store.
    for (let i = 0; i < 200 && !store.available; i++) await new Promise((r) => setTimeout(r, 10));
    expect(store.available).toBe(true);
  });

  afterAll(async () => {
    await store?.close();
    client?.disconnect();
  });

  /** Lets every answer of the store reach its breaker. */
  async function quiesce(): Promise<void> {
    for (let i = 0; i < 3; i++) {
      await store.flush();
      await new Promise((resolve) => setImmediate(resolve));
    }
  }

  async function run(config: Config, steps: readonly Step[]): Promise<void> {
    const name = `diff-${runId}-${nameSeq++}`;
    const local = new CircuitBreaker(options(config, clock, name));
    const shared = new CircuitBreaker({ ...options(config, clock, name), store });
    shared.on('stateChange', ({ reason }) => {
      if (reason.endsWith('(cluster)')) decidedByStore++;
    });
    await quiesce();
    const inFlight: [Held, Held][] = [];
    const pairs: [Held, Held][] = [];
    for (const [index, step] of steps.entries()) {
      switch (step.type) {
        case 'call':
        case 'start': {
          const pair: [Held, Held] = [startCall(local), startCall(shared)];
          await quiesce();
          pairs.push(pair);
          if (step.type === 'call') {
            for (const held of pair) if (held.started) held.settle(step.outcome);
            await Promise.all(pair.map((held) => held.done));
          } else {
            inFlight.push(pair);
          }
          break;
        }
        case 'settle': {
          if (inFlight.length === 0) break;
          const [pair] = inFlight.splice(step.pick % inFlight.length, 1);
          for (const held of pair!) if (held.started) held.settle(step.outcome);
          await Promise.all(pair!.map((held) => held.done));
          break;
        }
        case 'advance':
          clock.t += step.ms;
          break;
        default:
          for (const breaker of [local, shared]) {
            if (step.type === 'openFor') breaker.openFor(step.ms);
            else breaker[step.type]();
          }
      }
      await quiesce();
      const where = `after step ${index} (${JSON.stringify(step)})`;
      const last = pairs.at(-1);
      if (last !== undefined && (step.type === 'call' || step.type === 'start')) {
        expect({ where, admitted: last[1].started }).toEqual({ where, admitted: last[0].started });
      }
      const expected = { where, state: local.state, retryAfterMs: local.retryAfterMs };
      expect({ where, state: shared.state, retryAfterMs: shared.retryAfterMs }).toEqual(expected);
    }
    for (const [a, b] of inFlight) {
      if (a.started) a.settle('ignore');
      if (b.started) b.settle('ignore');
    }
    await quiesce();
  }

  it(`agrees on random sequences of calls, clock steps and operator actions (${NUM_RUNS} runs)`, async () => {
    await fc.assert(
      fc.asyncProperty(configArb, stepsArb, (config, steps) => run(config, steps)),
      { numRuns: NUM_RUNS },
    );
    expect(decidedByStore).toBeGreaterThan(NUM_RUNS / 10);
  }, 600_000);
});
