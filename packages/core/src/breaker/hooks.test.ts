import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { CircuitBreaker } from './circuit-breaker';
import type { CircuitBreakerOptions } from './options';
import { isCircuitOpenError } from '../errors';
import { FakeClock, boom, ok } from '../../test/breaker-helpers';

/** `isFailure: (e) => e.response.status >= 500` meeting a network error with no `response`. */
const readsResponse = (error: unknown): boolean =>
  (error as { response: { status: number } }).response.status >= 500;

const unhandled: unknown[] = [];
const onUnhandled = (reason: unknown): void => {
  unhandled.push(reason);
};
beforeEach(() => {
  unhandled.length = 0;
  process.on('unhandledRejection', onUnhandled);
});
afterEach(async () => {
  // Let rejected promises of listeners and loggers surface before checking.
  await new Promise((resolve) => setImmediate(resolve));
  process.off('unhandledRejection', onUnhandled);
  expect(unhandled).toEqual([]);
});

function setup(options: Partial<CircuitBreakerOptions> = {}) {
  const clock = new FakeClock();
  const hookErrors: Array<[string, string]> = [];
  const breaker = new CircuitBreaker({
    name: 'hooks',
    clock,
    failureThreshold: 2,
    openDurationMs: 1_000,
    onListenerError: (error, hook) => hookErrors.push([hook, (error as Error).message]),
    ...options,
  });
  return { breaker, clock, hookErrors };
}

async function toHalfOpen(breaker: CircuitBreaker, clock: FakeClock): Promise<void> {
  breaker.open();
  breaker.reset();
  breaker.openFor(1_000);
  clock.advance(1_000);
  expect(breaker.state).toBe('half_open');
  await Promise.resolve();
}

describe('hooks that throw never break a circuit', () => {
  it('isFailure throwing while closed counts the failure and reports the hook error', async () => {
    const { breaker, hookErrors } = setup({ isFailure: readsResponse });
    for (let i = 0; i < 2; i++) {
      await expect(breaker.execute(() => Promise.reject(boom))).rejects.toBe(boom);
    }
    expect(breaker.state).toBe('open');
    expect(hookErrors.map(([hook]) => hook)).toEqual(['isFailure', 'isFailure']);
  });

  it('isFailure throwing while a probe settles reopens the circuit: the permit is never left held', async () => {
    const { breaker, clock } = setup({ isFailure: readsResponse });
    await toHalfOpen(breaker, clock);
    await expect(breaker.execute(() => Promise.reject(boom))).rejects.toBe(boom);
    expect(breaker.state).toBe('open');
    clock.advance(1_000);
    await expect(breaker.execute(ok)).resolves.toBe('ok');
    expect(breaker.state).toBe('closed');
  });

  it('permit.failure(err) with a throwing isFailure settles the probe as a failure', async () => {
    const { breaker, clock, hookErrors } = setup({ isFailure: readsResponse });
    await toHalfOpen(breaker, clock);
    const permit = breaker.tryAcquire();
    expect(permit).toBeDefined();
    expect(() => permit!.failure(boom)).not.toThrow();
    expect(breaker.state).toBe('open');
    expect(hookErrors).toEqual([['isFailure', expect.stringContaining('status')]]);
    clock.advance(1_000);
    expect(breaker.tryAcquire()).toBeDefined();
  });

  it('isResultFailure throwing counts a failure while closed and on a probe, and still returns the value', async () => {
    const { breaker, clock, hookErrors } = setup({
      isResultFailure: (value) => (value as { body: { error: boolean } }).body.error,
    });
    await expect(breaker.execute(() => 'plain')).resolves.toBe('plain');
    await expect(breaker.execute(() => 'plain')).resolves.toBe('plain');
    expect(breaker.state).toBe('open');
    clock.advance(1_000);
    await expect(breaker.execute(() => 'plain')).resolves.toBe('plain');
    expect(breaker.state).toBe('open');
    expect(hookErrors.every(([hook]) => hook === 'isResultFailure')).toBe(true);
    expect(hookErrors).toHaveLength(3);
  });

  it('a fallback that throws or rejects rejects the call with its error and frees the probe', async () => {
    const thrown = new Error('fallback failed');
    for (const fallback of [
      () => {
        throw thrown;
      },
      () => Promise.reject(thrown),
    ]) {
      const { breaker, clock, hookErrors } = setup({ fallback, failureThreshold: 1 });
      // Closed: the call fails, then its fallback.
      await expect(breaker.execute(() => Promise.reject(boom))).rejects.toBe(thrown);
      expect(breaker.state).toBe('open');
      // Open: the rejection's fallback.
      await expect(breaker.execute(ok)).rejects.toBe(thrown);
      // Half-open: the probe failed and its fallback failed; the circuit is open again, not stuck.
      clock.advance(1_000);
      await expect(breaker.execute(() => Promise.reject(boom))).rejects.toBe(thrown);
      expect(breaker.state).toBe('open');
      clock.advance(2_000);
      await expect(breaker.execute(ok)).resolves.toBe('ok');
      expect(breaker.state).toBe('closed');
      expect(hookErrors.filter(([hook]) => hook === 'fallback')).toHaveLength(3);
    }
  });

  it('listeners that throw or reject, sync or async, in every event, change nothing', async () => {
    const { breaker, clock, hookErrors } = setup({
      slowCallDurationMs: 1,
      slowCallRateThreshold: 100,
    });
    const events = [
      'stateChange',
      'success',
      'failure',
      'ignored',
      'rejected',
      'timeout',
      'slowCall',
    ] as const;
    for (const event of events) {
      breaker.on(event, () => {
        throw new Error(`sync ${event}`);
      });
      // eslint-disable-next-line @typescript-eslint/no-misused-promises -- what users write
      breaker.on(event, async () => {
        await Promise.resolve();
        throw new Error(`async ${event}`);
      });
    }
    await breaker.execute(ok);
    await breaker.execute(() => Promise.reject(boom)).catch(() => undefined);
    await breaker.execute(() => Promise.reject(boom)).catch(() => undefined);
    expect(breaker.state).toBe('open');
    await breaker.execute(ok).catch(() => undefined);
    clock.advance(1_000);
    await expect(breaker.execute(ok)).resolves.toBe('ok');
    expect(breaker.state).toBe('closed');
    await new Promise((resolve) => setImmediate(resolve));
    const reported = new Set(hookErrors.map(([hook]) => hook));
    for (const event of ['stateChange', 'success', 'failure', 'rejected']) {
      expect(reported.has(event)).toBe(true);
    }
    expect(hookErrors.some(([, message]) => message.startsWith('async'))).toBe(true);
  });

  it('a logger that throws or rejects, and an onListenerError that throws, change nothing', async () => {
    const logger = {
      info: () => {
        throw new Error('info');
      },
      warn: () => Promise.reject(new Error('warn')) as unknown as void,
      error: () => {
        throw new Error('error');
      },
    };
    const clock = new FakeClock();
    const breaker = new CircuitBreaker({
      name: 'logged',
      clock,
      failureThreshold: 1,
      openDurationMs: 1_000,
      logger,
      isFailure: readsResponse,
    });
    breaker.on('failure', () => {
      throw new Error('listener');
    });
    const throwing = new CircuitBreaker({
      name: 'throwing-hook',
      onListenerError: () => {
        throw new Error('hook of hooks');
      },
      isFailure: readsResponse,
      failureThreshold: 1,
    });
    await expect(breaker.execute(() => Promise.reject(boom))).rejects.toBe(boom);
    expect(breaker.state).toBe('open');
    clock.advance(1_000);
    await expect(breaker.execute(ok)).resolves.toBe('ok');
    await expect(throwing.execute(() => Promise.reject(boom))).rejects.toBe(boom);
    expect(throwing.state).toBe('open');
    expect(isCircuitOpenError(await throwing.execute(ok).catch((e: unknown) => e))).toBe(true);
  });
});

describe('openFor is bounded by maxOpenMs', () => {
  it('clamps a huge or infinite time to 24 h by default, answered in whole milliseconds', () => {
    const { breaker } = setup();
    breaker.openFor(1e300);
    expect(breaker.retryAfterMs).toBe(86_400_000);
    breaker.openFor(Infinity);
    expect(breaker.retryAfterMs).toBe(86_400_000);
    breaker.openFor(1_500.4);
    expect(breaker.retryAfterMs).toBe(1_500);
  });

  it('honours a configured maxOpenMs and still refuses NaN and negative times', () => {
    const { breaker } = setup({ maxOpenMs: '1h' });
    breaker.openFor(10 * 3_600_000);
    expect(breaker.retryAfterMs).toBe(3_600_000);
    expect(() => breaker.openFor(Number.NaN)).toThrow(/openFor\(ms\)/);
    expect(() => breaker.openFor(-1)).toThrow(/openFor\(ms\)/);
    expect(() => new CircuitBreaker({ name: 'x', maxOpenMs: 0 })).toThrow(/maxOpenMs/);
  });
});
