import { describe, expect, it, jest } from '@jest/globals';
import { CircuitBreaker } from './circuit-breaker';
import { FakeClock, boom, ok, fail, make, failTimes } from '../../test/breaker-helpers';

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
