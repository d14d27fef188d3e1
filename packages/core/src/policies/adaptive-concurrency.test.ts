import { describe, expect, it, jest } from '@jest/globals';
import { adaptiveConcurrency } from './adaptive-concurrency';
import { pipeline } from './pipeline';
import { timeout } from './timeout';
import {
  ConcurrencyLimitError,
  isBreakwaterError,
  isConcurrencyLimitError,
  isConfigError,
  TimeoutError,
} from '../errors';

class FakeClock {
  time = 1_000;
  now(): number {
    return this.time;
  }
}

function configError(fn: () => unknown): { path: string; message: string } {
  try {
    fn();
  } catch (error) {
    if (isConfigError(error)) return { path: error.path, message: error.message };
    throw error;
  }
  throw new Error('expected a ConfigError');
}

function deferred<T = void>() {
  let resolve!: (value: T) => void;
  let reject!: (error: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

describe('adaptiveConcurrency', () => {
  it('admits up to the limit, then rejects at once with a cheap ConcurrencyLimitError', async () => {
    const policy = adaptiveConcurrency({ name: 'db', initialLimit: 2, minLimit: 1, maxLimit: 4 });
    const gates = [deferred<string>(), deferred<string>()];
    const first = policy.execute(() => gates[0]!.promise);
    const second = policy.execute(() => gates[1]!.promise);
    expect(policy.inFlight).toBe(2);
    const fn = jest.fn(() => 'never');
    const error = await policy.execute(fn).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(fn).not.toHaveBeenCalled();
    expect(isConcurrencyLimitError(error)).toBe(true);
    expect(isBreakwaterError(error)).toBe(true);
    expect(error).toBeInstanceOf(ConcurrencyLimitError);
    const limited = error as ConcurrencyLimitError;
    expect(limited).toMatchObject({
      code: 'ELIMITED',
      limiter: 'db',
      limit: 2,
      name: 'ConcurrencyLimitError',
    });
    expect(limited.stack).toBe(
      'ConcurrencyLimitError: Concurrency limit "db" reached (2 in flight)',
    );
    expect(JSON.parse(JSON.stringify(limited))).toMatchObject({ code: 'ELIMITED', limit: 2 });
    gates[0]!.resolve('a');
    gates[1]!.resolve('b');
    await expect(Promise.all([first, second])).resolves.toEqual(['a', 'b']);
    expect(policy.inFlight).toBe(0);
  });

  it('a constructed ConcurrencyLimitError is the same shape as a created one', () => {
    const error = new ConcurrencyLimitError('x', 3, 40);
    expect(isConcurrencyLimitError(error)).toBe(true);
    expect(error).toMatchObject({ limiter: 'x', limit: 3, retryAfterMs: 40, code: 'ELIMITED' });
    expect(isConcurrencyLimitError(new Error('ELIMITED'))).toBe(false);
  });

  it('rises under steady latency and falls when latency inflates (vegas, fake clock)', async () => {
    const clock = new FakeClock();
    const policy = adaptiveConcurrency({
      algorithm: 'vegas',
      initialLimit: 4,
      maxLimit: 16,
      vegas: { probeMultiplier: 1_000_000 },
      clock,
    });
    const changes: [number, number][] = [];
    policy.on('limitChanged', ({ from, to }) => changes.push([from, to]));
    const wave = async (latencyMs: number): Promise<void> => {
      const gates = Array.from({ length: policy.limit }, () => deferred());
      const calls = gates.map((gate) => policy.execute(() => gate.promise));
      clock.time += latencyMs;
      for (const gate of gates) gate.resolve();
      await Promise.all(calls);
    };
    // 4 calls: the first sets the no-load latency (10); the second (2 in flight, 2 * 2 >= 4) finds
    // no queue and adds beta (6); the others are app-limited (in flight * 2 < 10)
    await wave(10);
    expect(policy.limit).toBe(10);
    await wave(10); // the 5th and 8th calls add beta: 16, then capped at maxLimit
    expect(policy.limit).toBe(16);
    // from the 8th call on, queue = ceil(limit * (1 - 10 / 40)) > beta 6: minus 1 per call
    await wave(40);
    expect(policy.limit).toBe(8); // ceil(8 * 0.75) = 6: between alpha and beta, holds
    expect(changes[0]).toEqual([4, 10]);
    const snapshot = policy.snapshot();
    expect(snapshot).toMatchObject({
      name: 'adaptiveConcurrency',
      algorithm: 'vegas',
      limit: 8,
      inFlight: 0,
      minLimit: 1,
      maxLimit: 16,
      rejected: 0,
      noLoadRttMs: 10,
      lastRttMs: 40,
    });
    expect(snapshot.rttMs).toBeGreaterThan(10);
    expect(JSON.parse(JSON.stringify(snapshot))).toEqual(snapshot);
  });

  it('falls when calls fail or time out (aimd), and stays within minLimit', async () => {
    const clock = new FakeClock();
    const policy = adaptiveConcurrency({
      algorithm: 'aimd',
      initialLimit: 10,
      minLimit: 6,
      maxLimit: 10,
      clock,
    });
    await expect(policy.execute(() => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
    expect(policy.limit).toBe(9);
    await expect(
      policy.execute(() => Promise.reject(new TimeoutError(100))),
    ).rejects.toBeInstanceOf(TimeoutError);
    expect(policy.limit).toBe(8);
    for (let i = 0; i < 5; i++)
      await policy.execute(() => Promise.reject(new Error('x'))).catch(() => 0);
    expect(policy.limit).toBe(6);
  });

  it('counts a timeout inside a pipeline as a drop', async () => {
    jest.useFakeTimers();
    try {
      const limit = adaptiveConcurrency({ algorithm: 'aimd', initialLimit: 10, maxLimit: 10 });
      const policy = pipeline(limit, timeout(50));
      const call = policy.execute(
        (signal) =>
          new Promise((_, reject) => signal.addEventListener('abort', () => reject(signal.reason))),
      );
      const settled = call.catch((e: unknown) => e);
      await jest.advanceTimersByTimeAsync(50);
      expect(await settled).toBeInstanceOf(TimeoutError);
      expect(limit.limit).toBe(9);
      expect(limit.inFlight).toBe(0);
    } finally {
      jest.useRealTimers();
    }
  });

  it('isFailure false ignores an error; a throwing isFailure counts a drop', async () => {
    let verdict: () => boolean = () => false;
    const policy = adaptiveConcurrency({
      algorithm: 'aimd',
      initialLimit: 10,
      maxLimit: 10,
      isFailure: () => verdict(),
    });
    await policy.execute(() => Promise.reject(new Error('404'))).catch(() => 0);
    expect(policy.limit).toBe(10);
    verdict = () => {
      throw new Error('hook');
    };
    await policy.execute(() => Promise.reject(new Error('500'))).catch(() => 0);
    expect(policy.limit).toBe(9);
    expect(policy.inFlight).toBe(0);
  });

  it('ignores a call the caller aborted, and rejects at once when the signal is already aborted', async () => {
    const policy = adaptiveConcurrency({ algorithm: 'aimd', initialLimit: 10, maxLimit: 10 });
    const controller = new AbortController();
    const call = policy.execute(
      (signal) =>
        new Promise((_, reject) => signal.addEventListener('abort', () => reject(signal.reason))),
      controller.signal,
    );
    controller.abort(new Error('gone'));
    await expect(call).rejects.toThrow('gone');
    expect(policy.limit).toBe(10);
    const fn = jest.fn();
    await expect(policy.execute(fn, controller.signal)).rejects.toThrow('gone');
    expect(fn).not.toHaveBeenCalled();
    expect(policy.inFlight).toBe(0);
  });

  it('tryAcquire: permits settle once, undefined and a rejected event past the limit', () => {
    const clock = new FakeClock();
    const policy = adaptiveConcurrency({
      algorithm: 'aimd',
      initialLimit: 2,
      minLimit: 1,
      maxLimit: 3,
      clock,
    });
    const rejected: unknown[] = [];
    policy.on('rejected', (e) => rejected.push(e));
    policy.on('rejected', () => {
      throw new Error('listener');
    });
    const a = policy.tryAcquire()!;
    const b = policy.tryAcquire()!;
    expect(policy.tryAcquire()).toBeUndefined();
    expect(rejected).toEqual([{ limit: 2, inFlight: 2, reason: 'limit' }]);
    a.success(); // 2 in flight at start, 2 * 2 >= 2: +1
    a.success();
    a.dropped();
    expect(policy.limit).toBe(3);
    expect(policy.inFlight).toBe(1);
    b.dropped(); // floor(3 * 0.9) = 2
    b.ignore();
    expect(policy.limit).toBe(2);
    const c = policy.tryAcquire()!;
    c.ignore();
    expect(policy.limit).toBe(2);
    expect(policy.snapshot()).toMatchObject({ inFlight: 0, rejected: 1 });
  });

  it('stops calling a listener once unsubscribed; a throwing listener reaches onListenerError', () => {
    const errors: string[] = [];
    const policy = adaptiveConcurrency({
      algorithm: 'aimd',
      initialLimit: 1,
      maxLimit: 5,
      onListenerError: (_e, event) => errors.push(event),
    });
    const seen: unknown[] = [];
    const off = policy.on('limitChanged', (e) => seen.push(e));
    policy.on('limitChanged', () => {
      throw new Error('x');
    });
    policy.tryAcquire()!.success();
    off();
    policy.tryAcquire()!.success();
    expect(seen).toEqual([{ from: 1, to: 2 }]);
    expect(errors).toEqual(['limitChanged', 'limitChanged']);
  });

  it('the error carries about one recent latency as retryAfterMs', async () => {
    const clock = new FakeClock();
    const policy = adaptiveConcurrency({
      algorithm: 'aimd',
      initialLimit: 1,
      minLimit: 1,
      maxLimit: 1,
      clock,
    });
    const permit = policy.tryAcquire()!;
    clock.time += 250;
    permit.success();
    policy.tryAcquire();
    const error = policy.rejection();
    expect(error.retryAfterMs).toBe(250);
  });

  it('validates every option, naming its path', () => {
    expect(configError(() => adaptiveConcurrency({ algorithm: 'reno' as 'vegas' })).path).toBe(
      'algorithm',
    );
    expect(configError(() => adaptiveConcurrency({ minLimit: 0 })).path).toBe('minLimit');
    expect(configError(() => adaptiveConcurrency({ minLimit: 10, maxLimit: 5 })).path).toBe(
      'maxLimit',
    );
    expect(configError(() => adaptiveConcurrency({ maxLimit: 10, initialLimit: 11 })).path).toBe(
      'initialLimit',
    );
    expect(configError(() => adaptiveConcurrency({ limit: 3 } as never)).path).toBe('limit');
    expect(configError(() => adaptiveConcurrency({ name: '' })).path).toBe('name');
    expect(configError(() => adaptiveConcurrency({ isFailure: 1 as never })).path).toBe(
      'isFailure',
    );
    expect(configError(() => adaptiveConcurrency({ clock: {} as never })).path).toBe('clock');
    expect(
      configError(() =>
        adaptiveConcurrency({ algorithm: 'gradient2', gradient2: { smoothing: 0 } }),
      ).path,
    ).toBe('gradient2.smoothing');
    expect(
      configError(() =>
        adaptiveConcurrency({ algorithm: 'gradient2', gradient2: { rttTolerance: 0.9 } }),
      ).path,
    ).toBe('gradient2.rttTolerance');
    expect(
      configError(() =>
        adaptiveConcurrency({ algorithm: 'gradient2', gradient2: { longWindow: 1.5 } }),
      ).path,
    ).toBe('gradient2.longWindow');
    expect(configError(() => adaptiveConcurrency({ vegas: { alpha: 5, beta: 2 } })).path).toBe(
      'vegas.beta',
    );
    expect(configError(() => adaptiveConcurrency({ vegas: { probe: 1 } as never })).path).toBe(
      'vegas.probe',
    );
    expect(
      configError(() => adaptiveConcurrency({ algorithm: 'aimd', aimd: { backoffRatio: 1 } })).path,
    ).toBe('aimd.backoffRatio');
    expect(
      configError(() => adaptiveConcurrency({ algorithm: 'aimd', aimd: { timeoutMs: 'soon' } }))
        .path,
    ).toBe('aimd.timeoutMs');
    const wrong = configError(() => adaptiveConcurrency({ algorithm: 'aimd', vegas: {} }));
    expect(wrong.path).toBe('vegas');
    expect(wrong.message).toContain("algorithm is 'aimd'");
  });

  it('defaults: vegas, limits 20 within 1..200', () => {
    expect(adaptiveConcurrency().snapshot()).toMatchObject({
      algorithm: 'vegas',
      limit: 20,
      minLimit: 1,
      maxLimit: 200,
    });
    expect(adaptiveConcurrency({ algorithm: 'gradient2', minLimit: 50 }).limit).toBe(50);
  });
});
