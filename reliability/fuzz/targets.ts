import fc from 'fast-check';
import {
  MemoryBreakerStore,
  CircuitBreaker,
  CircuitBreakerRegistry,
  FailoverRateLimitStore,
  HealthRoutes,
  HttpRateLimit,
  MemoryRateLimitStore,
  RateLimiter,
  RouteBreakers,
  RetryBudget,
  bulkhead,
  constant,
  createFetch,
  defaultRetryOn,
  exponential,
  fallback,
  isBreakwaterError,
  isRegistryFullError,
  parseDuration,
  parseRate,
  pipeline,
  retry,
  timeout,
  type RateLimitDecision,
  type RateLimitRule,
  type RateLimitStore,
} from '@breakwater/core';
import { EventEmitter } from 'node:events';
import { jest } from '@jest/globals';
import * as expressAdapter from '@breakwater/express';
import * as koaAdapter from '@breakwater/koa';
import { BreakwaterModule } from '@breakwater/nestjs';
import { collectMetrics, metricsHandler } from '@breakwater/prometheus';
import { RedisBreakerStore, RedisRateLimitStore } from '@breakwater/redis';
import { repoPath } from '../support/paths';
import { FakeResponse, fakeContext, fakeRequest, runExpress } from '../support/fakes';
import {
  Shape,
  anyKeyOf,
  validOf,
  duration,
  fixedClock,
  fresh,
  int,
  junk,
  knownOf,
  name,
  optionsOf,
  percent,
  silentLogger,
  type KnownTree,
} from './arbitraries';

/** Where a `ConfigError` path may point: a value of the input and the option names it knows. */
export interface Root {
  value: unknown;
  known: KnownTree;
}

/** The named arguments of one generated call. */
export type Args = Readonly<Record<string, unknown>>;

/** A public constructor or factory under test. */
export interface Target {
  name: string;
  args: fc.Arbitrary<Args>;
  /** What a `ConfigError` path is resolved against. */
  roots(args: Args): Root[];
  /** Builds the object; throws what the constructor throws. */
  build(args: Args): unknown;
  /** Uses the object once; throws when it does not work. */
  exercise(made: unknown, args: Args): Promise<void>;
}

function target<T>(definition: {
  name: string;
  args: fc.Arbitrary<Args>;
  roots: (args: Args) => Root[];
  build: (args: Args) => T;
  exercise: (made: T, args: Args) => Promise<void> | void;
}): Target {
  return {
    ...definition,
    exercise: async (made, args) => definition.exercise(made as T, args),
  };
}

// -- Resources created while generating or exercising, released after each case ----------------

const disposables: (() => unknown)[] = [];

/** Registers something to release after the current case. */
export function track<T extends object>(value: T): T {
  const closable = value as { close?: unknown };
  if (typeof closable.close === 'function') {
    disposables.push(() => (closable.close as () => unknown).call(value));
  }
  return value;
}

/** Releases everything registered during the case. */
export async function disposeAll(): Promise<void> {
  for (const dispose of disposables.splice(0).reverse()) {
    try {
      await dispose();
    } catch {
      // Closing is best effort; the case has already been judged.
    }
  }
}

// -- Building blocks ------------------------------------------------------------------------------

/** A shared store whose backend is down. */
class DownStore implements RateLimitStore {
  readonly local = false;
  consume(): Promise<RateLimitDecision> {
    return Promise.reject(new DownError());
  }
  reset(): Promise<void> {
    return Promise.reject(new DownError());
  }
}

/** The error of a {@link DownStore}: an expected rejection, unlike a TypeError. */
class DownError extends Error {
  constructor() {
    super('backend down');
  }
}

/** The slice of an ioredis client the Redis store uses, answering "allowed, 4 left". */
class DummyRedisClient {
  readonly status = 'ready';
  evalsha(): Promise<unknown> {
    return Promise.resolve([1, 4, 60_000, 0]);
  }
  eval(): Promise<unknown> {
    return Promise.resolve([1, 4, 60_000, 0]);
  }
  del(): Promise<number> {
    return Promise.resolve(1);
  }
  connect(): Promise<void> {
    return Promise.resolve();
  }
}

/**
 * A not-yet-connected ioredis client, enough for a breaker store: it never becomes ready, so a
 * breaker on the store decides locally.
 */
class DummyBreakerClient extends EventEmitter {
  status = 'wait';
  evalsha(): Promise<unknown> {
    return Promise.reject(new Error('not connected'));
  }
  eval(): Promise<unknown> {
    return Promise.reject(new Error('not connected'));
  }
  duplicate(): DummyBreakerClient {
    return new DummyBreakerClient();
  }
  subscribe(): Promise<unknown> {
    return Promise.resolve(1);
  }
  unsubscribe(): Promise<unknown> {
    return Promise.resolve(1);
  }
  connect(): Promise<void> {
    return Promise.resolve();
  }
  disconnect(): void {}
  quit(): Promise<string> {
    return Promise.resolve('OK');
  }
}

/** prom-client, as the Prometheus package loads it (one module instance). */
type PromClient = typeof import('../../packages/prometheus/node_modules/prom-client');
const promClient = jest.requireActual<PromClient>(
  require.resolve('prom-client', { paths: [repoPath('packages', 'prometheus')] }),
);

/** Registers a collector's `stop()` to run after the current case. */
function trackStop<T extends { stop(): void }>(collector: T): T {
  disposables.push(() => collector.stop());
  return collector;
}

const fakeFetches = new WeakSet<object>();

/** A fetch that answers 200 without any network. */
function fakeFetch(): typeof fetch {
  const fn = (() => Promise.resolve(new Response('ok'))) as typeof fetch;
  fakeFetches.add(fn);
  return fn;
}

const rule: RateLimitRule = Object.freeze({
  name: 'fuzz',
  algorithm: 'fixed-window',
  limit: 5,
  windowMs: 60_000,
  burst: 5,
  blockDurationMs: 0,
});

const fn = <T>(value: T): fc.Arbitrary<unknown> => fc.constant(value);

/** Whole milliseconds or a duration string (rate windows and block durations need whole ms). */
const wholeDuration: fc.Arbitrary<unknown> = fc.oneof(
  int(1, 86_400_000),
  fc.constantFrom('1s', '15m', '1h', '1d', '500ms'),
);

/** A valid list most of the time; sometimes with junk elements, sometimes junk itself. */
function listOf(element: fc.Arbitrary<unknown>, maxLength: number): fc.Arbitrary<unknown> {
  return fc.oneof(
    { weight: 5, arbitrary: fc.array(element, { minLength: 1, maxLength }) },
    { weight: 1, arbitrary: fc.array(fc.oneof(element, junk), { maxLength }) },
    { weight: 1, arbitrary: junk },
  );
}

function ms(value: unknown): number {
  return parseDuration(value) ?? NaN;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

const breakerFields = new Shape(
  {
    failureThreshold: fc.oneof(int(1, 100), fc.constant(false)),
    failureRateThreshold: percent,
    slowCallDurationMs: duration,
    slowCallRateThreshold: percent,
    window: new Shape(
      {
        type: fc.constantFrom('count', 'time'),
        size: int(1, 1_000),
        durationMs: duration,
        buckets: int(1, 100),
      },
      {
        required: ['type'],
        // A count window has a size; a time window a duration and buckets.
        fix: ({ type, size, durationMs, buckets }) =>
          type === 'count'
            ? { type, size: size ?? 10 }
            : {
                type,
                durationMs: durationMs ?? 1_000,
                ...(buckets === undefined ? {} : { buckets }),
              },
      },
    ),
    minimumCalls: int(1, 100),
    openDurationMs: duration,
    backoff: new Shape({
      multiplier: fc.double({ min: 1, max: 10, noNaN: true }),
      maxMs: duration,
      resetAfterMs: duration,
    }),
    halfOpen: new Shape({
      maxConcurrent: int(1, 10),
      successThreshold: int(1, 10),
      maxWaitMs: duration,
    }),
    timeoutMs: duration,
    maxOpenMs: duration,
    isFailure: fc.constantFrom(
      () => true,
      () => false,
    ),
    isResultFailure: fc.constantFrom(
      () => false,
      () => true,
    ),
    fallback: fn(() => 'fallback'),
    clock: fixedClock,
    initialState: new Shape(
      {
        name,
        state: fc.constantFrom('closed', 'open', 'half_open', 'forced_open', 'disabled'),
        consecutiveFailures: int(0, 100),
        openedAt: fc.oneof(fc.constant(null), int(0, 2 ** 40)),
        nextAttemptAt: fc.oneof(fc.constant(null), int(0, 2 ** 40)),
        backoffLevel: int(0, 64),
        closedAt: fc.oneof(fc.constant(null), int(0, 2 ** 40)),
      },
      { required: ['state'] },
    ),
    onListenerError: fn(() => undefined),
    logger: fn(silentLogger),
    store: fresh(() => new MemoryBreakerStore(), 'MemoryBreakerStore'),
    scope: fc.constantFrom('local', 'shared'),
  },
  {
    fix: (options) => {
      // The slow-call rule needs both of its options.
      if (
        (options.slowCallDurationMs === undefined) !==
        (options.slowCallRateThreshold === undefined)
      ) {
        delete options.slowCallDurationMs;
        delete options.slowCallRateThreshold;
      }
      // The backoff's longest open time cannot be shorter than the first one.
      const backoff = options.backoff;
      if (isObject(backoff) && backoff.maxMs !== undefined) {
        if (ms(backoff.maxMs) < ms(options.openDurationMs ?? 60_000)) {
          const { maxMs: _dropped, ...rest } = backoff;
          options.backoff = rest;
        }
      }
      return options;
    },
  },
);
const breakerShape = breakerFields.with({ name }, ['name']);
const storeBreakerShape = breakerFields.without('timeoutMs', 'fallback').with({ name });

const store: fc.Arbitrary<unknown> = fc.oneof(
  fresh(() => track(new MemoryRateLimitStore()), 'MemoryRateLimitStore'),
  fresh(() => new DownStore(), 'DownStore'),
  fresh(
    () => track(new FailoverRateLimitStore([new DownStore(), new MemoryRateLimitStore()])),
    'FailoverRateLimitStore([DownStore, MemoryRateLimitStore])',
  ),
);

const rateShape = new Shape(
  { limit: int(1, 1_000_000), window: wholeDuration },
  {
    required: ['limit', 'window'],
    alternatives: fc.constantFrom(
      '100/h',
      '10/s',
      '5/15m',
      '1000/1d',
      '50/500ms',
      '1/ms',
      ' 7 / 2 m ',
    ),
  },
);

const limiterFields = {
  algorithm: fc.constantFrom('fixed-window', 'sliding-window', 'token-bucket'),
  rate: rateShape,
  limit: int(1, 1_000_000),
  window: wholeDuration,
  burst: int(1, 1_000_000),
  blockDurationMs: wholeDuration,
  store,
  onStoreFailure: fc.constantFrom('fallback', 'allow', 'deny'),
  fallbackStore: fresh(() => track(new MemoryRateLimitStore()), 'MemoryRateLimitStore'),
  storeTimeoutMs: duration,
  breaker: storeBreakerShape.or(
    fresh(() => new CircuitBreaker({ name: 'store-breaker' }), 'CircuitBreaker'),
  ),
  clock: fixedClock,
  logger: fn(silentLogger),
};

/** Makes limiter options consistent: a rate or limit + window, burst and fallback where they apply. */
function fixLimiter(options: Record<string, unknown>): Record<string, unknown> {
  if (options.rate !== undefined) {
    delete options.limit;
    delete options.window;
  } else if (options.limit === undefined || options.window === undefined) {
    delete options.limit;
    delete options.window;
    options.rate = '10/s';
  }
  if (options.algorithm !== 'token-bucket') delete options.burst;
  if (options.onStoreFailure !== undefined && options.onStoreFailure !== 'fallback') {
    delete options.fallbackStore;
  }
  return options;
}

const limiterShape = new Shape({ name, ...limiterFields }, { required: ['name'], fix: fixLimiter });

const httpRateLimitShape = new Shape(
  {
    name,
    ...limiterFields,
    limiter: fresh(() => track(new RateLimiter({ name: 'given', rate: '10/s' })), 'RateLimiter'),
    key: fc.constantFrom(
      () => 'client',
      () => Promise.resolve('client'),
    ),
    skip: fc.constantFrom(
      () => false,
      () => Promise.resolve(false),
    ),
    cost: fc.constantFrom(
      () => 1,
      () => 0,
    ),
    headers: new Shape({ standard: fc.boolean(), legacy: fc.boolean() }),
  },
  {
    fix: (options) => {
      // A limiter given as is takes no limiter options.
      if (options.limiter === undefined) return fixLimiter(options);
      const { limiter, key, skip, cost, headers } = options;
      return Object.fromEntries(
        Object.entries({ limiter, key, skip, cost, headers }).filter(([, v]) => v !== undefined),
      );
    },
    alternatives: fresh(() => track(new RateLimiter({ name: 'l', rate: '1/s' })), 'RateLimiter'),
  },
);

const routeBreakerShape = breakerFields
  .without('timeoutMs', 'isResultFailure', 'fallback')
  .with({
    name,
    registry: fresh(() => new CircuitBreakerRegistry(), 'CircuitBreakerRegistry'),
    maxRoutes: int(1, 10_000),
    isFailureStatus: fn((status: number) => status >= 500),
  })
  .or(fresh(() => new CircuitBreaker({ name: 'given' }), 'CircuitBreaker'));

const healthShape = new Shape({
  registry: fresh(() => {
    const registry = new CircuitBreakerRegistry();
    registry.get('db');
    return registry;
  }, 'CircuitBreakerRegistry'),
  limiters: listOf(
    fresh(() => track(new RateLimiter({ name: 'api', rate: '10/s' })), 'RateLimiter'),
    2,
  ),
  critical: fc.oneof(
    fc.array(fc.string({ maxLength: 8 }), { maxLength: 3 }),
    fn((n: string) => n === 'db'),
  ),
  basePath: fc.constantFrom('/health', '/ops/health', '/a.b/c-d_~'),
  admin: new Shape(
    {
      authorize: fc.constantFrom(
        () => true,
        () => 'unauthenticated',
        () => Promise.resolve(false),
      ),
    },
    { required: ['authorize'] },
  ),
  stream: new Shape({
    maxClients: int(1, 1_000),
    heartbeatMs: fc.oneof(int(1_000, 600_000), fc.constantFrom('15s', '1m'), duration),
  }),
  dashboard: fc.boolean(),
});

const budgetShape = new Shape({
  ratio: fc.double({ min: 0, max: 1_000, noNaN: true }),
  minPerSecond: fc.double({ min: 0, max: 1_000, noNaN: true }),
  windowMs: duration,
  clock: fixedClock,
});

const retryShape = new Shape({
  maxAttempts: int(1, 5),
  backoff: fc.oneof(
    fresh(() => exponential({ initialMs: 0, maxMs: 0 }), 'exponential({ initialMs: 0, maxMs: 0 })'),
    fresh(() => constant(0), 'constant(0)'),
  ),
  retryOn: fc.constantFrom(defaultRetryOn, () => false),
  budget: budgetShape.or(fresh(() => new RetryBudget(), 'RetryBudget')),
  onRetry: fn(() => undefined),
  onGiveUp: fn(() => undefined),
});

const exponentialShape = new Shape(
  {
    initialMs: duration,
    maxMs: duration,
    multiplier: fc.double({ min: 1, max: 10, noNaN: true }),
    jitter: fc.constantFrom('none', 'full', 'decorrelated'),
    random: fc.constantFrom(Math.random, () => 0.5),
  },
  {
    fix: (options) => {
      if (ms(options.maxMs ?? 30_000) < ms(options.initialMs ?? 100)) delete options.maxMs;
      return options;
    },
  },
);

const policy: fc.Arbitrary<unknown> = fc.oneof(
  fresh(() => retry({ maxAttempts: 2, backoff: constant(0) }), 'retry'),
  fresh(() => timeout(1_000), 'timeout(1_000)'),
  fresh(() => bulkhead({ maxConcurrent: 2 }), 'bulkhead'),
  fresh(() => fallback(0), 'fallback(0)'),
  fresh(() => new CircuitBreaker({ name: 'in-pipeline' }), 'CircuitBreaker'),
  fresh(() => pipeline(), 'pipeline()'),
);

const dummyRedisShape = new Shape(
  {
    client: fresh(() => new DummyRedisClient(), 'DummyRedisClient'),
    prefix: fc.string({ maxLength: 20 }),
    hashTag: fc.boolean(),
    failFast: fc.boolean(),
  },
  {
    required: ['client'],
    fix: (options) => {
      // With the hash tag on, the prefix must not hold braces.
      if (options.hashTag !== false && typeof options.prefix === 'string') {
        options.prefix = options.prefix.replace(/[{}]/g, '');
      }
      return options;
    },
  },
);

const breakerStoreShape = new Shape(
  {
    client: fresh(() => new DummyBreakerClient(), 'DummyBreakerClient'),
    subscriber: fresh(() => new DummyBreakerClient(), 'DummyBreakerClient'),
    prefix: fc.constantFrom('bw:cb:', 'app:', ''),
    flushIntervalMs: duration,
    keyTtlMs: duration,
    probeLeaseMs: duration,
    claimTimeoutMs: duration,
    onError: fn(() => undefined),
  },
  { required: ['client'] },
);

const collectMetricsShape = new Shape({
  register: fresh(() => new promClient.Registry(), 'prom-client Registry'),
  prefix: fc.constantFrom('breakwater_', 'app_', 'x_'),
  limiters: listOf(
    fresh(() => track(new RateLimiter({ name: 'api', rate: '10/s' })), 'RateLimiter'),
    1,
  ),
  buckets: fc
    .uniqueArray(fc.double({ min: 0.001, max: 100, noNaN: true }), { minLength: 1, maxLength: 5 })
    .map((bounds) => bounds.sort((a, b) => a - b)),
  durations: fc.boolean(),
});

const nestHealthShape = new Shape({
  path: fc.constantFrom('/health', '/ops/health', 'health'),
  critical: fc.oneof(
    fc.array(name, { maxLength: 2 }),
    fn((n: string) => n === 'db'),
  ),
  admin: new Shape({ authorize: fn(() => true) }, { required: ['authorize'] }),
  stream: new Shape({ maxClients: int(1, 1_000), heartbeatMs: fc.constantFrom('15s', 5_000) }),
  dashboard: fc.boolean(),
});

const forRootShape = new Shape({
  breakers: new Shape({ defaults: breakerFields, maxBreakers: int(1, 1_000) }).or(
    fresh(() => new CircuitBreakerRegistry(), 'CircuitBreakerRegistry'),
  ),
  limiters: fc.dictionary(
    fc.constantFrom('api', 'search', 'upload'),
    fc.constant(null).map(() => ({ rate: '10/s' })),
    { maxKeys: 2, noNullPrototype: true },
  ),
  defaultLimiter: fc.constantFrom('api', 'search'),
  rateLimit: new Shape({
    headers: new Shape({ standard: fc.boolean(), legacy: fc.boolean() }),
  }),
  health: nestHealthShape,
  logger: fn(silentLogger),
});

class OptionsFactory {
  createBreakwaterOptions(): object {
    return {};
  }
}

const forRootAsyncShape = new Shape(
  {
    imports: fc.constant([]),
    useFactory: fn(() => ({})),
    inject: fc.constant([]),
    useClass: fn(OptionsFactory),
    useExisting: fn(OptionsFactory),
    healthPath: fc.constantFrom('/health', '/ops/health'),
    breakerNames: fc.array(name, { maxLength: 2 }),
    limiterNames: fc.array(name, { maxLength: 2 }),
  },
  {
    // Exactly one way of making the options.
    fix: (options) => {
      const [keep] = (['useFactory', 'useClass', 'useExisting'] as const).filter(
        (key) => options[key] !== undefined,
      );
      delete options.useFactory;
      delete options.useClass;
      delete options.useExisting;
      options[keep ?? 'useFactory'] =
        keep === 'useClass' || keep === 'useExisting' ? OptionsFactory : () => ({});
      return options;
    },
  },
);

// -- Shared checks -------------------------------------------------------------------------------

/** Arguments `{ options }` for a one-argument constructor, resolved at both levels. */
function single(shape: Shape, extraKnown: KnownTree = {}) {
  return {
    args: optionsOf(shape).map((options) => ({ options })),
    roots: (args: Args): Root[] => [
      { value: args, known: { options: true } },
      { value: args.options, known: { ...knownOf(shape), ...extraKnown } },
    ],
  };
}

function fail(message: string): never {
  throw new Error(message);
}

function checkDecision(decision: unknown, where: string): void {
  const d = decision as Partial<RateLimitDecision> | null;
  if (
    typeof d !== 'object' ||
    d === null ||
    typeof d.allowed !== 'boolean' ||
    !Number.isInteger(d.remaining) ||
    !Number.isInteger(d.retryAfterMs) ||
    (d.remaining ?? -1) < 0
  ) {
    fail(`${where} returned ${JSON.stringify(decision)}, not a decision`);
  }
}

/** Settles to the value, or to the rejection reason when it is one of ours (or the backend's). */
async function expected<T>(pending: Promise<T> | T, where: string): Promise<T | undefined> {
  try {
    return await pending;
  } catch (error) {
    if (isBreakwaterError(error) || error instanceof DownError) return undefined;
    throw new Error(`${where} rejected with ${String(error)}`, { cause: error });
  }
}

async function breakerWorks(breaker: CircuitBreaker, where: string): Promise<void> {
  const result: unknown = await expected(
    breaker.execute(() => 1),
    where,
  );
  if (result !== undefined && result !== 1 && result !== 'fallback') {
    fail(`${where} resolved to ${JSON.stringify(result)}`);
  }
  JSON.stringify(breaker.snapshot());
  JSON.stringify(breaker.toJSON());
}

// -- The targets ---------------------------------------------------------------------------------

export const targets: Target[] = [
  target({
    name: 'CircuitBreaker',
    ...single(breakerShape),
    build: (args) => new CircuitBreaker(args.options as never),
    exercise: (breaker) => breakerWorks(breaker, 'execute()'),
  }),

  target({
    name: 'CircuitBreakerRegistry',
    args: optionsOf(
      new Shape({
        defaults: breakerFields,
        breakers: fc.dictionary(fc.string({ minLength: 1, maxLength: 8 }), validOf(breakerFields), {
          maxKeys: 3,
          noNullPrototype: true,
        }),
        maxBreakers: int(1, 1_000),
        clock: fixedClock,
        logger: fn(silentLogger),
      }),
    ).map((options) => ({ options })),
    roots: (args) => [
      { value: args, known: { options: true } },
      {
        value: args.options,
        known: {
          defaults: knownOf(breakerFields),
          breakers: anyKeyOf(breakerFields),
          maxBreakers: true,
          clock: true,
          logger: true,
        },
      },
    ],
    build: (args) => new CircuitBreakerRegistry(args.options as never),
    exercise: async (registry, args) => {
      const names = Object.keys(
        (args.options as { breakers?: object } | undefined)?.breakers ?? {},
      );
      for (const n of ['fuzz-new', ...names]) {
        let breaker: CircuitBreaker;
        try {
          breaker = registry.get(n);
        } catch (error) {
          if (isRegistryFullError(error)) continue;
          throw error;
        }
        await breakerWorks(breaker, `get(${JSON.stringify(n)}).execute()`);
      }
    },
  }),

  target({
    name: 'retry',
    ...single(retryShape, { budget: knownOf(budgetShape) }),
    build: (args) => retry(args.options as never),
    exercise: async (policy) => {
      if ((await policy.execute(() => 1)) !== 1) fail('execute() did not return the result');
    },
  }),

  target({
    name: 'RetryBudget',
    ...single(budgetShape),
    build: (args) => new RetryBudget(args.options as never),
    exercise: (budget) => {
      budget.recordRequest();
      if (typeof budget.tryRetry() !== 'boolean') fail('tryRetry() did not return a boolean');
    },
  }),

  target({
    name: 'exponential',
    ...single(exponentialShape),
    build: (args) => exponential(args.options as never),
    exercise: (backoff) => {
      let previous = 0;
      for (let attempt = 1; attempt <= 6; attempt++) {
        const delay = backoff(attempt, previous, undefined);
        if (!Number.isFinite(delay) || delay < 0 || delay > 2_147_483_647) {
          fail(`attempt ${attempt}: delay ${delay}`);
        }
        previous = delay;
      }
    },
  }),

  target({
    name: 'constant',
    args: fc.oneof(duration, junk).map((ms) => ({ ms })),
    roots: (args) => [{ value: args, known: { ms: true } }],
    build: (args) => constant(args.ms as never),
    exercise: (backoff) => {
      const delay = backoff(1, 0, undefined);
      if (!Number.isFinite(delay) || delay < 0) fail(`delay ${delay}`);
    },
  }),

  target({
    name: 'timeout',
    args: fc
      .oneof(
        duration,
        optionsOf(new Shape({ timeoutMs: duration }, { required: ['timeoutMs'] })),
        junk,
      )
      .map((timeoutMs) => ({ timeoutMs })),
    roots: (args) => [
      { value: { timeoutMs: args.timeoutMs, options: args.timeoutMs }, known: {} },
      { value: args.timeoutMs, known: { timeoutMs: true } },
    ],
    build: (args) => timeout(args.timeoutMs as never),
    exercise: async (policy) => {
      if ((await policy.execute(() => 1)) !== 1) fail('execute() did not return the result');
    },
  }),

  target({
    name: 'bulkhead',
    ...single(
      new Shape(
        { maxConcurrent: int(1, 100), maxQueue: int(0, 100), queueTimeoutMs: duration },
        { required: ['maxConcurrent'] },
      ),
    ),
    build: (args) => bulkhead(args.options as never),
    exercise: async (policy) => {
      if ((await policy.execute(() => 1)) !== 1) fail('execute() did not return the result');
    },
  }),

  target({
    name: 'fallback',
    args: fc
      .record({
        value: fc.oneof(
          junk,
          fn(() => 'fallback'),
        ),
        options: optionsOf(
          new Shape({
            shouldHandle: fc.constantFrom(
              () => true,
              () => false,
            ),
          }),
        ),
      })
      .map((args) => args),
    roots: (args) => [
      { value: args, known: { options: true } },
      { value: args.options, known: { shouldHandle: true } },
    ],
    build: (args) => fallback(args.value, args.options as never),
    exercise: async (policy) => {
      const boom = new DownError();
      await policy
        .execute(() => {
          throw boom;
        })
        .catch((error: unknown) => {
          if (error !== boom) throw error;
        });
    },
  }),

  target({
    name: 'pipeline',
    args: fc
      .array(fc.oneof({ weight: 4, arbitrary: policy }, { weight: 1, arbitrary: junk }), {
        maxLength: 4,
      })
      .map((policies) => ({ policies })),
    roots: (args) => [{ value: args, known: { policies: true } }],
    build: (args) => pipeline(...(args.policies as never[])),
    exercise: async (composed) => {
      if ((await composed.execute(() => 1)) !== 1) fail('execute() did not return the result');
    },
  }),

  target({
    name: 'createFetch',
    ...single(
      new Shape({
        registry: fresh(() => new CircuitBreakerRegistry(), 'CircuitBreakerRegistry'),
        timeoutMs: duration,
        retry: retryShape,
        isFailure: fn((response: Response) => response.status >= 500),
        retryNonIdempotent: fc.boolean(),
        fetch: fresh(fakeFetch, 'fake fetch'),
      }),
      { retry: { ...knownOf(retryShape), budget: knownOf(budgetShape) } },
    ),
    build: (args) => createFetch(args.options as never),
    exercise: async (protectedFetch, args) => {
      if (typeof protectedFetch !== 'function') fail('createFetch() did not return a function');
      const given = (args.options as { fetch?: unknown } | undefined)?.fetch;
      if (typeof given !== 'function' || !fakeFetches.has(given)) return; // no network here
      const response = await protectedFetch('http://origin.test/x');
      if (response.status !== 200) fail(`fetch answered ${response.status}`);
    },
  }),

  target({
    name: 'RateLimiter',
    ...single(limiterShape, {
      rate: knownOf(rateShape),
      breaker: knownOf(storeBreakerShape),
    }),
    build: (args) => track(new RateLimiter(args.options as never)),
    exercise: async (limiter) => {
      checkDecision(await limiter.consume('k'), 'consume()');
      const health = limiter.health();
      if (health.status !== 'pass' && health.status !== 'warn') fail('health() is not a health');
    },
  }),

  target({
    name: 'MemoryRateLimitStore',
    ...single(
      new Shape({
        maxKeys: int(1, 1_000_000),
        sweepIntervalMs: fc.oneof(duration, fc.constant(0)),
        clock: fixedClock,
      }),
    ),
    build: (args) => track(new MemoryRateLimitStore(args.options as never)),
    exercise: async (memory) => {
      checkDecision(await memory.consume('k', 1, rule), 'consume()');
      if (memory.size > memory.maxKeys) fail('size above maxKeys');
    },
  }),

  target({
    name: 'FailoverRateLimitStore',
    args: fc.record({
      stores: listOf(store, 3),
      options: optionsOf(
        new Shape({
          name,
          storeTimeoutMs: duration,
          breaker: storeBreakerShape,
          clock: fixedClock,
        }),
      ),
    }),
    roots: (args) => [
      { value: args, known: { stores: true, options: true } },
      {
        value: args.options,
        known: {
          name: true,
          storeTimeoutMs: true,
          breaker: knownOf(storeBreakerShape),
          clock: true,
        },
      },
    ],
    build: (args) => track(new FailoverRateLimitStore(args.stores as never, args.options as never)),
    exercise: async (failover) => {
      const decision = await expected(failover.consume('k', 1, rule), 'consume()');
      if (decision !== undefined) checkDecision(decision, 'consume()');
    },
  }),

  target({
    name: 'HealthRoutes',
    ...single(healthShape),
    build: (args) => track(new HealthRoutes(args.options as never)),
    exercise: async (routes) => {
      const base = routes.basePath;
      const live = routes.handle('GET', `${base}/live`, {});
      if (live === undefined || 'then' in live || live.status !== 200) fail('live did not answer');
      const report = await routes.handle('GET', base, {});
      if (report === undefined || (report.status !== 200 && report.status !== 503)) {
        fail('the health report did not answer');
      }
      const stream = await routes.handle('GET', `${base}/circuit-breakers/stream`, {});
      if (stream?.kind !== 'sse') fail('the stream did not open');
      const stop = stream.start(
        () => undefined,
        () => undefined,
      );
      stop();
    },
  }),

  target({
    name: 'RouteBreakers',
    ...single(routeBreakerShape),
    build: (args) => new RouteBreakers(args.options as never),
    exercise: (routes) => {
      const admitted = routes.admit(routes.breakerFor('GET', '/x'));
      if ('kind' in admitted) {
        if (admitted.status !== 503) fail(`admit() answered ${admitted.status}`);
      } else routes.settle(admitted, 200);
    },
  }),

  target({
    name: 'HttpRateLimit',
    ...single(httpRateLimitShape, {
      rate: knownOf(rateShape),
      breaker: knownOf(storeBreakerShape),
    }),
    build: (args) => {
      const http = new HttpRateLimit(args.options as never);
      track(http.limiter);
      return http;
    },
    exercise: async (http) => {
      const verdict = await http.decide({}, '127.0.0.1');
      if (verdict !== undefined && typeof verdict.headers !== 'object') fail('no headers');
    },
  }),

  target({
    name: 'parseRate',
    args: fc.oneof(rateShape.alternatives!, optionsOf(rateShape)).map((rate) => ({ rate })),
    roots: (args) => [{ value: args, known: { rate: knownOf(rateShape) } }],
    build: (args) => parseRate(args.rate as never),
    exercise: (parsed) => {
      if (!Number.isSafeInteger(parsed.limit) || parsed.limit < 1) fail(`limit ${parsed.limit}`);
      if (!Number.isSafeInteger(parsed.windowMs) || parsed.windowMs < 1) {
        fail(`windowMs ${parsed.windowMs}`);
      }
    },
  }),

  target({
    name: 'parseDuration',
    args: fc.oneof(duration, junk).map((value) => ({ value })),
    // parseDuration never throws, not even a ConfigError: no path is acceptable.
    roots: () => [],
    build: (args) => parseDuration(args.value),
    exercise: (ms) => {
      if (ms !== undefined && !(Number.isFinite(ms) && ms >= 0)) fail(`returned ${ms}`);
    },
  }),

  target({
    name: 'express circuitBreaker',
    ...single(
      routeBreakerShape.with({
        fallback: fn((_req: unknown, res: FakeResponse) => res.end('fallback')),
      }),
    ),
    build: (args) => expressAdapter.circuitBreaker(args.options as never),
    exercise: async (middleware) => {
      const res = new FakeResponse();
      const outcome = await runExpress(middleware, fakeRequest({ url: '/x' }), res);
      if (outcome.kind === 'next') res.end('ok');
      else if (outcome.kind === 'error') throw outcome.error;
      else if (outcome.status !== 503 && res.body !== 'fallback')
        fail(`answered ${outcome.status}`);
    },
  }),

  target({
    name: 'express rateLimit',
    ...single(httpRateLimitShape, {
      rate: knownOf(rateShape),
      breaker: knownOf(storeBreakerShape),
    }),
    build: (args) => {
      const middleware = expressAdapter.rateLimit(args.options as never);
      track(middleware.limiter);
      return middleware;
    },
    exercise: async (middleware) => {
      const outcome = await runExpress(middleware, fakeRequest(), new FakeResponse());
      if (outcome.kind === 'error') throw outcome.error;
      if (outcome.kind === 'answered' && outcome.status !== 429) fail(`answered ${outcome.status}`);
    },
  }),

  target({
    name: 'express healthRoutes',
    ...single(healthShape),
    build: (args) => track(expressAdapter.healthRoutes(args.options as never)),
    exercise: async (middleware, args) => {
      const base = (args.options as { basePath?: string }).basePath ?? '/health';
      const outcome = await runExpress(
        middleware,
        fakeRequest({ url: `${base}/live` }),
        new FakeResponse(),
      );
      if (outcome.kind !== 'answered' || outcome.status !== 200) {
        fail(`live: ${JSON.stringify(outcome)}`);
      }
    },
  }),

  target({
    name: 'koa circuitBreaker',
    ...single(
      routeBreakerShape.with({ fallback: fn((ctx: { body: unknown }) => (ctx.body = 'fallback')) }),
    ),
    build: (args) => koaAdapter.circuitBreaker(args.options as never),
    exercise: async (middleware) => {
      const ctx = fakeContext({ url: '/x' });
      await middleware(ctx.koa, () => {
        ctx.status = 200;
        ctx.res.writableFinished = true;
        return Promise.resolve();
      });
      if (ctx.status !== 200 && ctx.status !== 503 && ctx.body !== 'fallback') {
        fail(`status ${ctx.status}`);
      }
    },
  }),

  target({
    name: 'koa rateLimit',
    ...single(httpRateLimitShape, {
      rate: knownOf(rateShape),
      breaker: knownOf(storeBreakerShape),
    }),
    build: (args) => {
      const middleware = koaAdapter.rateLimit(args.options as never);
      track(middleware.limiter);
      return middleware;
    },
    exercise: async (middleware) => {
      const ctx = fakeContext();
      let passed = false;
      await middleware(ctx.koa, () => {
        passed = true;
        return Promise.resolve();
      });
      if (!passed && ctx.status !== 429) fail(`status ${ctx.status}`);
    },
  }),

  target({
    name: 'koa healthRoutes',
    ...single(healthShape),
    build: (args) => track(koaAdapter.healthRoutes(args.options as never)),
    exercise: async (middleware, args) => {
      const base = (args.options as { basePath?: string }).basePath ?? '/health';
      const ctx = fakeContext({ url: `${base}/live` });
      await middleware(ctx.koa, () => fail('live went on to next()'));
      if (ctx.status !== 200) fail(`live: status ${ctx.status}`);
    },
  }),

  target({
    name: 'RedisBreakerStore',
    ...single(breakerStoreShape),
    build: (args) => track(new RedisBreakerStore(args.options as never)),
    exercise: async (store) => {
      const breaker = new CircuitBreaker({ name: 'shared', store });
      await breakerWorks(breaker, 'execute() on a shared breaker');
    },
  }),

  target({
    name: 'collectMetrics',
    args: fc.record({
      registry: fc.oneof(
        {
          weight: 6,
          arbitrary: fresh(() => new CircuitBreakerRegistry(), 'CircuitBreakerRegistry'),
        },
        { weight: 1, arbitrary: junk },
      ),
      options: optionsOf(collectMetricsShape),
    }),
    roots: (args) => [
      { value: args, known: { registry: true, options: true } },
      { value: args.options, known: knownOf(collectMetricsShape) },
    ],
    build: (args) => trackStop(collectMetrics(args.registry as never, args.options as never)),
    exercise: (collector) => {
      if (collector.metricNames.length === 0) fail('no metrics registered');
    },
  }),

  target({
    name: 'metricsHandler',
    args: fc
      .oneof(
        { weight: 4, arbitrary: fresh(() => new promClient.Registry(), 'prom-client Registry') },
        { weight: 1, arbitrary: junk },
      )
      .map((register) => ({ register })),
    roots: (args) => [{ value: args, known: { register: true } }],
    build: (args) => metricsHandler(args.register as never),
    exercise: async (handler) => {
      const answer = await handler();
      if (answer.status !== 200) fail(`answered ${answer.status}`);
    },
  }),

  target({
    name: 'BreakwaterModule.forRoot',
    ...single(forRootShape),
    build: (args) => BreakwaterModule.forRoot(args.options as never),
    exercise: (module) => {
      if (module.module !== BreakwaterModule) fail('not a dynamic module of BreakwaterModule');
    },
  }),

  target({
    name: 'BreakwaterModule.forRootAsync',
    args: optionsOf(forRootAsyncShape).map((options) => ({ options })),
    roots: (args) => [
      { value: { 'forRootAsync(options)': args.options }, known: {} },
      { value: args.options, known: knownOf(forRootAsyncShape) },
    ],
    build: (args) => BreakwaterModule.forRootAsync(args.options as never),
    exercise: (module) => {
      if (module.module !== BreakwaterModule) fail('not a dynamic module of BreakwaterModule');
    },
  }),

  target({
    name: 'RedisRateLimitStore',
    ...single(dummyRedisShape),
    build: (args) => new RedisRateLimitStore(args.options as never),
    exercise: async (redis) => {
      checkDecision(await redis.consume('k', 1, rule), 'consume()');
      await redis.reset('k', rule);
    },
  }),
];
