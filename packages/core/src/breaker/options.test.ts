import { describe, expect, it } from '@jest/globals';
import { CircuitBreaker, type CircuitBreakerOptions } from './circuit-breaker';
import { fail, make, configError } from '../../test/breaker-helpers';

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
