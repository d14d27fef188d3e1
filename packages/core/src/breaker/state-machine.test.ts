import { describe, expect, it, jest } from '@jest/globals';
import { CircuitOpenError, isCircuitOpenError } from '../errors';
import { FakeClock, boom, ok, fail, make, failTimes } from '../../test/breaker-helpers';

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
