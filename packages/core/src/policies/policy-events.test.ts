import { afterEach, beforeEach, describe, expect, it, jest } from '@jest/globals';
import { isBulkheadFullError, isTimeoutError, TimeoutError } from '../errors';
import { constant } from './backoff';
import { bulkhead } from './bulkhead';
import { fallback } from './fallback';
import { retry, type GiveUpEvent, type RetryEvent } from './retry';
import { timeout } from './timeout';

const rejection = (error: unknown): unknown => error;

beforeEach(() => {
  jest.useFakeTimers();
});

afterEach(() => {
  jest.useRealTimers();
});

describe('retry events', () => {
  it('emits retry before each delay and giveUp when the attempts are spent', async () => {
    const policy = retry({ maxAttempts: 3, backoff: constant(0) });
    const retries: RetryEvent[] = [];
    const giveUps: GiveUpEvent[] = [];
    policy.on('retry', (event) => retries.push(event));
    policy.on('giveUp', (event) => giveUps.push(event));
    const boom = new Error('boom');
    await expect(
      policy.execute(() => {
        throw boom;
      }),
    ).rejects.toBe(boom);
    expect(retries.map((e) => e.attempt)).toEqual([1, 2]);
    expect(retries[0]).toEqual({ error: boom, attempt: 1, delayMs: 0 });
    expect(giveUps).toEqual([{ error: boom, attempts: 3, reason: 'maxAttempts' }]);
  });

  it('passes the same event to onRetry and to listeners, and survives throwing listeners', async () => {
    const seen: RetryEvent[] = [];
    const policy = retry({ maxAttempts: 2, backoff: constant(0), onRetry: (e) => seen.push(e) });
    policy.on('retry', (e) => {
      seen.push(e);
      throw new Error('listener');
    });
    let calls = 0;
    await expect(
      policy.execute(() => {
        calls++;
        if (calls === 1) throw new Error('first');
        return 'ok';
      }),
    ).resolves.toBe('ok');
    expect(seen).toHaveLength(2);
    expect(seen[0]).toBe(seen[1]);
  });

  it('stops emitting once unsubscribed', async () => {
    const policy = retry({ maxAttempts: 2, backoff: constant(0) });
    const listener = jest.fn();
    const off = policy.on('retry', listener);
    off();
    off();
    await expect(policy.execute(() => Promise.reject(new Error('x')))).rejects.toThrow('x');
    expect(listener).not.toHaveBeenCalled();
  });
});

describe('fallback events', () => {
  it('emits fallback with the replaced error only when the fallback is used', async () => {
    const policy = fallback('cached');
    const listener = jest.fn();
    policy.on('fallback', listener);
    await expect(policy.execute(() => 'fresh')).resolves.toBe('fresh');
    expect(listener).not.toHaveBeenCalled();
    const boom = new Error('boom');
    await expect(policy.execute(() => Promise.reject(boom))).resolves.toBe('cached');
    expect(listener).toHaveBeenCalledWith({ error: boom });
  });

  it('does not emit when shouldHandle refuses the error, and a throwing listener is ignored', async () => {
    const policy = fallback('cached', { shouldHandle: (e) => e !== 'keep' });
    const listener = jest.fn(() => {
      throw new Error('listener');
    });
    policy.on('fallback', listener);
    await expect(policy.execute(() => Promise.reject('keep'))).rejects.toBe('keep');
    expect(listener).not.toHaveBeenCalled();
    await expect(policy.execute(() => Promise.reject('other'))).resolves.toBe('cached');
    expect(listener).toHaveBeenCalledTimes(1);
  });
});

describe('bulkhead events', () => {
  it('emits rejected with reason full when no slot and no queue place is free', async () => {
    const policy = bulkhead({ maxConcurrent: 1 });
    const listener = jest.fn();
    policy.on('rejected', listener);
    let finish: () => void = () => undefined;
    const running = policy.execute(() => new Promise<void>((resolve) => (finish = resolve)));
    const error = await policy.execute(() => 'never').catch(rejection);
    expect(isBulkheadFullError(error)).toBe(true);
    expect(listener).toHaveBeenCalledWith({ reason: 'full' });
    finish();
    await running;
  });

  it('emits rejected with reason queueTimeout when a queued call waits too long', async () => {
    const policy = bulkhead({ maxConcurrent: 1, maxQueue: 1, queueTimeoutMs: 100 });
    const listener = jest.fn();
    policy.on('rejected', listener);
    let finish: () => void = () => undefined;
    const running = policy.execute(() => new Promise<void>((resolve) => (finish = resolve)));
    const queued = policy.execute(() => 'late').catch(rejection);
    jest.advanceTimersByTime(100);
    expect(isBulkheadFullError(await queued)).toBe(true);
    expect(listener).toHaveBeenCalledWith({ reason: 'queueTimeout' });
    finish();
    await running;
  });
});

describe('timeout events', () => {
  it('emits timeout when its own limit rejects a call', async () => {
    const policy = timeout(50);
    const listener = jest.fn();
    policy.on('timeout', listener);
    const pending = policy.execute(() => new Promise(() => undefined)).catch(rejection);
    jest.advanceTimersByTime(50);
    expect(isTimeoutError(await pending)).toBe(true);
    await Promise.resolve();
    expect(listener).toHaveBeenCalledWith({ timeoutMs: 50 });
  });

  it('does not emit for a call that completes, fails, or fails with an inner TimeoutError', async () => {
    const policy = timeout(50);
    const listener = jest.fn();
    policy.on('timeout', listener);
    await expect(policy.execute(() => 'ok')).resolves.toBe('ok');
    await expect(policy.execute(() => Promise.reject(new Error('x')))).rejects.toThrow('x');
    const inner = new TimeoutError(10);
    await expect(policy.execute(() => Promise.reject(inner))).rejects.toBe(inner);
    await Promise.resolve();
    expect(listener).not.toHaveBeenCalled();
  });
});
