import { afterEach, beforeEach, describe, expect, it, jest } from '@jest/globals';
import {
  MemoryBreakerStore,
  type BreakerLink,
  type BreakerStore,
  type ProbeClaim,
  type ProbeOutcome,
  type SharedBreaker,
  type SharedCircuitState,
  type SharedCommand,
} from './breaker-store';
import { CircuitBreaker, type CircuitBreakerOptions } from './circuit-breaker';
import {
  CircuitOpenError,
  isCircuitOpenError,
  isConfigError,
  isTimeoutError,
  type ConfigError,
} from '../errors';

class FakeClock {
  t = 1_000_000;
  now = (): number => this.t;
  advance(ms: number): void {
    this.t += ms;
  }
}

const boom = new Error('boom');
const ok = (): Promise<string> => Promise.resolve('ok');
const fail = (): Promise<never> => Promise.reject(boom);

function make(options: Partial<CircuitBreakerOptions> = {}, clock = new FakeClock()) {
  const breaker = new CircuitBreaker({ name: 'test', clock, ...options });
  return { breaker, clock };
}

async function failTimes(breaker: CircuitBreaker, n: number): Promise<void> {
  for (let i = 0; i < n; i++) await breaker.execute(fail).catch(() => undefined);
}

function configError(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (error) {
    if (isConfigError(error)) return error;
    throw error;
  }
  throw new Error('expected a ConfigError');
}

describe('CircuitBreaker options', () => {
  it.each([
    [{ name: '' }, 'name'],
    [{ name: 'x', failureThreshold: 0 }, 'failureThreshold'],
    [{ name: 'x', failureThreshold: 1.5 }, 'failureThreshold'],
    [{ name: 'x', failureRateThreshold: 0 }, 'failureRateThreshold'],
    [{ name: 'x', failureRateThreshold: 101 }, 'failureRateThreshold'],
    [{ name: 'x', slowCallDurationMs: 100 }, 'slowCallRateThreshold'],
    [{ name: 'x', slowCallRateThreshold: 50 }, 'slowCallDurationMs'],
    [{ name: 'x', window: { type: 'count', size: 0 } }, 'window.size'],
    [{ name: 'x', window: { type: 'sliding' } }, 'window.type'],
    [{ name: 'x', window: { type: 'time', durationMs: '10x' } }, 'window.durationMs'],
    [{ name: 'x', window: { type: 'time', durationMs: 1000, buckets: 0 } }, 'window.buckets'],
    [{ name: 'x', minimumCalls: 0 }, 'minimumCalls'],
    [{ name: 'x', openDurationMs: -1 }, 'openDurationMs'],
    [{ name: 'x', openDurationMs: 'soon' }, 'openDurationMs'],
    [{ name: 'x', backoff: { multiplier: 0.5 } }, 'backoff.multiplier'],
    [{ name: 'x', openDurationMs: 1000, backoff: { maxMs: 10 } }, 'backoff.maxMs'],
    [{ name: 'x', backoff: { resetAfter: 10 } }, 'backoff.resetAfter'],
    [{ name: 'x', halfOpen: { maxConcurrent: 0 } }, 'halfOpen.maxConcurrent'],
    [{ name: 'x', halfOpen: { successThreshold: -1 } }, 'halfOpen.successThreshold'],
    [{ name: 'x', halfOpen: { maxWaitMs: 0 } }, 'halfOpen.maxWaitMs'],
    [{ name: 'x', timeoutMs: 0 }, 'timeoutMs'],
    [{ name: 'x', timeoutMs: 2 ** 31 }, 'timeoutMs'],
    [{ name: 'x', isFailure: true }, 'isFailure'],
    [{ name: 'x', fallback: 'cached' }, 'fallback'],
    [{ name: 'x', clock: Date }, 'clock'],
    [{ name: 'x', failureTreshold: 3 }, 'failureTreshold'],
    [{ name: 'x', initialState: { state: 'ajar' } }, 'initialState.state'],
  ])('rejects %j naming %s', (options, path) => {
    const error = configError(
      () => new CircuitBreaker(options as unknown as CircuitBreakerOptions),
    );
    expect(error.path).toBe(path);
    expect(error.message).toContain(`"${path}"`);
    expect(error.message).toContain('CircuitBreaker');
  });

  it('accepts durations as strings', () => {
    const { breaker, clock } = make({ failureThreshold: 1, openDurationMs: '30s' });
    breaker.open();
    breaker.reset();
    void breaker.execute(fail).catch(() => undefined);
    return Promise.resolve().then(() => {
      expect(breaker.snapshot().nextAttemptAt).toBe(clock.t + 30_000);
    });
  });
});

describe('CircuitBreaker closed state', () => {
  it('passes results through and counts consecutive failures', async () => {
    const { breaker } = make({ failureThreshold: 3 });
    await expect(breaker.execute(ok)).resolves.toBe('ok');
    await failTimes(breaker, 2);
    expect(breaker.snapshot()).toMatchObject({ state: 'closed', consecutiveFailures: 2 });
    await breaker.execute(ok);
    expect(breaker.snapshot().consecutiveFailures).toBe(0);
  });

  it('opens after failureThreshold consecutive failures and rethrows the error unchanged', async () => {
    const { breaker } = make({ failureThreshold: 3 });
    const changes: unknown[] = [];
    breaker.on('stateChange', (change) => changes.push(change));
    await failTimes(breaker, 2);
    await expect(breaker.execute(fail)).rejects.toBe(boom);
    expect(breaker.state).toBe('open');
    expect(changes).toEqual([{ from: 'closed', to: 'open', reason: '3 consecutive failures' }]);
  });

  it('failureThreshold false turns the consecutive rule off', async () => {
    const { breaker } = make({ failureThreshold: false });
    await failTimes(breaker, 50);
    expect(breaker.state).toBe('closed');
  });

  it('opens on failure rate over a count window once minimumCalls is reached', async () => {
    const { breaker } = make({
      failureThreshold: false,
      failureRateThreshold: 50,
      minimumCalls: 4,
      window: { type: 'count', size: 4 },
    });
    await breaker.execute(ok);
    await failTimes(breaker, 1);
    await breaker.execute(ok);
    expect(breaker.state).toBe('closed'); // 1 of 3: below minimumCalls anyway
    await failTimes(breaker, 1); // 2 of 4 = 50 %
    expect(breaker.state).toBe('open');
  });

  it('a count window keeps only the last N calls', async () => {
    const { breaker } = make({
      failureThreshold: false,
      failureRateThreshold: 60,
      minimumCalls: 5,
      window: { type: 'count', size: 5 },
    });
    await failTimes(breaker, 2);
    for (let i = 0; i < 5; i++) await breaker.execute(ok);
    expect(breaker.snapshot()).toMatchObject({ calls: 5, failures: 0 });
    await failTimes(breaker, 2);
    expect(breaker.snapshot()).toMatchObject({ calls: 5, failures: 2, failureRate: 40 });
    expect(breaker.state).toBe('closed');
  });

  it('a time window forgets samples older than its duration, even after a long idle gap', async () => {
    const { breaker, clock } = make({
      failureThreshold: false,
      failureRateThreshold: 50,
      minimumCalls: 4,
      window: { type: 'time', durationMs: '10s', buckets: 10 },
    });
    await failTimes(breaker, 3);
    expect(breaker.snapshot()).toMatchObject({ calls: 3, failures: 3 });
    clock.advance(5_000);
    await breaker.execute(ok);
    expect(breaker.snapshot()).toMatchObject({ calls: 4, failures: 3, state: 'open' });
    breaker.reset();
    await failTimes(breaker, 3);
    clock.advance(10_000);
    expect(breaker.snapshot()).toMatchObject({ calls: 0, failures: 0 });
    clock.advance(3_600_000);
    await failTimes(breaker, 1);
    expect(breaker.snapshot()).toMatchObject({ calls: 1, failures: 1, state: 'closed' });
  });

  it('a time window drops buckets one by one as time passes', async () => {
    const { breaker, clock } = make({
      failureThreshold: false,
      window: { type: 'time', durationMs: 1000, buckets: 4 },
    });
    clock.t = 0;
    await failTimes(breaker, 1); // bucket 0
    clock.advance(250);
    await failTimes(breaker, 2); // bucket 1
    clock.advance(750); // bucket 4: bucket 0 has left the window
    expect(breaker.snapshot()).toMatchObject({ calls: 2 });
    clock.advance(250);
    expect(breaker.snapshot()).toMatchObject({ calls: 0 });
  });

  it('opens on slow-call rate', async () => {
    const clock = new FakeClock();
    const { breaker } = make(
      {
        failureThreshold: false,
        slowCallDurationMs: 100,
        slowCallRateThreshold: 50,
        minimumCalls: 2,
      },
      clock,
    );
    const slow = (): Promise<string> => {
      clock.advance(150);
      return Promise.resolve('late');
    };
    const slowCalls: number[] = [];
    breaker.on('slowCall', ({ durationMs }) => slowCalls.push(durationMs));
    await breaker.execute(ok);
    await expect(breaker.execute(slow)).resolves.toBe('late');
    expect(breaker.snapshot()).toMatchObject({ state: 'open', slowCalls: 1, slowCallRate: 50 });
    expect(slowCalls).toEqual([150]);
  });

  it('ignores errors isFailure rejects: neither failure nor success, no fallback', async () => {
    const notFound = new Error('404');
    const fallback = jest.fn(() => 'fallback');
    const { breaker } = make({ failureThreshold: 2, isFailure: (e) => e !== notFound, fallback });
    await failTimes(breaker, 1);
    await expect(breaker.execute(() => Promise.reject(notFound))).rejects.toBe(notFound);
    expect(breaker.snapshot()).toMatchObject({ consecutiveFailures: 1, calls: 1 });
    expect(fallback).toHaveBeenCalledTimes(1); // only for the real failure
  });

  it('counts results isResultFailure flags as failures and still returns them', async () => {
    const { breaker } = make({
      failureThreshold: 2,
      isResultFailure: (r) => (r as { status: number }).status >= 500,
    });
    await expect(breaker.execute(() => ({ status: 503 }))).resolves.toEqual({ status: 503 });
    await breaker.execute(() => ({ status: 502 }));
    expect(breaker.state).toBe('open');
  });

  it('treats a synchronous throw like a rejection', async () => {
    const { breaker } = make({ failureThreshold: 1 });
    await expect(
      breaker.execute(() => {
        throw boom;
      }),
    ).rejects.toBe(boom);
    expect(breaker.state).toBe('open');
  });
});

describe('CircuitBreaker open and half-open', () => {
  it('rejects at once while open with a CircuitOpenError naming the breaker', async () => {
    const { breaker, clock } = make({ failureThreshold: 1, openDurationMs: 60_000 });
    await failTimes(breaker, 1);
    clock.advance(15_000);
    const fn = jest.fn(ok);
    const error = await breaker.execute(fn).catch((e: unknown) => e);
    expect(fn).not.toHaveBeenCalled();
    expect(isCircuitOpenError(error)).toBe(true);
    expect(error).toMatchObject({ breaker: 'test', retryAfterMs: 45_000, code: 'ECIRCUITOPEN' });
  });

  it('moves to half-open lazily when the open time has passed, with no timer', async () => {
    jest.useFakeTimers();
    try {
      const { breaker, clock } = make({ failureThreshold: 1, openDurationMs: 1000 });
      await failTimes(breaker, 1);
      expect(jest.getTimerCount()).toBe(0);
      clock.advance(999);
      expect(breaker.state).toBe('open');
      clock.advance(1);
      expect(breaker.state).toBe('half_open');
    } finally {
      jest.useRealTimers();
    }
  });

  it('admits exactly maxConcurrent probes and rejects the rest at once', async () => {
    const { breaker, clock } = make({
      failureThreshold: 1,
      openDurationMs: 1000,
      halfOpen: { maxConcurrent: 2 },
    });
    await failTimes(breaker, 1);
    clock.advance(1000);
    const a = breaker.tryAcquire();
    const b = breaker.tryAcquire();
    expect(a).toBeDefined();
    expect(b).toBeDefined();
    expect(breaker.tryAcquire()).toBeUndefined();
    expect(breaker.snapshot().halfOpenProbes).toBe(2);
    a!.ignore();
    expect(breaker.tryAcquire()).toBeDefined();
  });

  it('closes after successThreshold probe successes and clears the window', async () => {
    const { breaker, clock } = make({
      failureThreshold: 2,
      openDurationMs: 1000,
      halfOpen: { successThreshold: 2 },
    });
    await failTimes(breaker, 2);
    clock.advance(1000);
    await breaker.execute(ok);
    expect(breaker.state).toBe('half_open');
    await breaker.execute(ok);
    expect(breaker.snapshot()).toMatchObject({
      state: 'closed',
      calls: 0,
      failures: 0,
      consecutiveFailures: 0,
    });
  });

  it('a failed probe reopens with the next backoff step, capped at maxMs', async () => {
    const { breaker, clock } = make({
      failureThreshold: 1,
      openDurationMs: '60s',
      backoff: { multiplier: 2, maxMs: '300s' },
    });
    await failTimes(breaker, 1);
    const openTimes: number[] = [];
    for (let i = 0; i < 5; i++) {
      const { nextAttemptAt, openedAt } = breaker.snapshot();
      openTimes.push(nextAttemptAt! - openedAt!);
      clock.t = nextAttemptAt!;
      await failTimes(breaker, 1);
    }
    expect(openTimes).toEqual([60_000, 120_000, 240_000, 300_000, 300_000]);
  });

  it('the backoff level decays once closed for resetAfterMs, and grows on a quick reopen', async () => {
    const { breaker, clock } = make({
      failureThreshold: 1,
      openDurationMs: 1000,
      backoff: { multiplier: 2, maxMs: 100_000, resetAfterMs: 10_000 },
    });
    await failTimes(breaker, 1); // level 0: 1 s
    clock.advance(1000);
    await failTimes(breaker, 1); // probe fails: level 1: 2 s
    clock.advance(2000);
    await breaker.execute(ok); // closes, level kept for now
    expect(breaker.snapshot()).toMatchObject({ state: 'closed', backoffLevel: 1 });
    clock.advance(5_000);
    await failTimes(breaker, 1); // reopened too soon: level 2: 4 s
    expect(breaker.snapshot()).toMatchObject({ backoffLevel: 2, retryAfterMs: 4000 });
    clock.advance(4000);
    await breaker.execute(ok);
    clock.advance(10_000);
    expect(breaker.snapshot().backoffLevel).toBe(0);
    await failTimes(breaker, 1);
    expect(breaker.snapshot()).toMatchObject({ backoffLevel: 0, retryAfterMs: 1000 });
  });

  it('without resetAfterMs the level returns to zero as soon as the circuit closes', async () => {
    const { breaker, clock } = make({
      failureThreshold: 1,
      openDurationMs: 1000,
      backoff: { multiplier: 3 },
    });
    await failTimes(breaker, 1);
    clock.advance(1000);
    await failTimes(breaker, 1);
    expect(breaker.snapshot().backoffLevel).toBe(1);
    clock.advance(3000);
    await breaker.execute(ok);
    expect(breaker.snapshot().backoffLevel).toBe(0);
  });

  it('maxWaitMs frees the permit of a probe that never settles', async () => {
    const { breaker, clock } = make({
      failureThreshold: 1,
      openDurationMs: 1000,
      halfOpen: { maxWaitMs: 5000 },
    });
    await failTimes(breaker, 1);
    clock.advance(1000);
    const stuck = breaker.tryAcquire();
    expect(stuck).toBeDefined();
    clock.advance(4999);
    expect(breaker.tryAcquire()).toBeUndefined();
    clock.advance(1);
    const fresh = breaker.tryAcquire();
    expect(fresh).toBeDefined();
    stuck!.failure(boom); // too late: its slot was given away, it changes nothing
    expect(breaker.state).toBe('half_open');
    fresh!.success();
    expect(breaker.state).toBe('closed');
  });

  it('a late outcome from a call admitted before a transition never reopens or extends the circuit', async () => {
    const { breaker, clock } = make({ failureThreshold: 2, openDurationMs: 1000 });
    const early = breaker.tryAcquire()!;
    await failTimes(breaker, 2);
    const { nextAttemptAt } = breaker.snapshot();
    early.failure(boom);
    expect(breaker.snapshot().nextAttemptAt).toBe(nextAttemptAt);
    clock.advance(1000);
    await breaker.execute(ok);
    expect(breaker.state).toBe('closed');
    const stale = breaker.tryAcquire()!;
    breaker.open();
    breaker.reset();
    stale.failure(boom);
    expect(breaker.snapshot().consecutiveFailures).toBe(0);
  });

  it('a permit settles once', async () => {
    const { breaker } = make({ failureThreshold: 2 });
    const permit = breaker.tryAcquire()!;
    permit.failure(boom);
    permit.failure(boom);
    permit.success();
    expect(breaker.snapshot()).toMatchObject({ state: 'closed', consecutiveFailures: 1, calls: 1 });
  });

  it('permit.failure(error) applies isFailure', () => {
    const { breaker } = make({ failureThreshold: 1, isFailure: (e) => e !== 'benign' });
    breaker.tryAcquire()!.failure('benign');
    expect(breaker.state).toBe('closed');
    breaker.tryAcquire()!.failure();
    expect(breaker.state).toBe('open');
  });
});

describe('CircuitBreaker operator actions', () => {
  it('open() forces the circuit open until reset()', async () => {
    const { breaker, clock } = make();
    breaker.open();
    clock.advance(10 * 3_600_000);
    expect(breaker.state).toBe('forced_open');
    await expect(breaker.execute(ok)).rejects.toBeInstanceOf(CircuitOpenError);
    breaker.reset();
    await expect(breaker.execute(ok)).resolves.toBe('ok');
  });

  it('openFor(ms) opens for exactly that long, then probes', async () => {
    const { breaker, clock } = make({ openDurationMs: 60_000 });
    breaker.openFor(7_000);
    expect(breaker.snapshot()).toMatchObject({ state: 'open', retryAfterMs: 7_000 });
    clock.advance(6_999);
    expect(breaker.tryAcquire()).toBeUndefined();
    clock.advance(1);
    expect(breaker.tryAcquire()).toBeDefined();
    expect(() => breaker.openFor(-1)).toThrow(/openFor/);
  });

  it('disable() admits everything, never trips, and still reports outcomes', async () => {
    const { breaker } = make({ failureThreshold: 1 });
    const failures: unknown[] = [];
    breaker.on('failure', ({ error }) => failures.push(error));
    breaker.disable();
    await failTimes(breaker, 5);
    expect(breaker.state).toBe('disabled');
    expect(failures).toHaveLength(5);
    breaker.reset();
    expect(breaker.state).toBe('closed');
  });

  it('reset() clears counters, window and backoff', async () => {
    const { breaker } = make({ failureThreshold: 3, backoff: { resetAfterMs: 1000 } });
    await failTimes(breaker, 2);
    breaker.reset();
    expect(breaker.snapshot()).toMatchObject({
      state: 'closed',
      consecutiveFailures: 0,
      calls: 0,
      backoffLevel: 0,
    });
  });
});

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

describe('CircuitBreaker events', () => {
  it('reports success and failure durations only to listeners, and listener errors never break a call', async () => {
    const clock = new FakeClock();
    const listenerErrors: unknown[] = [];
    const { breaker } = make({ onListenerError: (e) => listenerErrors.push(e) }, clock);
    const durations: number[] = [];
    const off = breaker.on('success', ({ durationMs }) => durations.push(durationMs));
    breaker.on('success', () => {
      throw new Error('listener bug');
    });
    await breaker.execute(() => {
      clock.advance(42);
      return 'x';
    });
    off();
    await breaker.execute(ok);
    expect(durations).toEqual([42]);
    expect(listenerErrors).toHaveLength(2);
  });

  it('emits rejected with the time left', async () => {
    const { breaker } = make({ failureThreshold: 1, openDurationMs: 5000 });
    const rejected: unknown[] = [];
    breaker.on('rejected', (e) => rejected.push(e));
    await failTimes(breaker, 1);
    expect(breaker.tryAcquire()).toBeUndefined();
    await breaker.execute(ok).catch(() => undefined);
    expect(rejected).toEqual([{ retryAfterMs: 5000 }, { retryAfterMs: 5000 }]);
  });

  it('the unsubscribe function removes only its listener', async () => {
    const { breaker } = make({ failureThreshold: 1 });
    const a: string[] = [];
    const offA = breaker.on('stateChange', ({ to }) => a.push(`a:${to}`));
    breaker.on('stateChange', ({ to }) => a.push(`b:${to}`));
    offA();
    offA();
    breaker.open();
    expect(a).toEqual(['b:forced_open']);
  });
});

describe('CircuitBreaker snapshot and state transfer', () => {
  it('snapshot() is plain JSON', async () => {
    const { breaker, clock } = make({ failureThreshold: 2, openDurationMs: 10_000 });
    await breaker.execute(ok);
    await failTimes(breaker, 2);
    const snapshot = breaker.snapshot();
    expect(JSON.parse(JSON.stringify(snapshot))).toEqual(snapshot);
    expect(snapshot).toEqual({
      name: 'test',
      state: 'open',
      consecutiveFailures: 2,
      failureRate: (2 * 100) / 3,
      slowCallRate: 0,
      calls: 3,
      failures: 2,
      slowCalls: 0,
      halfOpenProbes: 0,
      openedAt: clock.t,
      nextAttemptAt: clock.t + 10_000,
      retryAfterMs: 10_000,
      backoffLevel: 0,
    });
  });

  it('toJSON() and initialState carry an open circuit across a cold start', async () => {
    const clock = new FakeClock();
    const { breaker } = make({ failureThreshold: 1, openDurationMs: 30_000 }, clock);
    await failTimes(breaker, 1);
    const saved = JSON.parse(JSON.stringify(breaker)) as ReturnType<CircuitBreaker['toJSON']>;
    clock.advance(10_000);
    const { breaker: revived } = make(
      { failureThreshold: 1, openDurationMs: 30_000, initialState: saved },
      clock,
    );
    expect(revived.snapshot()).toMatchObject({ state: 'open', retryAfterMs: 20_000 });
    clock.advance(20_000);
    expect(revived.state).toBe('half_open');
  });

  it('a restored half-open circuit probes at once', () => {
    const clock = new FakeClock();
    const { breaker } = make(
      {
        initialState: {
          name: 'test',
          state: 'half_open',
          consecutiveFailures: 0,
          openedAt: 1,
          nextAttemptAt: 2,
          backoffLevel: 0,
          closedAt: null,
        },
      },
      clock,
    );
    expect(breaker.tryAcquire()).toBeDefined();
    expect(breaker.state).toBe('half_open');
  });
});

describe('CircuitBreaker logger', () => {
  it('logs one line per transition and listener errors, and survives a throwing logger', async () => {
    const lines: string[] = [];
    const logger = {
      info: (m: string) => lines.push(`info ${m}`),
      warn: (m: string) => lines.push(`warn ${m}`),
      error: (m: string) => lines.push(`error ${m}`),
    };
    const { breaker, clock } = make({
      name: 'plant-id',
      failureThreshold: 3,
      openDurationMs: 1000,
      logger,
    });
    breaker.on('failure', () => {
      throw new TypeError('bad listener');
    });
    await failTimes(breaker, 3);
    clock.advance(1000);
    await breaker.execute(ok);
    expect(lines).toEqual([
      'error [CIRCUIT] plant-id: a failure listener threw: TypeError: bad listener',
      'error [CIRCUIT] plant-id: a failure listener threw: TypeError: bad listener',
      'error [CIRCUIT] plant-id: a failure listener threw: TypeError: bad listener',
      'warn [CIRCUIT] plant-id closed -> open (3 consecutive failures)',
      'info [CIRCUIT] plant-id open -> half_open (open time elapsed)',
      'info [CIRCUIT] plant-id half_open -> closed (1 probe success)',
    ]);
    const throwing = {
      info: () => {
        throw new Error('disk full');
      },
      warn: () => {
        throw new Error('disk full');
      },
      error: () => undefined,
    };
    const { breaker: other } = make({ failureThreshold: 1, logger: throwing });
    await expect(other.execute(fail)).rejects.toBe(boom);
    expect(other.state).toBe('open');
    expect(() => make({ logger: { info: () => undefined } as never })).toThrow(/"logger"/);
  });

  it('is silent by default: no listener is attached', () => {
    const { breaker } = make();
    expect((breaker as unknown as { listeners: unknown }).listeners).toBeUndefined();
  });
});

/** A shared store that records what breakers ask of it and answers as a test tells it to. */
class FakeLink implements BreakerLink {
  available = true;
  claiming = 0;
  records: Array<[failure: boolean, slow: boolean]> = [];
  flushes = 0;
  claims: number[] = [];
  ahead = 0;
  parked: number[] = [];
  settled: Array<[ticket: number, outcome: ProbeOutcome]> = [];
  commands: Array<[SharedCommand, number, string]> = [];
  blocked = false;
  answer: ProbeClaim = 'granted';
  private granted = new Set<number>();

  constructor(readonly breaker: SharedBreaker) {}

  record(failure: boolean, slow: boolean): void {
    this.records.push([failure, slow]);
  }
  flushSoon(): void {
    this.flushes++;
  }
  mayClaim(): boolean {
    return !this.blocked;
  }
  claimProbe(ticket: number): Promise<ProbeClaim> {
    this.claims.push(ticket);
    this.claiming++;
    return Promise.resolve().then(() => {
      this.claiming--;
      if (this.answer === 'granted') this.granted.add(ticket);
      return this.answer;
    });
  }
  claimAhead(): void {
    this.ahead++;
  }
  takeParked(ticket: number): boolean {
    if (this.parked.length === 0) return false;
    this.parked.pop();
    this.granted.add(ticket);
    return true;
  }
  settleProbe(ticket: number, outcome: ProbeOutcome): boolean {
    if (!this.granted.delete(ticket)) return false;
    this.settled.push([ticket, outcome]);
    return true;
  }
  command(state: SharedCommand, openForMs: number, reason: string): void {
    this.commands.push([state, openForMs, reason]);
  }
  /** The shared circuit changed (as a published transition would say). */
  follow(state: Partial<SharedCircuitState> & Pick<SharedCircuitState, 'state'>): void {
    this.breaker.follow({
      generation: 1,
      retryAfterMs: 0,
      openedAgoMs: null,
      closedAgoMs: null,
      backoffLevel: 0,
      reason: 'elsewhere (cluster)',
      ...state,
    });
  }
}

class FakeStore implements BreakerStore {
  readonly shared = true;
  links: FakeLink[] = [];
  connect(breaker: SharedBreaker): FakeLink {
    const link = new FakeLink(breaker);
    this.links.push(link);
    return link;
  }
}

function shared(options: Partial<CircuitBreakerOptions> = {}, clock = new FakeClock()) {
  const store = new FakeStore();
  const breaker = new CircuitBreaker({ name: 'shared', clock, store, ...options });
  const link = store.links[0]!;
  return { breaker, clock, store, link };
}

describe('CircuitBreaker with a breaker store', () => {
  it.each([
    [{ store: {} }, 'store'],
    [{ store: { shared: true } }, 'store'],
    [{ store: new MemoryBreakerStore(), scope: 'global' }, 'scope'],
    [{ store: new MemoryBreakerStore(), scope: 'shared' }, 'scope'],
    [{ scope: 'shared' }, 'scope'],
  ])('rejects %j naming %s', (options, path) => {
    const error = configError(
      () => new CircuitBreaker({ name: 'x', ...options } as unknown as CircuitBreakerOptions),
    );
    expect(error.path).toBe(path);
  });

  it('the memory store (the default) adds nothing to a breaker', async () => {
    const store = new MemoryBreakerStore();
    expect(store.shared).toBe(false);
    expect(store.connect()).toBeUndefined();
    const { breaker } = make({ store, failureThreshold: 2 });
    expect((breaker as unknown as { link: unknown }).link).toBeUndefined();
    await failTimes(breaker, 2);
    expect(breaker.state).toBe('open');
  });

  it('connects once in shared scope with the resolved settings, never in local scope', () => {
    const { store, link } = shared({
      failureThreshold: false,
      failureRateThreshold: 50,
      window: { type: 'time', durationMs: '30s', buckets: 6 },
      openDurationMs: '10s',
      backoff: { multiplier: 2, maxMs: '40s' },
      halfOpen: { maxConcurrent: 3, successThreshold: 2, maxWaitMs: 500 },
    });
    expect(store.links).toHaveLength(1);
    expect(link.breaker.name).toBe('shared');
    expect(link.breaker.settings).toEqual({
      failureThreshold: 0,
      failureRateThreshold: 50,
      slowCallRateThreshold: 0,
      minimumCalls: 10,
      window: { type: 'time', durationMs: 30_000, buckets: 6 },
      openDurationMs: 10_000,
      backoffMultiplier: 2,
      backoffMaxMs: 40_000,
      backoffResetAfterMs: 0,
      maxBackoffLevel: 2,
      halfOpenMaxConcurrent: 3,
      halfOpenSuccessThreshold: 2,
      halfOpenMaxWaitMs: 500,
    });
    const local = new FakeStore();
    new CircuitBreaker({ name: 'x', store: local, scope: 'local' });
    expect(local.links).toHaveLength(0);
  });

  it('reports closed outcomes to the store and lets the shared circuit decide', async () => {
    const { breaker, link } = shared({ failureThreshold: 2 });
    await breaker.execute(ok);
    await failTimes(breaker, 3);
    await breaker.execute(() => Promise.reject(boom), undefined).catch(() => undefined);
    expect(link.records).toEqual([
      [false, false],
      [true, false],
      [true, false],
      [true, false],
      [true, false],
    ]);
    // The local counts could open the circuit: they hurry to the store instead.
    expect(breaker.state).toBe('closed');
    expect(link.flushes).toBe(3);
    link.follow({ state: 'open', retryAfterMs: 5_000, openedAgoMs: 10, reason: 'x (cluster)' });
    expect(breaker.state).toBe('open');
    expect(breaker.retryAfterMs).toBe(5_000);
    expect(breaker.snapshot().openedAt).toBe(breaker.snapshot().nextAttemptAt! - 5_010);
  });

  it('trips on its own counts while the store is unreachable', async () => {
    const { breaker, link } = shared({ failureThreshold: 2 });
    link.available = false;
    await failTimes(breaker, 2);
    expect(breaker.state).toBe('open');
    expect(link.flushes).toBe(0);
  });

  it('follows the shared state, emitting stateChange only when the state changes', () => {
    const { breaker, link, clock } = shared();
    const changes: string[] = [];
    breaker.on('stateChange', ({ from, to, reason }) => changes.push(`${from}>${to}: ${reason}`));
    link.follow({ state: 'closed', generation: 2 });
    link.follow({ state: 'forced_open', generation: 3, openedAgoMs: 0, reason: 'forced open' });
    link.follow({ state: 'forced_open', generation: 3, openedAgoMs: 0 });
    link.follow({ state: 'open', generation: 4, retryAfterMs: 100, backoffLevel: 0 });
    clock.advance(100);
    expect(breaker.state).toBe('half_open');
    // The shared circuit is "open and due": the same as a local half-open.
    link.follow({ state: 'open', generation: 4, retryAfterMs: 0 });
    link.follow({
      state: 'closed',
      generation: 5,
      closedAgoMs: 0,
      reason: '1 probe success (cluster)',
    });
    expect(changes).toEqual([
      'closed>forced_open: forced open',
      'forced_open>open: elsewhere (cluster)',
      'open>half_open: open time elapsed',
      'half_open>closed: 1 probe success (cluster)',
    ]);
  });

  it('execute() waits for a shared probe permit and settles through the store', async () => {
    const { breaker, link } = shared({ halfOpen: { maxConcurrent: 2 } });
    link.follow({ state: 'open', retryAfterMs: 0 });
    const fn = jest.fn(ok);
    await expect(breaker.execute(fn)).resolves.toBe('ok');
    expect(fn).toHaveBeenCalledTimes(1);
    expect(link.claims).toHaveLength(1);
    expect(link.settled).toEqual([[link.claims[0], 'success']]);
    // The store decides: a probe success alone does not close the circuit here.
    expect(breaker.state).toBe('half_open');

    link.answer = 'refused';
    const refused = await breaker.execute(fn).catch((e: unknown) => e);
    expect(isCircuitOpenError(refused)).toBe(true);
    expect(fn).toHaveBeenCalledTimes(1);
  });

  it('never claims more permits than halfOpen.maxConcurrent from one process', async () => {
    const { breaker, link } = shared({ halfOpen: { maxConcurrent: 2 } });
    link.follow({ state: 'open', retryAfterMs: 0 });
    const calls = Array.from({ length: 10 }, () =>
      breaker.execute(() => new Promise<string>(() => {})).catch((e: unknown) => e),
    );
    const rejected = await Promise.race([
      Promise.all(calls.slice(2)),
      new Promise((r) => setTimeout(r, 100)),
    ]);
    expect(link.claims).toHaveLength(2);
    expect((rejected as unknown[]).every(isCircuitOpenError)).toBe(true);
    expect(breaker.snapshot().halfOpenProbes).toBe(2);
  });

  it('a probe answered locally (store too slow) follows the local rules once the store is gone', async () => {
    const { breaker, link } = shared();
    link.follow({ state: 'open', retryAfterMs: 0 });
    link.answer = 'local';
    link.available = true;
    const running = breaker.execute(ok);
    link.available = false;
    await expect(running).resolves.toBe('ok');
    expect(link.settled).toEqual([]);
    expect(breaker.state).toBe('closed');
  });

  it('tryAcquire() claims ahead and returns undefined, then hands out the parked permit', () => {
    const { breaker, link } = shared();
    link.follow({ state: 'open', retryAfterMs: 0 });
    const rejected: number[] = [];
    breaker.on('rejected', ({ retryAfterMs }) => rejected.push(retryAfterMs));
    expect(breaker.tryAcquire()).toBeUndefined();
    expect(link.ahead).toBe(1);
    expect(rejected).toEqual([0]);
    link.parked.push(1);
    const permit = breaker.tryAcquire();
    expect(permit).toBeDefined();
    permit!.failure(boom);
    expect(link.settled).toHaveLength(1);
    expect(link.settled[0]![1]).toBe('failure');
    // Right after a refusal the breaker does not ask again.
    link.blocked = true;
    expect(breaker.tryAcquire()).toBeUndefined();
    expect(link.ahead).toBe(1);
  });

  it('sends operator actions to the store after applying them locally', () => {
    const { breaker, link } = shared();
    breaker.open();
    expect(breaker.state).toBe('forced_open');
    breaker.openFor(1_500);
    breaker.disable();
    breaker.reset();
    expect(link.commands).toEqual([
      ['forced_open', 0, 'forced open'],
      ['open', 1_500, 'opened for 1500 ms'],
      ['disabled', 0, 'disabled'],
      ['closed', 0, 'reset'],
    ]);
  });
});

describe('CircuitBreaker totals', () => {
  it('counts every outcome without listeners or clock reads', async () => {
    jest.useFakeTimers();
    try {
      let reads = 0;
      const clock = { now: () => (reads++, 1_000) };
      const breaker = new CircuitBreaker({
        name: 'totals',
        clock,
        failureThreshold: 3,
        timeoutMs: 50,
        isFailure: (e) => e !== 'benign',
      });
      await breaker.execute(ok);
      await breaker.execute(() => Promise.reject('benign')).catch(() => undefined);
      await breaker.execute(fail).catch(() => undefined);
      const slow = breaker.execute(() => new Promise(() => undefined)).catch(() => undefined);
      await jest.advanceTimersByTimeAsync(50);
      await slow;
      breaker.tryAcquire()!.failure(boom);
      expect(breaker.state).toBe('open');
      await breaker.execute(ok).catch(() => undefined);
      expect(breaker.tryAcquire()).toBeUndefined();
      expect(breaker.totals()).toEqual({
        successes: 1,
        failures: 3,
        timeouts: 1,
        rejected: 2,
        ignored: 1,
      });
      const readsBefore = reads;
      breaker.reset();
      await breaker.execute(ok);
      expect(reads - readsBefore).toBe(1); // the reset's transition time only; the call reads nothing
    } finally {
      jest.useRealTimers();
    }
  });
});
