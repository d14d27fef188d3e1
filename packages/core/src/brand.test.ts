import { afterEach, describe, expect, it, jest } from '@jest/globals';
import {
  CircuitBreaker,
  CircuitBreakerRegistry,
  FailoverRateLimitStore,
  HealthRoutes,
  HttpRateLimit,
  LoadShedder,
  MemoryRateLimitStore,
  RateLimiter,
  RetryBudget,
  RouteBreakers,
  checkBreakerRegistry,
  createFetch,
  isCircuitBreaker,
  isCircuitBreakerRegistry,
  isLoadShedder,
  isRateLimiter,
  policiesOption,
  rateLimitersOption,
  retry,
} from './index';
import { configError } from '../test/breaker-helpers';

type Core = typeof import('./index');

/** A second copy of the library: its own classes, as a second installed version would have. */
function secondCopy(): Core {
  let copy: Core | undefined;
  jest.isolateModules(() => {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    copy = require('./index') as Core;
  });
  return copy!;
}

const closers: (() => unknown)[] = [];
afterEach(async () => {
  for (const close of closers.splice(0)) await close();
});

function limiter(core: Pick<Core, 'RateLimiter'>, name = 'api'): RateLimiter {
  const made = new core.RateLimiter({ name, rate: '2/s' });
  closers.push(() => made.close());
  return made;
}

function shedder(core: Pick<Core, 'LoadShedder'>): LoadShedder {
  const made = new core.LoadShedder();
  closers.push(() => made.close());
  return made;
}

const guards = {
  CircuitBreaker: isCircuitBreaker,
  CircuitBreakerRegistry: isCircuitBreakerRegistry,
  RateLimiter: isRateLimiter,
  LoadShedder: isLoadShedder,
} as const;

describe('brand guards', () => {
  it('recognise each kind and nothing else', () => {
    const real = {
      CircuitBreaker: new CircuitBreaker({ name: 'plant-id' }),
      CircuitBreakerRegistry: new CircuitBreakerRegistry(),
      RateLimiter: limiter({ RateLimiter }),
      LoadShedder: shedder({ LoadShedder }),
    };
    for (const [kind, guard] of Object.entries(guards)) {
      for (const [other, value] of Object.entries(real)) {
        expect([kind, other, guard(value)]).toEqual([kind, other, kind === other]);
      }
    }
  });

  it('refuse look-alikes, plain objects, classes and primitives', () => {
    const breaker = new CircuitBreaker({ name: 'plant-id' });
    const lookAlike = {
      name: 'plant-id',
      state: 'closed',
      execute: breaker.execute.bind(breaker),
      tryAcquire: breaker.tryAcquire.bind(breaker),
      snapshot: breaker.snapshot.bind(breaker),
      on: breaker.on.bind(breaker),
    };
    const values: unknown[] = [
      lookAlike,
      { ...breaker },
      {},
      Object.create(null),
      [],
      null,
      undefined,
      0,
      'CircuitBreaker',
      Symbol.for('breakwater.CircuitBreaker'),
      () => breaker,
      CircuitBreaker,
      CircuitBreakerRegistry,
      RateLimiter,
      LoadShedder,
    ];
    for (const value of values) {
      for (const guard of Object.values(guards)) expect(guard(value)).toBe(false);
    }
  });

  it('recognise an object that carries the registered marker without the class', () => {
    for (const [kind, guard] of Object.entries(guards)) {
      expect(guard({ [Symbol.for(`breakwater.${kind}`)]: 1 })).toBe(true);
      // Another contract version is not this one's kind.
      expect(guard({ [Symbol.for(`breakwater.${kind}`)]: 2 })).toBe(false);
      expect(guard({ [Symbol(`breakwater.${kind}`)]: 1 })).toBe(false);
    }
  });

  it('recognise objects made by a second copy of the library', () => {
    const copy = secondCopy();
    const breaker = new copy.CircuitBreaker({ name: 'plant-id' });
    expect(breaker).not.toBeInstanceOf(CircuitBreaker);
    expect(isCircuitBreaker(breaker)).toBe(true);
    expect(isCircuitBreakerRegistry(new copy.CircuitBreakerRegistry())).toBe(true);
    expect(isRateLimiter(limiter(copy))).toBe(true);
    expect(isLoadShedder(shedder(copy))).toBe(true);
    // And the reverse: the copy's guards recognise this copy's objects.
    expect(copy.isCircuitBreaker(new CircuitBreaker({ name: 'x' }))).toBe(true);
  });
});

describe('objects from a second copy of the library', () => {
  const copy = secondCopy();

  it('a route breaker takes a breaker of another copy, not as options (regression)', () => {
    const breaker = new copy.CircuitBreaker({ name: 'plant-id', failureThreshold: 1 });
    const routes = new RouteBreakers(breaker);
    expect(routes.fixed?.breaker).toBe(breaker);
    breaker.open();
    const refused = routes.enter(routes.fixed!);
    expect('kind' in refused && refused.status).toBe(503);
  });

  it('route breakers, health routes and createFetch take a registry of another copy', () => {
    const registry = new copy.CircuitBreakerRegistry();
    const routes = new RouteBreakers({ registry });
    routes.routeFor('GET', '/plants/:id');
    expect(registry.find('GET /plants/:id')).toBeDefined();
    const health = new HealthRoutes({ registry });
    closers.push(() => health.close());
    expect(() =>
      createFetch({ registry, fetch: () => Promise.resolve(new Response()) }),
    ).not.toThrow();
  });

  it('a registry adds a breaker of another copy', () => {
    const registry = new CircuitBreakerRegistry();
    const breaker = new copy.CircuitBreaker({ name: 'plant-id' });
    expect(registry.add(breaker)).toBe(breaker);
    expect(registry.find('plant-id')).toBe(breaker);
  });

  it('the HTTP rate limit takes a limiter of another copy, and its synchronous path', () => {
    const foreign = limiter(copy);
    const http = new HttpRateLimit(foreign);
    expect(http.limiter).toBe(foreign);
    expect(new HttpRateLimit({ limiter: foreign }).limiter).toBe(foreign);
    // A memory store of another copy still decides synchronously.
    expect(foreign.consumeNow('k', 1)).toMatchObject({ allowed: true, remaining: 1 });
    const store = new copy.MemoryRateLimitStore();
    closers.push(() => store.close());
    const mine = new RateLimiter({ name: 'mine', rate: '1/s', store });
    closers.push(() => mine.close());
    expect(mine.consumeNow('k', 1)).toMatchObject({ allowed: true });
    expect(mine.consumeNow('k', 1)).toMatchObject({ allowed: false });
  });

  it('a failover store of another copy sets the default store time limit', () => {
    const failover = new copy.FailoverRateLimitStore([new MemoryRateLimitStore()], {
      storeTimeoutMs: 50,
    });
    closers.push(() => failover.close());
    expect(failover).not.toBeInstanceOf(FailoverRateLimitStore);
    const mine = new RateLimiter({ name: 'failover', rate: '1/s', store: failover });
    closers.push(() => mine.close());
    expect(mine.storeTimeoutMs).toBe(failover.worstCaseMs + 100);
  });

  it('retry takes a budget of another copy', () => {
    const budget = new copy.RetryBudget();
    expect(budget).not.toBeInstanceOf(RetryBudget);
    expect(() => retry({ maxAttempts: 2, budget })).not.toThrow();
  });

  it('a limiter uses a store breaker of another copy as is', () => {
    const breaker = new copy.CircuitBreaker({ name: 'store' });
    const failover = new FailoverRateLimitStore([new MemoryRateLimitStore()]);
    closers.push(() => failover.close());
    const mine = new RateLimiter({ name: 'api', rate: '1/s', store: failover, breaker });
    closers.push(() => mine.close());
    expect(mine.breaker).toBe(breaker);
    // A failover store gives each member its own breaker: one breaker is refused by name.
    const error = configError(() => new FailoverRateLimitStore([failover], { breaker }));
    expect(error.message).toMatch(/must be breaker options/);
  });
});

describe("the metrics packages' option checks", () => {
  it('take a registry and limiters of another copy, not look-alikes', () => {
    const copy = secondCopy();
    const registry = new copy.CircuitBreakerRegistry();
    expect(checkBreakerRegistry('collectMetrics', registry)).toBe(registry);
    const lookAlike = { list: () => [], on: () => () => undefined };
    expect(configError(() => checkBreakerRegistry('collectMetrics', lookAlike)).path).toBe(
      'registry',
    );
    const foreign = limiter(copy);
    expect(rateLimitersOption('collectMetrics', [foreign])).toEqual([foreign]);
    const fake = { name: 'api', on: () => () => undefined, health: () => ({}) };
    expect(configError(() => rateLimitersOption('collectMetrics', [fake])).path).toBe(
      'limiters[0]',
    );
  });

  it('refuse a breaker or a limiter given as a policy (it would be counted as a load shedder)', () => {
    for (const policy of [new CircuitBreaker({ name: 'b' }), limiter({ RateLimiter })]) {
      const error = configError(() => policiesOption('collectMetrics', { p: policy }));
      expect(error.path).toBe('policies.p');
      expect(error.message).toMatch(/breakers are reported through the registry/);
    }
    const shed = shedder({ LoadShedder });
    expect(policiesOption('collectMetrics', { shed })).toEqual([['shed', shed]]);
  });
});

describe('objects of an incompatible contract', () => {
  const future = (kind: string): object => ({ [Symbol.for(`breakwater.${kind}`)]: 2, name: 'x' });

  it('are refused by name rather than taken for options', () => {
    const cases: [() => unknown, string][] = [
      [() => new RouteBreakers(future('CircuitBreaker')), 'options'],
      [
        () => new RouteBreakers({ registry: future('CircuitBreakerRegistry') as never }),
        'registry',
      ],
      [() => new HttpRateLimit(future('RateLimiter')), 'options'],
      [() => new CircuitBreakerRegistry().add(future('CircuitBreaker') as never), 'add(breaker)'],
      [() => retry({ budget: future('RetryBudget') as never }), 'budget'],
    ];
    for (const [build, path] of cases) {
      const error = configError(build);
      expect(error.path).toBe(path);
      expect(error.message).toMatch(/contract 2, this copy 1\): install one major version/);
    }
  });
});

describe('a limiter given where a store is expected', () => {
  it('is refused by name (it has consume() and reset() too)', () => {
    const error = configError(
      () => new RateLimiter({ name: 'a', rate: '1/s', store: limiter({ RateLimiter }) as never }),
    );
    expect(error.path).toBe('store');
    expect(error.message).toMatch(/not a RateLimiter/);
  });
});
