import { afterEach, beforeEach, describe, expect, it, jest } from '@jest/globals';
import { CircuitBreaker } from './circuit-breaker';
import { isCircuitOpenError, isTimeoutError } from '../errors';
import { boom, ok, fail, make } from '../../test/breaker-helpers';

describe('CircuitBreaker timeouts and signals', () => {
  beforeEach(() => {
    jest.useFakeTimers();
  });
  afterEach(() => {
    jest.useRealTimers();
  });

  it('aborts the call signal on timeout, rejects with TimeoutError and counts a failure', async () => {
    const { breaker } = make({ failureThreshold: 1, timeoutMs: 100 });
    let seen: AbortSignal | undefined;
    const timeouts: unknown[] = [];
    breaker.on('timeout', (e) => timeouts.push(e));
    const call = breaker.execute((signal) => {
      seen = signal;
      return new Promise(() => undefined);
    });
    const result = call.catch((e: unknown) => e);
    await jest.advanceTimersByTimeAsync(100);
    const error = await result;
    expect(isTimeoutError(error)).toBe(true);
    expect(seen!.aborted).toBe(true);
    expect(seen!.reason).toBe(error);
    expect(timeouts).toEqual([{ timeoutMs: 100 }]);
    expect(breaker.state).toBe('open');
    expect(jest.getTimerCount()).toBe(0);
  });

  it('gives each call its own signal: a timeout aborts that call only', async () => {
    const { breaker } = make({ timeoutMs: 100 });
    const signals: AbortSignal[] = [];
    const slow = breaker.execute((signal) => {
      signals.push(signal);
      return new Promise(() => undefined);
    });
    const fast = breaker.execute((signal) => {
      signals.push(signal);
      return Promise.resolve('fast');
    });
    await expect(fast).resolves.toBe('fast');
    const slowResult = slow.catch((e: unknown) => e);
    await jest.advanceTimersByTimeAsync(100);
    expect(isTimeoutError(await slowResult)).toBe(true);
    expect(signals[0]!.aborted).toBe(true);
    expect(signals[1]!.aborted).toBe(false);
  });

  it("honours the caller's signal, does not count a caller abort, and leaves no listener behind", async () => {
    const { breaker } = make({ failureThreshold: 1, timeoutMs: 1000 });
    const parent = new AbortController();
    const added = jest.spyOn(parent.signal, 'addEventListener');
    const removed = jest.spyOn(parent.signal, 'removeEventListener');
    for (let i = 0; i < 100; i++) await breaker.execute(() => Promise.resolve(i), parent.signal);
    expect(added).toHaveBeenCalledTimes(100);
    expect(removed).toHaveBeenCalledTimes(100);

    const pending = breaker.execute(
      (signal) =>
        new Promise((_, reject) => signal.addEventListener('abort', () => reject(signal.reason))),
      parent.signal,
    );
    const reason = new Error('caller gave up');
    parent.abort(reason);
    await expect(pending).rejects.toBe(reason);
    expect(breaker.state).toBe('closed');
    expect(jest.getTimerCount()).toBe(0);
  });

  it('does not call fn when the caller signal is already aborted', async () => {
    const { breaker } = make({ failureThreshold: 1 });
    const controller = new AbortController();
    controller.abort(new Error('cancelled'));
    const fn = jest.fn(ok);
    await expect(breaker.execute(fn, controller.signal)).rejects.toThrow('cancelled');
    expect(fn).not.toHaveBeenCalled();
    expect(breaker.state).toBe('closed');
  });

  it('without timeoutMs passes the caller signal, or one shared never-aborting signal', async () => {
    const { breaker } = make();
    const controller = new AbortController();
    const seen: AbortSignal[] = [];
    await breaker.execute((s) => seen.push(s), controller.signal);
    await breaker.execute((s) => seen.push(s));
    await breaker.execute((s) => seen.push(s));
    expect(seen[0]).toBe(controller.signal);
    expect(seen[1]).toBe(seen[2]);
    expect(seen[1]!.aborted).toBe(false);
  });
});

describe('CircuitBreaker fallback and wrap', () => {
  it('calls the fallback with the error when rejected or failed', async () => {
    const fallback = jest.fn((error: unknown) => (isCircuitOpenError(error) ? 'open' : 'failed'));
    const { breaker } = make({ failureThreshold: 1, fallback });
    await expect(breaker.execute(fail)).resolves.toBe('failed');
    await expect(breaker.execute(ok)).resolves.toBe('open');
    expect(fallback.mock.calls[0]![0]).toBe(boom);
  });

  it('wrap keeps arguments and this, adds no signal, and passes arguments to the fallback', async () => {
    const fallback = jest.fn((_error: unknown, id: string) => `cached ${id}`);
    const { breaker } = make({ failureThreshold: 1, fallback });
    const service = {
      prefix: 'plant',
      identify(this: { prefix: string }, id: string, ...rest: unknown[]) {
        if (id === 'bad') return Promise.reject(boom);
        return Promise.resolve(`${this.prefix}:${id}:${rest.length}`);
      },
    };
    const identify = breaker.wrap(service.identify);
    await expect(identify.call(service, 'rose')).resolves.toBe('plant:rose:0');
    await expect(identify.call(service, 'bad')).resolves.toBe('cached bad');
    await expect(identify.call(service, 'fern')).resolves.toBe('cached fern');
    expect(fallback.mock.calls[1]![1]).toBe('fern');
  });
});

describe('CircuitBreaker durations', () => {
  it('times calls on a monotonic clock with sub-millisecond resolution by default', async () => {
    const breaker = new CircuitBreaker({ name: 'timed' });
    const durations: number[] = [];
    breaker.on('success', ({ durationMs }) => durations.push(durationMs));
    for (let i = 0; i < 5; i++) await breaker.execute(() => Promise.resolve(i));
    expect(durations).toHaveLength(5);
    expect(durations.every((d) => d >= 0 && d < 1_000)).toBe(true);
    // Date.now() would give whole milliseconds (mostly 0); performance.now() gives fractions.
    expect(durations.some((d) => !Number.isInteger(d))).toBe(true);
  });
});
