import { afterEach, beforeEach, describe, expect, it, jest } from '@jest/globals';
import { constant, exponential } from './backoff';
import {
  BulkheadFullError,
  CircuitOpenError,
  RateLimitError,
  TimeoutError,
  isConfigError,
} from '../errors';
import { neverAbortedSignal } from '../internal/never-aborted';
import { type GiveUpEvent, type RetryEvent, defaultRetryOn, retry } from './retry';
import { RetryBudget } from './retry-budget';

function configPath(fn: () => unknown): string {
  try {
    fn();
  } catch (error) {
    if (isConfigError(error)) return error.path;
    throw error;
  }
  throw new Error('expected a ConfigError');
}

const rejection = (error: unknown): unknown => error;

/** A call that fails `failures` times with fresh errors, then resolves to `value`. */
function flaky<T>(failures: number, value: T) {
  const errors: Error[] = [];
  const signals: AbortSignal[] = [];
  const fn = jest.fn(async (signal: AbortSignal): Promise<T> => {
    signals.push(signal);
    if (errors.length < failures) {
      const error = new Error(`failure ${errors.length + 1}`);
      errors.push(error);
      throw error;
    }
    return value;
  });
  return { fn, errors, signals };
}

beforeEach(() => {
  jest.useFakeTimers();
});

afterEach(() => {
  jest.useRealTimers();
});

describe('retry', () => {
  it('calls once and starts no timer when the first attempt succeeds', async () => {
    const { fn } = flaky(0, 'ok');
    await expect(retry().execute(fn)).resolves.toBe('ok');
    expect(fn).toHaveBeenCalledTimes(1);
    expect(jest.getTimerCount()).toBe(0);
  });

  it('reports and waits a whole number of milliseconds when the backoff returns a fraction', async () => {
    const { fn } = flaky(1, 'ok');
    const onRetry = jest.fn<(event: RetryEvent) => void>();
    const promise = retry({ backoff: () => 169.87669871615202, onRetry }).execute(fn);
    await jest.advanceTimersByTimeAsync(169);
    expect(onRetry.mock.calls[0]![0].delayMs).toBe(170);
    expect(jest.getTimerCount()).toBe(1);
    await jest.advanceTimersByTimeAsync(1);
    await expect(promise).resolves.toBe('ok');
  });

  it('retries after the backoff delay and returns the first success', async () => {
    const { fn } = flaky(2, 'ok');
    const promise = retry({ maxAttempts: 3, backoff: constant(1_000) }).execute(fn);
    await jest.advanceTimersByTimeAsync(0);
    expect(fn).toHaveBeenCalledTimes(1);
    await jest.advanceTimersByTimeAsync(999);
    expect(fn).toHaveBeenCalledTimes(1);
    await jest.advanceTimersByTimeAsync(1);
    expect(fn).toHaveBeenCalledTimes(2);
    await jest.advanceTimersByTimeAsync(1_000);
    await expect(promise).resolves.toBe('ok');
    expect(fn).toHaveBeenCalledTimes(3);
  });

  it('counts the first call in maxAttempts and rethrows the last error unchanged', async () => {
    const { fn, errors } = flaky(10, 'never');
    const promise = retry({ maxAttempts: 4, backoff: constant(0) }).execute(fn);
    const caught = await promise.catch(rejection);
    expect(fn).toHaveBeenCalledTimes(4);
    expect(caught).toBe(errors[3]);
  });

  it('makes one attempt when maxAttempts is 1', async () => {
    const { fn, errors } = flaky(1, 'ok');
    await expect(retry({ maxAttempts: 1 }).execute(fn)).rejects.toBe(errors[0]);
    expect(fn).toHaveBeenCalledTimes(1);
  });

  it('passes the same signal to every attempt', async () => {
    const { fn, signals } = flaky(2, 'ok');
    const controller = new AbortController();
    await retry({ backoff: constant(0) }).execute(fn, controller.signal);
    expect(signals).toEqual([controller.signal, controller.signal, controller.signal]);
    const other = flaky(1, 'ok');
    await retry({ backoff: constant(0) }).execute(other.fn);
    expect(other.signals).toEqual([neverAbortedSignal, neverAbortedSignal]);
  });

  it('feeds the backoff the attempt, the previous delay and the error', async () => {
    const { fn, errors } = flaky(3, 'ok');
    const backoff = jest.fn((attempt: number) => attempt * 10);
    const promise = retry({ maxAttempts: 5, backoff }).execute(fn);
    await jest.advanceTimersByTimeAsync(100);
    await expect(promise).resolves.toBe('ok');
    expect(backoff.mock.calls).toEqual([
      [1, 0, errors[0]],
      [2, 10, errors[1]],
      [3, 20, errors[2]],
    ]);
  });

  it('treats a negative or NaN delay from a custom backoff as no delay', async () => {
    const { fn } = flaky(2, 'ok');
    const backoff = jest.fn().mockReturnValueOnce(-5).mockReturnValueOnce(Number.NaN) as never;
    await expect(retry({ backoff }).execute(fn)).resolves.toBe('ok');
    expect(jest.getTimerCount()).toBe(0);
  });

  it('uses exponential full-jitter backoff by default', async () => {
    const { fn } = flaky(1, 'ok');
    const onRetry = jest.fn<(event: RetryEvent) => void>();
    const promise = retry({ onRetry }).execute(fn);
    await jest.advanceTimersByTimeAsync(100);
    await expect(promise).resolves.toBe('ok');
    const delayMs = onRetry.mock.calls[0]![0].delayMs;
    expect(delayMs).toBeGreaterThanOrEqual(0);
    expect(delayMs).toBeLessThanOrEqual(100);
    expect(Number.isInteger(delayMs)).toBe(true);
  });

  it.each([
    ['CircuitOpenError', CircuitOpenError.create('upstream', 5_000)],
    ['RateLimitError', new RateLimitError(1_000, 10, 0)],
    ['BulkheadFullError', new BulkheadFullError(1, 0)],
    ['AbortError', new DOMException('aborted', 'AbortError')],
  ])('does not retry a %s by default', async (_name, error) => {
    const fn = jest.fn(() => Promise.reject(error));
    await expect(retry({ backoff: constant(0) }).execute(fn)).rejects.toBe(error);
    expect(fn).toHaveBeenCalledTimes(1);
  });

  it('retries a TimeoutError by default', async () => {
    const error = new TimeoutError(100);
    const fn = jest.fn(() => Promise.reject(error));
    await expect(retry({ backoff: constant(0) }).execute(fn)).rejects.toBe(error);
    expect(fn).toHaveBeenCalledTimes(3);
  });

  it('lets retryOn retry what the default would not', async () => {
    const error = CircuitOpenError.create('upstream', 0);
    const fn = jest.fn(() => Promise.reject(error));
    const policy = retry({ backoff: constant(0), retryOn: () => true });
    await expect(policy.execute(fn)).rejects.toBe(error);
    expect(fn).toHaveBeenCalledTimes(3);
  });

  it('lets retryOn refuse errors, with the attempt number', async () => {
    const { fn, errors } = flaky(5, 'ok');
    const retryOn = jest.fn((_o: unknown, attempt: number) => attempt < 2);
    const caught = await retry({ backoff: constant(0), retryOn })
      .execute(fn)
      .catch(rejection);
    expect(caught).toBe(errors[1]);
    expect(fn).toHaveBeenCalledTimes(2);
    expect(retryOn.mock.calls).toEqual([
      [{ error: errors[0] }, 1],
      [{ error: errors[1] }, 2],
    ]);
  });

  it('retries results that retryOn rejects and returns the last one when attempts run out', async () => {
    let n = 0;
    const fn = jest.fn(async () => ({ status: 503, n: ++n }));
    const retryOn = (outcome: Parameters<typeof defaultRetryOn>[0]): boolean =>
      'result' in outcome
        ? (outcome.result as { status: number }).status >= 500
        : defaultRetryOn(outcome);
    const onGiveUp = jest.fn<(event: GiveUpEvent) => void>();
    const result = await retry({ backoff: constant(0), retryOn, onGiveUp }).execute(fn);
    expect(result).toEqual({ status: 503, n: 3 });
    expect(onGiveUp).toHaveBeenCalledWith({ result, attempts: 3, reason: 'maxAttempts' });
  });

  it('returns a result as soon as retryOn accepts it', async () => {
    const statuses = [500, 502, 200];
    const fn = jest.fn(async () => statuses.shift());
    const policy = retry({
      maxAttempts: 5,
      backoff: constant(0),
      retryOn: (o) => 'result' in o && o.result !== 200,
    });
    await expect(policy.execute(fn)).resolves.toBe(200);
    expect(fn).toHaveBeenCalledTimes(3);
  });

  it('handles a function that throws synchronously or returns a plain value', async () => {
    const error = new Error('sync');
    let calls = 0;
    const fn = (): string => {
      if (++calls < 3) throw error;
      return 'plain';
    };
    await expect(retry({ backoff: constant(0) }).execute(fn)).resolves.toBe('plain');
  });

  it('reports each retry to onRetry before its delay', async () => {
    const { fn, errors } = flaky(2, 'ok');
    const events: RetryEvent[] = [];
    const promise = retry({
      backoff: constant(500),
      onRetry: (event) => events.push(event),
    }).execute(fn);
    await jest.advanceTimersByTimeAsync(0);
    expect(events).toEqual([{ error: errors[0], attempt: 1, delayMs: 500 }]);
    await jest.advanceTimersByTimeAsync(1_000);
    await promise;
    expect(events).toEqual([
      { error: errors[0], attempt: 1, delayMs: 500 },
      { error: errors[1], attempt: 2, delayMs: 500 },
    ]);
  });

  it('reports giving up after the last attempt', async () => {
    const { fn, errors } = flaky(5, 'ok');
    const onGiveUp = jest.fn<(event: GiveUpEvent) => void>();
    const caught = await retry({ maxAttempts: 2, backoff: constant(0), onGiveUp })
      .execute(fn)
      .catch(rejection);
    expect(caught).toBe(errors[1]);
    expect(onGiveUp).toHaveBeenCalledWith({ error: errors[1], attempts: 2, reason: 'maxAttempts' });
  });

  it('does not report giving up for an error it would never retry', async () => {
    const onGiveUp = jest.fn();
    const error = CircuitOpenError.create('x', 0);
    await expect(retry({ onGiveUp }).execute(() => Promise.reject(error))).rejects.toBe(error);
    expect(onGiveUp).not.toHaveBeenCalled();
  });

  it('ignores errors thrown by its hooks', async () => {
    const { fn, errors } = flaky(5, 'ok');
    const policy = retry({
      maxAttempts: 2,
      backoff: constant(0),
      onRetry: () => {
        throw new Error('hook');
      },
      onGiveUp: () => {
        throw new Error('hook');
      },
    });
    expect(await policy.execute(fn).catch(rejection)).toBe(errors[1]);
    expect(fn).toHaveBeenCalledTimes(2);
  });

  it('rejects at once with the reason and clears the timer when the caller aborts a delay', async () => {
    const { fn } = flaky(5, 'ok');
    const controller = new AbortController();
    const onGiveUp = jest.fn<(event: GiveUpEvent) => void>();
    const promise = retry({ backoff: constant(60_000), onGiveUp }).execute(fn, controller.signal);
    const settled = promise.catch((error: unknown) => error);
    await jest.advanceTimersByTimeAsync(10);
    expect(jest.getTimerCount()).toBe(1);
    const reason = new Error('caller gave up');
    controller.abort(reason);
    await expect(settled).resolves.toBe(reason);
    expect(jest.getTimerCount()).toBe(0);
    expect(fn).toHaveBeenCalledTimes(1);
    expect(onGiveUp.mock.calls[0]![0].reason).toBe('aborted');
  });

  it('does not retry once the caller has aborted, even when retryOn would', async () => {
    const controller = new AbortController();
    const error = new Error('after abort');
    const fn = jest.fn(async () => {
      controller.abort();
      throw error;
    });
    const policy = retry({ backoff: constant(0), retryOn: () => true });
    await expect(policy.execute(fn, controller.signal)).rejects.toBe(error);
    expect(fn).toHaveBeenCalledTimes(1);
  });

  it('rejects with the reason when the caller aborts during a zero delay', async () => {
    const controller = new AbortController();
    const fn = jest.fn(() => Promise.reject(new Error('x')));
    const policy = retry({ backoff: constant(0), onRetry: () => controller.abort('stop') });
    await expect(policy.execute(fn, controller.signal)).rejects.toBe('stop');
    expect(fn).toHaveBeenCalledTimes(1);
  });

  it('stops retrying when the budget is spent', async () => {
    const budget = new RetryBudget({
      ratio: 0,
      minPerSecond: 1,
      windowMs: 10_000,
      clock: { now: () => 0 },
    });
    const onGiveUp = jest.fn<(event: GiveUpEvent) => void>();
    const policy = retry({ maxAttempts: 10, backoff: constant(0), budget, onGiveUp });
    const { fn, errors } = flaky(100, 'ok');
    // One bucket of a 10 s window credits 1 retry per second × 1 s.
    expect(await policy.execute(fn).catch(rejection)).toBe(errors[1]);
    expect(fn).toHaveBeenCalledTimes(2);
    expect(onGiveUp.mock.calls[0]![0]).toMatchObject({ attempts: 2, reason: 'budget' });
    expect(policy.budget).toBe(budget);
  });

  it('builds a budget from options', () => {
    const policy = retry({ budget: { ratio: 0.5 } });
    expect(policy.budget?.ratio).toBe(0.5);
    expect(retry().budget).toBeUndefined();
  });

  it('rejects bad options naming the option', () => {
    expect(configPath(() => retry({ maxAttempts: 0 }))).toBe('maxAttempts');
    expect(configPath(() => retry({ maxAttempts: 1.5 }))).toBe('maxAttempts');
    expect(configPath(() => retry({ backoff: 100 as never }))).toBe('backoff');
    expect(configPath(() => retry({ retryOn: true as never }))).toBe('retryOn');
    expect(configPath(() => retry({ onRetry: 'log' as never }))).toBe('onRetry');
    expect(configPath(() => retry({ onGiveUp: {} as never }))).toBe('onGiveUp');
    expect(configPath(() => retry({ budget: 5 as never }))).toBe('budget');
    expect(configPath(() => retry({ budget: { ratio: -1 } }))).toBe('budget.ratio');
    expect(configPath(() => retry({ maxAttempt: 3 } as never))).toBe('maxAttempt');
  });

  it('accepts backoffs from exponential()', async () => {
    const { fn } = flaky(1, 'ok');
    const promise = retry({ backoff: exponential({ jitter: 'none', initialMs: 10 }) }).execute(fn);
    await jest.advanceTimersByTimeAsync(10);
    await expect(promise).resolves.toBe('ok');
  });
});

describe('defaultRetryOn', () => {
  it('retries ordinary errors and never results', () => {
    expect(defaultRetryOn({ error: new Error('x') })).toBe(true);
    expect(defaultRetryOn({ error: 'a string' })).toBe(true);
    expect(defaultRetryOn({ result: 500 })).toBe(false);
    expect(defaultRetryOn({ error: CircuitOpenError.create('x', 0) })).toBe(false);
  });
});
