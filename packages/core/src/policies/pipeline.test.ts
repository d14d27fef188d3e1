import { afterEach, beforeEach, describe, expect, it, jest } from '@jest/globals';
import { constant } from './backoff';
import { bulkhead } from './bulkhead';
import { CircuitBreaker } from '../breaker/circuit-breaker';
import { isCircuitOpenError, isConfigError, isTimeoutError } from '../errors';
import { fallback } from './fallback';
import { neverAbortedSignal } from '../internal/never-aborted';
import { pipeline } from './pipeline';
import type { Policy } from '../policy';
import { retry } from './retry';
import { timeout } from './timeout';

/** A policy that records when calls enter and leave it, and the signals it sees. */
function tracer(name: string, log: string[], signals: AbortSignal[] = []): Policy {
  return {
    async execute<T>(fn: (signal: AbortSignal) => PromiseLike<T> | T, signal?: AbortSignal) {
      log.push(`${name}>`);
      signals.push(signal ?? neverAbortedSignal);
      try {
        return await fn(signal ?? neverAbortedSignal);
      } finally {
        log.push(`<${name}`);
      }
    },
  };
}

beforeEach(() => {
  jest.useFakeTimers();
});

afterEach(() => {
  jest.useRealTimers();
});

describe('pipeline', () => {
  it('runs the policies left to right, outermost first', async () => {
    const log: string[] = [];
    const policy = pipeline(tracer('a', log), tracer('b', log), tracer('c', log), tracer('d', log));
    await expect(policy.execute(async () => log.push('call'))).resolves.toBe(5);
    expect(log).toEqual(['a>', 'b>', 'c>', 'd>', 'call', '<d', '<c', '<b', '<a']);
    expect(policy.policies).toHaveLength(4);
  });

  it('passes one signal down the chain', async () => {
    const log: string[] = [];
    const signals: AbortSignal[] = [];
    const controller = new AbortController();
    const policy = pipeline(tracer('a', log, signals), tracer('b', log, signals));
    let inner: AbortSignal | undefined;
    await policy.execute(async (s) => (inner = s), controller.signal);
    expect(signals).toEqual([controller.signal, controller.signal]);
    expect(inner).toBe(controller.signal);
  });

  it('hands the call its timeout signal, linked to the caller signal', async () => {
    const signals: AbortSignal[] = [];
    const controller = new AbortController();
    const policy = pipeline(retry({ maxAttempts: 1 }), timeout(1_000), tracer('t', [], signals));
    const promise = policy.execute(
      (s) => new Promise((_r, reject) => s.addEventListener('abort', () => reject(s.reason))),
      controller.signal,
    );
    const settled = promise.catch((e: unknown) => e);
    expect(signals[0]).not.toBe(controller.signal);
    controller.abort('stop');
    await expect(settled).resolves.toBe('stop');
    expect(signals[0]!.aborted).toBe(true);
  });

  it('runs the call directly with no policy, and with one', async () => {
    await expect(pipeline().execute(() => 7)).resolves.toBe(7);
    const error = new Error('x');
    await expect(
      pipeline().execute(() => {
        throw error;
      }),
    ).rejects.toBe(error);
    const log: string[] = [];
    await expect(pipeline(tracer('only', log)).execute(async () => 'one')).resolves.toBe('one');
    expect(log).toEqual(['only>', '<only']);
  });

  it('nests: a pipeline is a policy', async () => {
    const log: string[] = [];
    const inner = pipeline(tracer('b', log), tracer('c', log));
    await pipeline(tracer('a', log), inner).execute(async () => log.push('call'));
    expect(log).toEqual(['a>', 'b>', 'c>', 'call', '<c', '<b', '<a']);
  });

  it('retries timeouts and gives up on an open circuit', async () => {
    const breaker = new CircuitBreaker({ name: 'upstream', failureThreshold: 2 });
    const fn = jest.fn(() => new Promise<string>(() => undefined));
    const policy = pipeline(
      retry({ maxAttempts: 5, backoff: constant(10) }),
      breaker,
      timeout(100),
    );
    const settled = policy.execute(fn).catch((e: unknown) => e);
    await jest.advanceTimersByTimeAsync(1_000);
    const error = await settled;
    // Two timeouts open the circuit; the third attempt is rejected and not retried.
    expect(fn).toHaveBeenCalledTimes(2);
    expect(isCircuitOpenError(error)).toBe(true);
    expect(breaker.state).toBe('open');
  });

  it('returns a fallback for whatever the inner policies throw', async () => {
    const policy = pipeline(
      fallback('stale'),
      retry({ maxAttempts: 2, backoff: constant(0) }),
      timeout(50),
    );
    const settled = policy.execute(() => new Promise<string>(() => undefined));
    await jest.advanceTimersByTimeAsync(100);
    await expect(settled).resolves.toBe('stale');
  });

  it('infers the result type without casts', async () => {
    const withFallback = pipeline(fallback(null), retry(), bulkhead({ maxConcurrent: 2 }));
    const value = await withFallback.execute(async () => 'text');
    const typed: string | null = value;
    // @ts-expect-error the fallback may resolve to null
    const narrow: string = value;
    void narrow;
    const plain = pipeline(retry(), timeout(10));
    const count: number = await plain.execute(() => 1);
    const asPolicy: Policy = plain;
    const nested = pipeline(
      fallback(() => 0),
      pipeline(fallback(false), retry()),
    );
    const union: string | number | boolean = await nested.execute(async () => 'x');
    expect([typed, count, union, typeof asPolicy.execute]).toEqual(['text', 1, 'x', 'function']);
  });

  it('rejects an argument that is not a policy', () => {
    try {
      pipeline(retry(), {} as never);
      throw new Error('expected a ConfigError');
    } catch (error) {
      expect(isConfigError(error) && error.path).toBe('policies[1]');
    }
  });

  it('lets a timeout reject inside the breaker so it counts as a failure', async () => {
    const breaker = new CircuitBreaker({ name: 'slow', failureThreshold: 1 });
    const policy = pipeline(breaker, timeout(10));
    const settled = policy.execute(() => new Promise(() => undefined)).catch((e: unknown) => e);
    await jest.advanceTimersByTimeAsync(10);
    expect(isTimeoutError(await settled)).toBe(true);
    expect(breaker.state).toBe('open');
  });
});
