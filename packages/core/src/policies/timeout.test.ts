import { getEventListeners, setMaxListeners } from 'node:events';
import { afterEach, beforeEach, describe, expect, it, jest } from '@jest/globals';
import { type TimeoutError, isConfigError, isTimeoutError } from '../errors';
import { timeout } from './timeout';

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

beforeEach(() => {
  jest.useFakeTimers();
});

afterEach(() => {
  jest.useRealTimers();
});

describe('timeout', () => {
  it('returns the result of a call that ends in time and clears its timer', async () => {
    const policy = timeout(1_000);
    await expect(policy.execute(async () => 'ok')).resolves.toBe('ok');
    expect(jest.getTimerCount()).toBe(0);
  });

  it('accepts plain values and synchronous throws', async () => {
    const policy = timeout(1_000);
    await expect(policy.execute(() => 42)).resolves.toBe(42);
    const error = new Error('sync');
    await expect(
      policy.execute(() => {
        throw error;
      }),
    ).rejects.toBe(error);
    expect(jest.getTimerCount()).toBe(0);
  });

  it('passes the error of a failing call through unchanged', async () => {
    const error = new Error('boom');
    await expect(timeout(1_000).execute(() => Promise.reject(error))).rejects.toBe(error);
  });

  it('rejects with TimeoutError at the limit and aborts the signal, without waiting for fn', async () => {
    let seen: AbortSignal | undefined;
    const promise = timeout(500).execute((signal) => {
      seen = signal;
      return new Promise<never>(() => undefined); // never settles, ignores its signal
    });
    const settled = promise.catch(rejection);
    await jest.advanceTimersByTimeAsync(499);
    expect(seen!.aborted).toBe(false);
    await jest.advanceTimersByTimeAsync(1);
    const error = await settled;
    expect(isTimeoutError(error)).toBe(true);
    expect((error as TimeoutError).timeoutMs).toBe(500);
    expect(seen!.aborted).toBe(true);
    expect(seen!.reason).toBe(error);
  });

  it('ignores a late rejection after the timeout', async () => {
    let rejectLate: (error: Error) => void = () => undefined;
    const promise = timeout(100).execute(
      () => new Promise<never>((_resolve, reject) => (rejectLate = reject)),
    );
    const settled = promise.catch(rejection);
    await jest.advanceTimersByTimeAsync(100);
    rejectLate(new Error('late'));
    expect(isTimeoutError(await settled)).toBe(true);
  });

  it('rejects with the reason when the caller aborts, and aborts the call', async () => {
    const controller = new AbortController();
    let seen: AbortSignal | undefined;
    const promise = timeout(10_000).execute((signal) => {
      seen = signal;
      return new Promise<never>(() => undefined);
    }, controller.signal);
    const settled = promise.catch(rejection);
    expect(seen).not.toBe(controller.signal);
    const reason = new Error('caller left');
    controller.abort(reason);
    await expect(settled).resolves.toBe(reason);
    expect(seen!.reason).toBe(reason);
    expect(jest.getTimerCount()).toBe(0);
    expect(getEventListeners(controller.signal, 'abort')).toHaveLength(0);
  });

  it('does not call fn when the caller has already aborted', async () => {
    const controller = new AbortController();
    controller.abort('gone');
    const fn = jest.fn(async () => 'x');
    await expect(timeout(100).execute(fn, controller.signal)).rejects.toBe('gone');
    expect(fn).not.toHaveBeenCalled();
  });

  it('does not abort the signal of a call that finished in time', async () => {
    let seen: AbortSignal | undefined;
    await timeout(100).execute(async (signal) => {
      seen = signal;
      return 'done';
    });
    await jest.advanceTimersByTimeAsync(1_000);
    expect(seen!.aborted).toBe(false);
  });

  it('gives each call its own signal', async () => {
    const signals = new Set<AbortSignal>();
    const policy = timeout(100);
    await Promise.all([1, 2, 3].map(() => policy.execute(async (s) => signals.add(s))));
    expect(signals.size).toBe(3);
  });

  it('leaves no listener on a long-lived parent signal after 100,000 calls', async () => {
    jest.useRealTimers(); // every call settles at once; real timers only make the loop faster
    const parent = new AbortController().signal;
    const policy = timeout(1_000);
    let peak = 0;
    for (let i = 0; i < 100_000; i++) {
      if (i % 3 === 2) {
        await policy.execute(() => Promise.reject(new Error('x')), parent).catch(() => undefined);
      } else {
        await policy.execute(async () => {
          if (i % 1_000 === 0) peak = Math.max(peak, getEventListeners(parent, 'abort').length);
          return i;
        }, parent);
      }
    }
    expect(peak).toBe(1);
    expect(getEventListeners(parent, 'abort')).toHaveLength(0);
  });

  it('leaves no listener on the parent after calls that time out', async () => {
    const parent = new AbortController().signal;
    setMaxListeners(200, parent);
    const policy = timeout(10);
    const settled = Promise.all(
      Array.from({ length: 100 }, () =>
        policy.execute(() => new Promise(() => undefined), parent).catch(rejection),
      ),
    );
    expect(getEventListeners(parent, 'abort')).toHaveLength(100);
    await jest.advanceTimersByTimeAsync(10);
    const errors = await settled;
    expect(errors.every(isTimeoutError)).toBe(true);
    expect(getEventListeners(parent, 'abort')).toHaveLength(0);
  });

  it('accepts milliseconds, a duration string or { timeoutMs }', () => {
    expect(timeout(250).timeoutMs).toBe(250);
    expect(timeout('2s').timeoutMs).toBe(2_000);
    expect(timeout({ timeoutMs: '1m' }).timeoutMs).toBe(60_000);
  });

  it('rejects a limit that is not a positive duration', () => {
    expect(configPath(() => timeout(0))).toBe('timeoutMs');
    expect(configPath(() => timeout(-1))).toBe('timeoutMs');
    expect(configPath(() => timeout(Number.NaN))).toBe('timeoutMs');
    expect(configPath(() => timeout('soon'))).toBe('timeoutMs');
    expect(configPath(() => timeout({ timeoutMs: 0 }))).toBe('timeoutMs');
    expect(configPath(() => timeout({ timeoutMs: 5, extra: 1 } as never))).toBe('extra');
    expect(configPath(() => timeout(3_000_000_000))).toBe('timeoutMs');
    expect(configPath(() => timeout(undefined as never))).toBe('options');
  });
});
