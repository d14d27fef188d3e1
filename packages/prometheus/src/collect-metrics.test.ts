import { afterEach, beforeEach, describe, expect, it, jest } from '@jest/globals';
import {
  CircuitBreaker,
  CircuitBreakerRegistry,
  ConfigError,
  RateLimiter,
  type RateLimitDecision,
  type RateLimitStore,
} from '@breakwater/core';
import { Registry, register as defaultRegister, type OpenMetricsContentType } from 'prom-client';
import { family, sampleKey, scrape, type Samples } from '../test/exposition';
import { collectMetrics, type CollectMetricsOptions, type MetricsCollector } from './index';

class Ignored extends Error {}

const STATES = ['closed', 'open', 'half_open', 'forced_open', 'disabled'] as const;
const OUTCOMES = ['success', 'failure', 'timeout', 'rejected', 'ignored'] as const;
const BOUNDS = ['0.005', '0.01', '0.025', '0.05', '0.1', '0.25', '0.5', '1', '2.5', '5', '10'];

/** A store that looks remote (no `local` flag) and always fails. */
function failingStore(): RateLimitStore & { calls: number } {
  return {
    calls: 0,
    consume(): Promise<RateLimitDecision> {
      this.calls++;
      return Promise.reject(new Error('connection refused'));
    },
    reset: () => Promise.resolve(),
  };
}

/** Runs one call whose work takes `ms` of fake time and ends as `end`; returns its error. */
async function call(
  breaker: CircuitBreaker,
  ms: number,
  end: 'ok' | 'fail' | 'ignore' | 'hang' = 'ok',
): Promise<unknown> {
  const result = breaker
    .execute(
      () =>
        new Promise((resolve, reject) => {
          if (end === 'hang') return;
          setTimeout(() => {
            if (end === 'ok') resolve('ok');
            else reject(end === 'fail' ? new Error('upstream 500') : new Ignored('client gone'));
          }, ms);
        }),
    )
    .then(
      () => undefined,
      (error: unknown) => error,
    );
  await jest.advanceTimersByTimeAsync(ms);
  return result;
}

function stateSamples(breaker: string, current: string): Record<string, number> {
  const result: Record<string, number> = {};
  for (const state of STATES) {
    result[sampleKey('breakwater_circuit_state', { breaker, state })] = state === current ? 1 : 0;
  }
  return result;
}

function callSamples(
  breaker: string,
  counts: Partial<Record<(typeof OUTCOMES)[number], number>>,
): Record<string, number> {
  const result: Record<string, number> = {};
  for (const outcome of OUTCOMES) {
    result[sampleKey('breakwater_calls_total', { breaker, outcome })] = counts[outcome] ?? 0;
  }
  return result;
}

/** Expected `_bucket` samples from per-observation durations in seconds. */
function bucketSamples(
  breaker: string,
  outcome: string,
  seconds: number[],
  bounds = BOUNDS,
): Record<string, number> {
  const result: Record<string, number> = {};
  for (const le of [...bounds, '+Inf']) {
    const limit = le === '+Inf' ? Infinity : Number(le);
    result[sampleKey('breakwater_call_duration_seconds_bucket', { breaker, outcome, le })] =
      seconds.filter((s) => s <= limit).length;
  }
  return result;
}

/** Expected transition samples: the automatic transitions from 0, plus `counts` ('from>to'). */
function transitionSamples(
  breaker: string,
  counts: Record<string, number> = {},
): Record<string, number> {
  const all: Record<string, number> = {
    'closed>open': 0,
    'open>half_open': 0,
    'half_open>open': 0,
    'half_open>closed': 0,
    ...counts,
  };
  const result: Record<string, number> = {};
  for (const [pair, n] of Object.entries(all)) {
    const [from, to] = pair.split('>') as [string, string];
    result[sampleKey('breakwater_state_transitions_total', { breaker, from, to })] = n;
  }
  return result;
}

function sumOf(seconds: number[]): number {
  return seconds.reduce((sum, s) => sum + s, 0);
}

const collectors: MetricsCollector[] = [];
function collect(
  registry: CircuitBreakerRegistry,
  options: CollectMetricsOptions = {},
): MetricsCollector {
  const collector = collectMetrics(registry, options);
  collectors.push(collector);
  return collector;
}

beforeEach(() => {
  jest.useFakeTimers({ now: 1_000_000 });
});

afterEach(() => {
  for (const collector of collectors.splice(0)) collector.stop();
  jest.useRealTimers();
});

function openMetricsRegistry(): Registry<OpenMetricsContentType> {
  const register = new Registry<OpenMetricsContentType>();
  register.setContentType(Registry.OPENMETRICS_CONTENT_TYPE);
  return register;
}

describe('collectMetrics without durations', () => {
  it("counts calls from the breakers' totals, with no listener on the call path", async () => {
    const register = new Registry();
    const registry = new CircuitBreakerRegistry();
    const breaker = registry.get('db', {
      failureThreshold: 2,
      timeoutMs: 1_000,
      isFailure: (error) => !(error instanceof Ignored),
    });
    const collector = collect(registry, { register, durations: false });
    expect(collector.metricNames).not.toContain('breakwater_call_duration_seconds');
    expect((breaker as unknown as { calls: { timed: boolean } }).calls.timed).toBe(false);

    await call(breaker, 3);
    await call(breaker, 5, 'ignore');
    await call(breaker, 1_000, 'hang');
    await call(breaker, 2, 'fail');
    await call(breaker, 1);
    const samples = await scrape(register);
    expect(family(samples, 'breakwater_calls_total')).toEqual(
      callSamples('db', { success: 1, failure: 1, timeout: 1, rejected: 1, ignored: 1 }),
    );
    expect(family(samples, 'breakwater_call_duration_seconds_count')).toEqual({});
    expect(family(samples, 'breakwater_state_transitions_total')).toEqual(
      transitionSamples('db', { 'closed>open': 1 }),
    );
    expect(() =>
      collectMetrics(registry, { register: new Registry(), durations: 'no' } as never),
    ).toThrow(/durations/);
  });
});

describe('collectMetrics after scripted traffic', () => {
  it('exports exact states, calls, durations and transitions of every breaker', async () => {
    const register = new Registry();
    const registry = new CircuitBreakerRegistry();
    const name = 'GET /plants/:id "identify"';
    const breaker = registry.get(name, {
      failureThreshold: 2,
      openDurationMs: 10_000,
      timeoutMs: 1_000,
      isFailure: (error) => !(error instanceof Ignored),
    });
    collect(registry, { register });

    let samples = await scrape(register);
    expect(family(samples, 'breakwater_circuit_state')).toEqual(stateSamples(name, 'closed'));
    expect(family(samples, 'breakwater_calls_total')).toEqual(callSamples(name, {}));
    expect(family(samples, 'breakwater_state_transitions_total')).toEqual(transitionSamples(name));

    await call(breaker, 3);
    await call(breaker, 20);
    await call(breaker, 5, 'ignore');
    await call(breaker, 40, 'fail');
    await call(breaker, 300);
    await call(breaker, 40, 'fail');
    expect(await call(breaker, 1_000, 'hang')).toMatchObject({ code: 'ETIMEDOUT' });
    expect(breaker.state).toBe('open');
    expect(await call(breaker, 0)).toMatchObject({ code: 'ECIRCUITOPEN' });
    expect(await call(breaker, 0)).toMatchObject({ code: 'ECIRCUITOPEN' });

    samples = await scrape(register);
    expect(family(samples, 'breakwater_circuit_state')).toEqual(stateSamples(name, 'open'));
    expect(family(samples, 'breakwater_calls_total')).toEqual(
      callSamples(name, { success: 3, failure: 2, timeout: 1, rejected: 2, ignored: 1 }),
    );
    expect(family(samples, 'breakwater_call_duration_seconds_bucket')).toEqual({
      ...bucketSamples(name, 'success', [0.003, 0.02, 0.3]),
      ...bucketSamples(name, 'failure', [0.04, 0.04]),
      ...bucketSamples(name, 'timeout', [1]),
    });
    expect(family(samples, 'breakwater_call_duration_seconds_sum')).toEqual({
      [sampleKey('breakwater_call_duration_seconds_sum', { breaker: name, outcome: 'success' })]:
        sumOf([0.003, 0.02, 0.3]),
      [sampleKey('breakwater_call_duration_seconds_sum', { breaker: name, outcome: 'failure' })]:
        sumOf([0.04, 0.04]),
      [sampleKey('breakwater_call_duration_seconds_sum', { breaker: name, outcome: 'timeout' })]: 1,
    });
    expect(family(samples, 'breakwater_call_duration_seconds_count')).toEqual({
      [sampleKey('breakwater_call_duration_seconds_count', { breaker: name, outcome: 'success' })]:
        3,
      [sampleKey('breakwater_call_duration_seconds_count', { breaker: name, outcome: 'failure' })]:
        2,
      [sampleKey('breakwater_call_duration_seconds_count', { breaker: name, outcome: 'timeout' })]:
        1,
    });
    expect(family(samples, 'breakwater_state_transitions_total')).toEqual(
      transitionSamples(name, { 'closed>open': 1 }),
    );

    // The open time elapses without traffic: the scrape itself shows half_open.
    jest.advanceTimersByTime(10_000);
    samples = await scrape(register);
    expect(family(samples, 'breakwater_circuit_state')).toEqual(stateSamples(name, 'half_open'));
    expect(
      samples.get(
        sampleKey('breakwater_state_transitions_total', {
          breaker: name,
          from: 'open',
          to: 'half_open',
        }),
      ),
    ).toBe(1);

    await call(breaker, 5);
    samples = await scrape(register);
    expect(family(samples, 'breakwater_circuit_state')).toEqual(stateSamples(name, 'closed'));
    expect(family(samples, 'breakwater_state_transitions_total')).toEqual(
      transitionSamples(name, { 'closed>open': 1, 'open>half_open': 1, 'half_open>closed': 1 }),
    );
    expect(family(samples, 'breakwater_call_duration_seconds_bucket')).toMatchObject(
      bucketSamples(name, 'success', [0.003, 0.02, 0.3, 0.005]),
    );
    expect(
      samples.get(sampleKey('breakwater_calls_total', { breaker: name, outcome: 'success' })),
    ).toBe(4);
  });

  it('counts permits of tryAcquire like execute, and operator states', async () => {
    const register = new Registry();
    const registry = new CircuitBreakerRegistry();
    const breaker = registry.get('route');
    collect(registry, { register });
    breaker.tryAcquire()!.success();
    breaker.tryAcquire()!.failure(new Error('500'));
    breaker.tryAcquire()!.ignore();
    breaker.open();
    expect(breaker.tryAcquire()).toBeUndefined();
    let samples = await scrape(register);
    expect(family(samples, 'breakwater_calls_total')).toEqual(
      callSamples('route', { success: 1, failure: 1, ignored: 1, rejected: 1 }),
    );
    expect(family(samples, 'breakwater_circuit_state')).toEqual(
      stateSamples('route', 'forced_open'),
    );
    breaker.disable();
    samples = await scrape(register);
    expect(family(samples, 'breakwater_circuit_state')).toEqual(stateSamples('route', 'disabled'));
    expect(family(samples, 'breakwater_state_transitions_total')).toEqual(
      transitionSamples('route', { 'closed>forced_open': 1, 'forced_open>disabled': 1 }),
    );
  });

  it('picks up breakers added later and stops reporting removed ones', async () => {
    const register = new Registry();
    const registry = new CircuitBreakerRegistry();
    registry.get('a');
    collect(registry, { register });
    const b = registry.get('b');
    const c = registry.add(new CircuitBreaker({ name: 'c' }));
    await b.execute(() => 'ok');
    await c.execute(() => 'ok');
    let samples = await scrape(register);
    expect(family(samples, 'breakwater_circuit_state')).toEqual({
      ...stateSamples('a', 'closed'),
      ...stateSamples('b', 'closed'),
      ...stateSamples('c', 'closed'),
    });
    expect(
      samples.get(sampleKey('breakwater_calls_total', { breaker: 'c', outcome: 'success' })),
    ).toBe(1);

    registry.delete('b');
    await b.execute(() => 'ok');
    samples = await scrape(register);
    expect(family(samples, 'breakwater_circuit_state')).toEqual({
      ...stateSamples('a', 'closed'),
      ...stateSamples('c', 'closed'),
    });
    for (const key of samples.keys()) expect(key).not.toContain('breaker="b"');

    // A new breaker under a removed name starts from zero.
    const again = registry.get('b');
    again.open();
    samples = await scrape(register);
    expect(family(samples, 'breakwater_circuit_state')).toMatchObject(
      stateSamples('b', 'forced_open'),
    );
    expect(
      samples.get(sampleKey('breakwater_calls_total', { breaker: 'b', outcome: 'success' })),
    ).toBe(0);
  });

  it('exports decisions, store errors and the fallback state of limiters', async () => {
    const register = new Registry();
    const api = new RateLimiter({ name: 'api', rate: '2/h' });
    const store = failingStore();
    const quota = new RateLimiter({ name: 'quota', rate: '3/h', store });
    collect(new CircuitBreakerRegistry(), { register, limiters: [api, quota] });

    let samples = await scrape(register);
    expect(family(samples, 'breakwater_store_fallback_active')).toEqual({
      [sampleKey('breakwater_store_fallback_active', { limiter: 'api' })]: 0,
      [sampleKey('breakwater_store_fallback_active', { limiter: 'quota' })]: 0,
    });

    await api.consume('1.2.3.4');
    await api.check('1.2.3.4');
    await api.check('1.2.3.4').catch(() => undefined);
    for (let i = 0; i < 5; i++) await quota.consume('k');
    expect(store.calls).toBe(3);

    samples = await scrape(register);
    expect(family(samples, 'breakwater_ratelimit_decisions_total')).toEqual({
      [sampleKey('breakwater_ratelimit_decisions_total', { limiter: 'api', decision: 'allowed' })]:
        2,
      [sampleKey('breakwater_ratelimit_decisions_total', { limiter: 'api', decision: 'refused' })]:
        1,
      [sampleKey('breakwater_ratelimit_decisions_total', {
        limiter: 'quota',
        decision: 'allowed',
      })]: 3,
      [sampleKey('breakwater_ratelimit_decisions_total', {
        limiter: 'quota',
        decision: 'refused',
      })]: 2,
    });
    expect(family(samples, 'breakwater_store_errors_total')).toEqual({
      [sampleKey('breakwater_store_errors_total', { limiter: 'api' })]: 0,
      [sampleKey('breakwater_store_errors_total', { limiter: 'quota' })]: 3,
    });
    expect(family(samples, 'breakwater_store_fallback_active')).toEqual({
      [sampleKey('breakwater_store_fallback_active', { limiter: 'api' })]: 0,
      [sampleKey('breakwater_store_fallback_active', { limiter: 'quota' })]: 1,
    });
  });

  it('uses the configured buckets and prefix', async () => {
    const register = new Registry();
    const registry = new CircuitBreakerRegistry();
    const breaker = registry.get('x');
    const collector = collect(registry, { register, prefix: 'app_', buckets: [0.1, 1] });
    expect(collector.metricNames).toEqual([
      'app_circuit_state',
      'app_calls_total',
      'app_call_duration_seconds',
      'app_state_transitions_total',
      'app_ratelimit_decisions_total',
      'app_store_errors_total',
      'app_store_fallback_active',
    ]);
    await call(breaker, 100);
    await call(breaker, 1_500);
    const samples = await scrape(register);
    expect(family(samples, 'app_call_duration_seconds_bucket')).toMatchObject({
      [sampleKey('app_call_duration_seconds_bucket', {
        breaker: 'x',
        outcome: 'success',
        le: '0.1',
      })]: 1,
      [sampleKey('app_call_duration_seconds_bucket', {
        breaker: 'x',
        outcome: 'success',
        le: '1',
      })]: 1,
      [sampleKey('app_call_duration_seconds_bucket', {
        breaker: 'x',
        outcome: 'success',
        le: '+Inf',
      })]: 2,
    });
    expect(Object.keys(family(samples, 'app_call_duration_seconds_bucket'))).toHaveLength(9);
    for (const key of samples.keys()) expect(key.startsWith('app_')).toBe(true);
  });

  it('answers getSingleMetric(...).get() with the same values as the text exposition', async () => {
    const register = new Registry();
    const registry = new CircuitBreakerRegistry();
    const breaker = registry.get('x');
    collect(registry, { register });
    await call(breaker, 30);
    await call(breaker, 30, 'fail');
    const calls = await register.getSingleMetric('breakwater_calls_total')!.get();
    expect(calls.type).toBe('counter');
    expect(calls.values).toEqual(
      expect.arrayContaining([
        { value: 1, labels: { breaker: 'x', outcome: 'success' } },
        { value: 1, labels: { breaker: 'x', outcome: 'failure' } },
        { value: 0, labels: { breaker: 'x', outcome: 'timeout' } },
      ]),
    );
    const durations = await register.getSingleMetric('breakwater_call_duration_seconds')!.get();
    expect(durations.type).toBe('histogram');
    expect(durations.values).toEqual(
      expect.arrayContaining([
        expect.objectContaining({
          metricName: 'breakwater_call_duration_seconds_bucket',
          labels: { breaker: 'x', outcome: 'failure', le: 0.05 },
          value: 1,
        }),
        expect.objectContaining({
          metricName: 'breakwater_call_duration_seconds_sum',
          labels: { breaker: 'x', outcome: 'success' },
          value: 0.03,
        }),
      ]),
    );
  });

  it('survives register.resetMetrics(): values come from the breakers, not from prom-client', async () => {
    const register = new Registry();
    const registry = new CircuitBreakerRegistry();
    const breaker = registry.get('x');
    collect(registry, { register });
    await call(breaker, 1);
    register.resetMetrics();
    const samples = await scrape(register);
    expect(
      samples.get(sampleKey('breakwater_calls_total', { breaker: 'x', outcome: 'success' })),
    ).toBe(1);
  });
});

describe('collectMetrics registers', () => {
  it('registers in prom-client’s default register unless told otherwise', async () => {
    const registry = new CircuitBreakerRegistry();
    registry.get('default-register');
    const collector = collect(registry);
    expect(defaultRegister.getSingleMetric('breakwater_circuit_state')).toBeDefined();
    const samples = await scrape(defaultRegister);
    expect(family(samples, 'breakwater_circuit_state')).toEqual(
      stateSamples('default-register', 'closed'),
    );
    collector.stop();
    for (const name of collector.metricNames) {
      expect(defaultRegister.getSingleMetric(name)).toBeUndefined();
    }
  });

  it('works with an OpenMetrics register, and stop() unregisters after a scrape there too', async () => {
    const register = openMetricsRegistry();
    const registry = new CircuitBreakerRegistry();
    const collector = collect(registry, { register });
    await registry.get('x').execute(() => 'ok');
    const text = await register.metrics();
    expect(text).toContain('breakwater_calls_total{breaker="x",outcome="success"} 1');
    expect(text.endsWith('# EOF\n')).toBe(true);
    collector.stop();
    expect(await register.metrics()).toBe('\n# EOF\n');
  });

  it('throws a clear error when called twice on one register with the same prefix', () => {
    const register = new Registry();
    const registry = new CircuitBreakerRegistry();
    const first = collect(registry, { register });
    let error: unknown;
    try {
      collectMetrics(registry, { register });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).path).toBe('prefix');
    expect((error as Error).message).toMatch(
      /"breakwater_circuit_state" is already registered, typically by an earlier collectMetrics on this register with this prefix: stop\(\) that collector first/,
    );
    // Another prefix or another register is fine, and so is a second call after stop().
    collect(registry, { register, prefix: 'other_' });
    collect(registry, { register: new Registry() });
    first.stop();
    expect(() => collect(registry, { register })).not.toThrow();
  });

  it('leaves the register untouched when it refuses a metric name', () => {
    const register = new Registry();
    register.registerMetric = (metric) => {
      if ((metric as unknown as { name: string }).name.endsWith('_total')) {
        throw new Error('refused');
      }
      Registry.prototype.registerMetric.call(register, metric);
    };
    const registry = new CircuitBreakerRegistry();
    const breaker = registry.get('x');
    let reads = 0;
    jest.spyOn(Date, 'now').mockImplementation(() => ++reads);
    expect(() => collectMetrics(registry, { register })).toThrow('refused');
    expect(register.getMetricsAsArray()).toEqual([]);
    // No listener was left behind: a closed call does not read the clock.
    reads = 0;
    void breaker.execute(() => 'ok');
    expect(reads).toBe(0);
    jest.restoreAllMocks();
  });
});

describe('collectMetrics stop()', () => {
  it('unregisters the metrics and removes every listener', async () => {
    const register = new Registry();
    let reads = 0;
    const clock = { now: () => ++reads };
    const registry = new CircuitBreakerRegistry({ clock });
    const breaker = registry.get('x');
    const memory = new (class implements RateLimitStore {
      readonly local = true;
      readonly answer = Promise.resolve<RateLimitDecision>({
        allowed: true,
        limit: 1,
        remaining: 0,
        resetMs: 0,
        retryAfterMs: 0,
      });
      consume = (): Promise<RateLimitDecision> => this.answer;
      reset = (): Promise<void> => Promise.resolve();
    })();
    const limiter = new RateLimiter({ name: 'api', rate: '1/s', store: memory });
    expect(limiter.consume('k')).toBe(memory.answer);

    const collector = collect(registry, { register, limiters: [limiter] });
    reads = 0;
    await breaker.execute(() => 'ok');
    expect(reads).toBe(2); // durations need the clock while metrics listen
    expect(limiter.consume('k')).not.toBe(memory.answer);

    collector.stop();
    collector.stop();
    expect(register.getMetricsAsArray()).toEqual([]);
    reads = 0;
    await breaker.execute(() => 'ok');
    expect(reads).toBe(0);
    expect(limiter.consume('k')).toBe(memory.answer);
    // Breakers added after stop() are not followed.
    registry.get('y');
    expect(await register.metrics()).toBe('\n');
  });
});

describe('collectMetrics options', () => {
  const registry = new CircuitBreakerRegistry();
  const limiter = new RateLimiter({ name: 'api', rate: '1/s' });

  it.each([
    [{ prefix: '1abc' }, 'prefix'],
    [{ prefix: 'a-b' }, 'prefix'],
    [{ prefix: 7 }, 'prefix'],
    [{ buckets: [] }, 'buckets'],
    [{ buckets: 'fast' }, 'buckets'],
    [{ buckets: [0.1, 0.1] }, 'buckets[1]'],
    [{ buckets: [0.5, 0.1] }, 'buckets[1]'],
    [{ buckets: [0] }, 'buckets[0]'],
    [{ buckets: [1, Infinity] }, 'buckets[1]'],
    [{ limiters: limiter }, 'limiters'],
    [{ limiters: [{ name: 'fake' }] }, 'limiters[0]'],
    [{ limiters: [limiter, new RateLimiter({ name: 'api', rate: '2/s' })] }, 'limiters[1].name'],
    [{ register: {} }, 'register'],
    [{ registers: [new Registry()] }, 'registers'],
  ])('rejects %p naming %s', (options, path) => {
    let error: unknown;
    try {
      collectMetrics(registry, { register: new Registry(), ...options } as CollectMetricsOptions);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).path).toBe(path);
  });

  it('rejects a registry that is not a CircuitBreakerRegistry', () => {
    expect(() => collectMetrics({} as CircuitBreakerRegistry)).toThrow(ConfigError);
    expect(() => collectMetrics(registry, null as unknown as CollectMetricsOptions)).toThrow(
      /option "options" must be an object/,
    );
  });

  it('accepts an empty prefix', async () => {
    const register = new Registry();
    collect(new CircuitBreakerRegistry(), { register, prefix: '' });
    expect(register.getSingleMetric('circuit_state')).toBeDefined();
    const samples: Samples = await scrape(register);
    expect(samples.size).toBe(0);
  });
});
