import { getEventListeners } from 'node:events';
import { afterEach, beforeEach, describe, expect, it, jest } from '@jest/globals';
import { bulkhead } from './bulkhead';
import { type BulkheadFullError, isBulkheadFullError, isConfigError } from '../errors';

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

/** A call that stays pending until `finish()` is called. */
function gate<T = string>(value?: T) {
  let finish: () => void = () => undefined;
  let fail: (error: unknown) => void = () => undefined;
  const started = jest.fn();
  const fn = (signal: AbortSignal): Promise<T | undefined> => {
    started(signal);
    return new Promise<T | undefined>((resolve, reject) => {
      finish = () => resolve(value);
      fail = reject;
    });
  };
  return {
    fn,
    started,
    finish: () => finish(),
    fail: (error: unknown) => fail(error),
  };
}

beforeEach(() => {
  jest.useFakeTimers();
});

afterEach(() => {
  jest.useRealTimers();
});

describe('bulkhead', () => {
  it('runs up to maxConcurrent calls and rejects the next with BulkheadFullError', async () => {
    const policy = bulkhead({ maxConcurrent: 2 });
    const a = gate('a');
    const b = gate('b');
    const pa = policy.execute(a.fn);
    const pb = policy.execute(b.fn);
    expect(policy.running).toBe(2);
    const fn = jest.fn(async () => 'c');
    const error = await policy.execute(fn).catch(rejection);
    expect(isBulkheadFullError(error)).toBe(true);
    expect((error as BulkheadFullError).maxConcurrent).toBe(2);
    expect((error as BulkheadFullError).maxQueue).toBe(0);
    expect(fn).not.toHaveBeenCalled();
    a.finish();
    await expect(pa).resolves.toBe('a');
    expect(policy.running).toBe(1);
    await expect(policy.execute(fn)).resolves.toBe('c');
    b.finish();
    await pb;
    expect(policy.running).toBe(0);
  });

  it('frees the slot when a call fails or throws synchronously', async () => {
    const policy = bulkhead({ maxConcurrent: 1 });
    const error = new Error('x');
    await expect(policy.execute(() => Promise.reject(error))).rejects.toBe(error);
    await expect(
      policy.execute(() => {
        throw error;
      }),
    ).rejects.toBe(error);
    expect(policy.running).toBe(0);
    await expect(policy.execute(() => 'sync value')).resolves.toBe('sync value');
  });

  it('queues up to maxQueue calls and starts them in arrival order', async () => {
    const policy = bulkhead({ maxConcurrent: 1, maxQueue: 2 });
    const order: string[] = [];
    const first = gate('first');
    const p1 = policy.execute(first.fn);
    const p2 = policy.execute(async () => order.push('second'));
    const p3 = policy.execute(async () => order.push('third'));
    expect([policy.running, policy.queued]).toEqual([1, 2]);
    expect(isBulkheadFullError(await policy.execute(async () => 'x').catch(rejection))).toBe(true);
    first.finish();
    await Promise.all([p1, p2, p3]);
    expect(order).toEqual(['second', 'third']);
    expect([policy.running, policy.queued]).toEqual([0, 0]);
  });

  it('lets a queued call whose signal aborts leave the queue at once', async () => {
    const policy = bulkhead({ maxConcurrent: 1, maxQueue: 3 });
    const running = gate('running');
    const pRunning = policy.execute(running.fn);
    const controller = new AbortController();
    const a = jest.fn(async () => 'a');
    const b = jest.fn(async () => 'b');
    const c = jest.fn(async () => 'c');
    const pa = policy.execute(a);
    const pb = policy.execute(b, controller.signal);
    const pc = policy.execute(c);
    expect(policy.queued).toBe(3);
    const reason = new Error('no longer needed');
    controller.abort(reason);
    await expect(pb).rejects.toBe(reason);
    expect(policy.queued).toBe(2);
    expect(getEventListeners(controller.signal, 'abort')).toHaveLength(0);
    running.finish();
    await expect(Promise.all([pRunning, pa, pc])).resolves.toEqual(['running', 'a', 'c']);
    expect(b).not.toHaveBeenCalled();
    expect(policy.running).toBe(0);
  });

  it('keeps serving the queue when the head, the tail or every waiter aborts', async () => {
    const policy = bulkhead({ maxConcurrent: 1, maxQueue: 1_000 });
    const running = gate();
    const pRunning = policy.execute(running.fn);
    const controllers = Array.from({ length: 1_000 }, () => new AbortController());
    const ran: number[] = [];
    const results = controllers.map((c, i) =>
      policy.execute(async () => ran.push(i), c.signal).catch(rejection),
    );
    // Abort the head, the tail and every odd waiter.
    controllers[0]!.abort();
    controllers[999]!.abort();
    controllers.forEach((c, i) => i % 2 === 1 && c.abort());
    expect(policy.queued).toBe(1_000 - 2 - 500 + 1);
    running.finish();
    await pRunning;
    await Promise.all(results);
    const expected = Array.from({ length: 1_000 }, (_, i) => i).filter(
      (i) => i !== 0 && i !== 999 && i % 2 === 0,
    );
    expect(ran).toEqual(expected);
    expect([policy.running, policy.queued]).toEqual([0, 0]);
  });

  it('rejects a queued call whose signal is already aborted without queueing it', async () => {
    const policy = bulkhead({ maxConcurrent: 1, maxQueue: 1 });
    const running = gate();
    void policy.execute(running.fn);
    const controller = new AbortController();
    controller.abort('gone');
    await expect(policy.execute(async () => 'x', controller.signal)).rejects.toBe('gone');
    expect(policy.queued).toBe(0);
    running.finish();
  });

  it('rejects a call that waits longer than queueTimeoutMs', async () => {
    const policy = bulkhead({ maxConcurrent: 1, maxQueue: 2, queueTimeoutMs: '1s' });
    const running = gate('running');
    const pRunning = policy.execute(running.fn);
    const waiting = policy.execute(async () => 'late').catch(rejection);
    await jest.advanceTimersByTimeAsync(500);
    const second = policy.execute(async () => 'second');
    await jest.advanceTimersByTimeAsync(500);
    expect(isBulkheadFullError(await waiting)).toBe(true);
    expect(policy.queued).toBe(1);
    running.finish();
    await expect(pRunning).resolves.toBe('running');
    await expect(second).resolves.toBe('second');
    expect(jest.getTimerCount()).toBe(0);
  });

  it('clears the queue timer of a call that gets a slot in time', async () => {
    const policy = bulkhead({ maxConcurrent: 1, maxQueue: 1, queueTimeoutMs: 1_000 });
    const running = gate();
    void policy.execute(running.fn);
    const queued = policy.execute(async () => 'ok');
    expect(jest.getTimerCount()).toBe(1);
    running.finish();
    await expect(queued).resolves.toBe('ok');
    expect(jest.getTimerCount()).toBe(0);
  });

  it('passes the caller signal to fn', async () => {
    const policy = bulkhead({ maxConcurrent: 1, maxQueue: 1 });
    const controller = new AbortController();
    const running = gate();
    void policy.execute(running.fn, controller.signal);
    expect(running.started).toHaveBeenCalledWith(controller.signal);
    const seen = jest.fn();
    const queued = policy.execute(async (s) => seen(s), controller.signal);
    running.finish();
    await queued;
    expect(seen).toHaveBeenCalledWith(controller.signal);
  });

  it('rejects bad options naming the option', () => {
    expect(configPath(() => bulkhead({ maxConcurrent: 0 }))).toBe('maxConcurrent');
    expect(configPath(() => bulkhead({} as never))).toBe('maxConcurrent');
    expect(configPath(() => bulkhead({ maxConcurrent: 1, maxQueue: -1 }))).toBe('maxQueue');
    expect(configPath(() => bulkhead({ maxConcurrent: 1, maxQueue: 0.5 }))).toBe('maxQueue');
    expect(configPath(() => bulkhead({ maxConcurrent: 1, queueTimeoutMs: 0 }))).toBe(
      'queueTimeoutMs',
    );
    expect(configPath(() => bulkhead({ maxConcurrent: 1, maxQeue: 1 } as never))).toBe('maxQeue');
    expect(configPath(() => bulkhead(undefined as never))).toBe('options');
  });

  it('exposes its settings', () => {
    const policy = bulkhead({ maxConcurrent: 4, maxQueue: 8, queueTimeoutMs: '2s' });
    expect([policy.maxConcurrent, policy.maxQueue, policy.queueTimeoutMs]).toEqual([4, 8, 2_000]);
    expect(bulkhead({ maxConcurrent: 1 }).queueTimeoutMs).toBeUndefined();
  });
});
