import { afterEach, describe, expect, it, jest } from '@jest/globals';
import { BreakwaterModule } from '@breakwater/nestjs';
import {
  CircuitBreaker,
  CircuitBreakerRegistry,
  FailoverRateLimitStore,
  HealthRoutes,
  createFetch,
  isConfigError,
  retry,
  type RateLimitDecision,
  type RateLimitRule,
  type RateLimitStore,
} from '@breakwater/core';

/**
 * Minimal reproductions of what config fuzzing found, one test per finding, named after what
 * breaks. Each fails until the finding is fixed in core (by refusing the option with a
 * ConfigError or by making it work), and guards it afterwards.
 */

/** The error `fn` throws, or `undefined` when it returns. */
function thrownBy(fn: () => unknown): unknown {
  try {
    fn();
    return undefined;
  } catch (error) {
    return error;
  }
}

/** Accepts either outcome of a fix: a ConfigError naming `path`, or construction succeeding. */
function refusedWithPathOrBuilt<T>(build: () => T, path: string): T | undefined {
  const error = thrownBy(build);
  if (error === undefined) return build();
  expect(isConfigError(error) ? error.path : error).toBe(path);
  return undefined;
}

const rule: RateLimitRule = Object.freeze({
  name: 'r',
  algorithm: 'fixed-window',
  limit: 5,
  windowMs: 60_000,
  burst: 5,
  blockDurationMs: 0,
});

describe('durations longer than a Node.js timer can hold (2^31 - 1 ms) fire after 1 ms', () => {
  afterEach(() => {
    jest.useRealTimers();
  });

  it('CircuitBreaker timeoutMs of 25 days times out a call that takes 10 ms', async () => {
    jest.useFakeTimers();
    const breaker = refusedWithPathOrBuilt(
      () => new CircuitBreaker({ name: 'upstream', timeoutMs: '25d' }),
      'timeoutMs',
    );
    if (breaker === undefined) return;
    const call = breaker.execute(
      () => new Promise<string>((resolve) => setTimeout(() => resolve('answer'), 10)),
    );
    const settled = call.then(
      (value) => ({ value }),
      (error: unknown) => ({ error }),
    );
    await jest.advanceTimersByTimeAsync(10);
    expect(await settled).toEqual({ value: 'answer' });
  });

  it('FailoverRateLimitStore storeTimeoutMs of 25 days gives up on a member that answers in 10 ms', async () => {
    jest.useFakeTimers();
    const member: RateLimitStore = {
      local: false,
      consume: () =>
        new Promise<RateLimitDecision>((resolve) =>
          setTimeout(
            () => resolve({ allowed: true, limit: 5, remaining: 4, resetMs: 1, retryAfterMs: 0 }),
            10,
          ),
        ),
      reset: () => Promise.resolve(),
    };
    const failover = refusedWithPathOrBuilt(
      () => new FailoverRateLimitStore([member], { storeTimeoutMs: '25d' }),
      'storeTimeoutMs',
    );
    if (failover === undefined) return;
    const settled = failover.consume('k', 1, rule).then(
      (decision) => ({ remaining: decision.remaining }),
      (error: unknown) => ({ error }),
    );
    await jest.advanceTimersByTimeAsync(10);
    expect(await settled).toEqual({ remaining: 4 });
  });

  it('HealthRoutes stream.heartbeatMs of 25 days sends a heartbeat every millisecond', async () => {
    jest.useFakeTimers();
    const routes = refusedWithPathOrBuilt(
      () => new HealthRoutes({ stream: { heartbeatMs: '25d' } }),
      'stream.heartbeatMs',
    );
    if (routes === undefined) return;
    try {
      const stream = await routes.handle('GET', '/health/circuit-breakers/stream', {});
      if (stream?.kind !== 'sse') throw new Error('the stream did not open');
      const chunks: string[] = [];
      stream.start(
        (chunk) => chunks.push(chunk),
        () => undefined,
      );
      await jest.advanceTimersByTimeAsync(1_000);
      expect(chunks.filter((c) => c.startsWith(': heartbeat'))).toHaveLength(0);
    } finally {
      routes.close();
    }
  });
});

describe('createFetch registry', () => {
  it('createFetch takes any object with get() as its registry, then throws a TypeError at the first request', async () => {
    const fetch = (): Promise<Response> => Promise.resolve(new Response('ok'));
    const protectedFetch = refusedWithPathOrBuilt(
      () => createFetch({ registry: new Map() as never, fetch }),
      'registry',
    );
    if (protectedFetch === undefined) return;
    const response = await protectedFetch('http://origin.test/');
    expect(response.status).toBe(200);
  });
});

describe('ConfigError paths of nested options', () => {
  it('CircuitBreakerRegistry names a bad defaults option without its "defaults." prefix', () => {
    const error = thrownBy(
      () => new CircuitBreakerRegistry({ defaults: { failureThreshold: -1 } }),
    );
    expect(isConfigError(error) ? error.path : error).toBe('defaults.failureThreshold');
  });

  it('CircuitBreakerRegistry names a bad per-breaker option without its "breakers.<name>." prefix', () => {
    const error = thrownBy(
      () => new CircuitBreakerRegistry({ breakers: { payments: { minimumCalls: 0 } } }),
    );
    expect(isConfigError(error) ? error.path : error).toBe('breakers.payments.minimumCalls');
  });

  it('CircuitBreakerRegistry names the characters of a string given as breaker options ("0")', () => {
    const error = thrownBy(
      () => new CircuitBreakerRegistry({ breakers: { defaults: 'abc' as never } }),
    );
    expect(isConfigError(error) ? error.path : error).toBe('breakers.defaults');
  });

  it('retry names a bad budget option without its "budget." prefix', () => {
    const error = thrownBy(() => retry({ budget: { ratio: -1 } }));
    expect(isConfigError(error) ? error.path : error).toBe('budget.ratio');
  });

  it('createFetch names a bad retry option without its "retry." prefix', () => {
    const error = thrownBy(() => createFetch({ retry: { maxAttempts: 0 } }));
    expect(isConfigError(error) ? error.path : error).toBe('retry.maxAttempts');
  });
});

describe('BreakwaterModule options that are not objects, strings or lists', () => {
  const factory = (): object => ({});

  it('BreakwaterModule.forRoot throws a TypeError for health: null', () => {
    const error = thrownBy(() => BreakwaterModule.forRoot({ health: null as never }));
    expect(isConfigError(error) ? error.path : error).toBe('health');
  });

  it('BreakwaterModule.forRoot throws a TypeError for a health.path that is not a string', () => {
    const error = thrownBy(() => BreakwaterModule.forRoot({ health: { path: 5 as never } }));
    expect(isConfigError(error) ? error.path : error).toBe('health.path');
  });

  it('BreakwaterModule.forRootAsync throws a TypeError for a healthPath that is not a string', () => {
    const error = thrownBy(() =>
      BreakwaterModule.forRootAsync({ useFactory: factory, healthPath: null as never }),
    );
    expect(isConfigError(error) ? error.path : error).toBe('healthPath');
  });

  it('BreakwaterModule.forRootAsync throws a TypeError for breakerNames that is not a list', () => {
    const error = thrownBy(() =>
      BreakwaterModule.forRootAsync({ useFactory: factory, breakerNames: 'payments' as never }),
    );
    expect(isConfigError(error) ? error.path : error).toBe('breakerNames');
  });

  it('BreakwaterModule.forRootAsync throws a TypeError for imports that is not a list', () => {
    const error = thrownBy(() =>
      BreakwaterModule.forRootAsync({ useFactory: factory, imports: 5 as never }),
    );
    expect(isConfigError(error) ? error.path : error).toBe('imports');
  });
});
