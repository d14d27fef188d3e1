import { afterEach, describe, expect, it } from '@jest/globals';
import {
  CircuitBreakerRegistry,
  ConfigError,
  bulkhead,
  constant,
  fallback,
  retry,
  timeout,
} from '@breakwater/core';
import { Registry, type OpenMetricsContentType } from 'prom-client';
import { sampleKey, scrape } from '../test/exposition';
import { collectMetrics, type CollectMetricsOptions, type MetricsCollector } from './index';

const collectors: MetricsCollector[] = [];
function collect(registry: CircuitBreakerRegistry, options: CollectMetricsOptions) {
  const collector = collectMetrics(registry, options);
  collectors.push(collector);
  return collector;
}
afterEach(() => {
  for (const collector of collectors.splice(0)) collector.stop();
});

function openMetricsRegistry(): Registry<OpenMetricsContentType> {
  const register = new Registry<OpenMetricsContentType>();
  register.setContentType(Registry.OPENMETRICS_CONTENT_TYPE);
  return register;
}

/** A clock the test moves by hand, in fractional milliseconds like `performance.now()`. */
function manualClock() {
  let now = 1_000;
  return {
    now: () => now,
    advance(ms: number) {
      now += ms;
    },
  };
}

describe('collectMetrics policies', () => {
  it('exports retries, give-ups, fallbacks, bulkhead rejections and timeouts by policy', async () => {
    const register = new Registry();
    const upstreamRetry = retry({ maxAttempts: 3, backoff: constant(0) });
    const cached = fallback('cached');
    const pool = bulkhead({ maxConcurrent: 1 });
    const limit = timeout(1);
    const collector = collect(new CircuitBreakerRegistry(), {
      register,
      policies: { 'upstream-retry': upstreamRetry, cached, pool, limit },
    });
    expect(collector.metricNames).toEqual(
      expect.arrayContaining([
        'breakwater_retries_total',
        'breakwater_retry_give_ups_total',
        'breakwater_fallbacks_total',
        'breakwater_bulkhead_rejections_total',
        'breakwater_timeouts_total',
      ]),
    );
    expect(collector.metricNames).not.toContain('breakwater_loadshed_rejected_total');

    await upstreamRetry.execute(() => Promise.reject(new Error('x'))).catch(() => undefined);
    await cached.execute(() => Promise.reject(new Error('x')));
    let finish: () => void = () => undefined;
    const running = pool.execute(() => new Promise<void>((resolve) => (finish = resolve)));
    await pool.execute(() => 'x').catch(() => undefined);
    finish();
    await running;
    await limit.execute(() => new Promise(() => undefined)).catch(() => undefined);
    await new Promise((resolve) => setImmediate(resolve));

    const samples = await scrape(register);
    expect(samples.get(sampleKey('breakwater_retries_total', { policy: 'upstream-retry' }))).toBe(
      2,
    );
    expect(
      samples.get(
        sampleKey('breakwater_retry_give_ups_total', {
          policy: 'upstream-retry',
          reason: 'maxAttempts',
        }),
      ),
    ).toBe(1);
    expect(
      samples.get(
        sampleKey('breakwater_retry_give_ups_total', {
          policy: 'upstream-retry',
          reason: 'budget',
        }),
      ),
    ).toBe(0);
    expect(samples.get(sampleKey('breakwater_fallbacks_total', { policy: 'cached' }))).toBe(1);
    expect(
      samples.get(
        sampleKey('breakwater_bulkhead_rejections_total', { policy: 'pool', reason: 'full' }),
      ),
    ).toBe(1);
    expect(samples.get(sampleKey('breakwater_timeouts_total', { policy: 'limit' }))).toBe(1);
  });

  it('takes any object with on() as a load shedder (breakwater_loadshed_rejected_total{name})', async () => {
    const listeners = new Map<string, (event: Record<string, number>) => void>();
    const shedder = {
      on(event: 'rejected' | 'limitChanged', listener: (event: Record<string, number>) => void) {
        listeners.set(event, listener);
        return () => listeners.delete(event);
      },
      snapshot: () => ({ name: 'api', limit: 12, inFlight: 3 }),
    };
    const register = new Registry();
    const collector = collect(new CircuitBreakerRegistry(), {
      register,
      policies: { api: shedder },
    });
    listeners.get('rejected')!({ limit: 12, inFlight: 12 });
    const samples = await scrape(register);
    expect(samples.get(sampleKey('breakwater_loadshed_rejected_total', { name: 'api' }))).toBe(1);
    expect(samples.get(sampleKey('breakwater_loadshed_limit', { name: 'api' }))).toBe(12);
    expect(samples.get(sampleKey('breakwater_loadshed_in_flight', { name: 'api' }))).toBe(3);
    collector.stop();
    expect(listeners.size).toBe(0);
    expect(register.getSingleMetric('breakwater_loadshed_rejected_total')).toBeUndefined();
  });
});

describe('collectMetrics labels', () => {
  it('adds the static labels to every series', async () => {
    const register = new Registry();
    const registry = new CircuitBreakerRegistry();
    const breaker = registry.get('db');
    collect(registry, {
      register,
      labels: { service: 'gateway', region: 'eu' },
      policies: { r: retry() },
    });
    await breaker.execute(() => 'ok');
    const samples = await scrape(register);
    expect(samples.size).toBeGreaterThan(0);
    for (const key of samples.keys()) {
      expect(key).toContain('region="eu"');
      expect(key).toContain('service="gateway"');
    }
    expect(
      samples.get(
        sampleKey('breakwater_call_duration_seconds_count', {
          breaker: 'db',
          outcome: 'success',
          service: 'gateway',
          region: 'eu',
        }),
      ),
    ).toBe(1);
  });

  it.each([
    [{ labels: 'x' }, 'labels'],
    [{ labels: { breaker: 'x' } }, 'labels'],
    [{ labels: { __name__: 'x' } }, 'labels'],
    [{ labels: { 'a-b': 'x' } }, 'labels'],
    [{ labels: { service: 1 } }, 'labels.service'],
    [{ labels: { service: 'x'.repeat(1025) } }, 'labels.service'],
    [{ policies: { p: {} } }, 'policies.p'],
    [{ policies: [] }, 'policies'],
    [{ exemplars: 'trace' }, 'exemplars'],
    [{ exemplars: () => undefined }, 'exemplars'],
  ])('rejects %p naming %s', (options, path) => {
    let error: unknown;
    try {
      collectMetrics(new CircuitBreakerRegistry(), {
        register: new Registry(),
        ...options,
      } as CollectMetricsOptions);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).path).toBe(path);
  });
});

describe('collectMetrics durations and exemplars', () => {
  it('keeps sub-millisecond durations (the histogram is in seconds, not whole milliseconds)', async () => {
    const clock = manualClock();
    const registry = new CircuitBreakerRegistry({ defaults: { clock } });
    const breaker = registry.get('fast');
    const register = new Registry();
    collect(registry, { register, buckets: [0.0001, 0.0005, 0.001] });
    await breaker.execute(() => {
      clock.advance(0.25);
      return 'ok';
    });
    const samples = await scrape(register);
    const labels = { breaker: 'fast', outcome: 'success' };
    expect(samples.get(sampleKey('breakwater_call_duration_seconds_sum', labels))).toBeCloseTo(
      0.00025,
    );
    expect(
      samples.get(
        sampleKey('breakwater_call_duration_seconds_bucket', { ...labels, le: '0.0005' }),
      ),
    ).toBe(1);
    expect(
      samples.get(
        sampleKey('breakwater_call_duration_seconds_bucket', { ...labels, le: '0.0001' }),
      ),
    ).toBe(0);
  });

  it('exposes the latest exemplar of each bucket in OpenMetrics, and survives a throwing hook', async () => {
    const clock = manualClock();
    const registry = new CircuitBreakerRegistry({ defaults: { clock } });
    const breaker = registry.get('pay');
    const register = openMetricsRegistry();
    let traceId: string | undefined = 'a'.repeat(32);
    let throwing = false;
    collect(registry, {
      register,
      exemplars: () => {
        if (throwing) throw new Error('no context');
        return traceId === undefined ? undefined : { trace_id: traceId };
      },
    });
    const call = (ms: number) =>
      breaker.execute(() => {
        clock.advance(ms);
        return 'ok';
      });
    await call(20);
    traceId = 'b'.repeat(32);
    await call(30);
    traceId = undefined;
    await call(3_000);
    throwing = true;
    await call(1);
    const text = await register.metrics();
    const bucket = (le: string) =>
      text
        .split('\n')
        .find((line) =>
          line.startsWith(
            `breakwater_call_duration_seconds_bucket{breaker="pay",outcome="success",le="${le}"}`,
          ),
        );
    expect(bucket('0.05')).toMatch(
      new RegExp(`^\\S+ 3 # \\{trace_id="${'b'.repeat(32)}"\\} 0\\.03 \\d+(\\.\\d+)?$`),
    );
    expect(bucket('0.025')).toMatch(/ 2 # \{trace_id="a{32}"\} 0\.02 /);
    expect(bucket('0.005')).toBe(
      'breakwater_call_duration_seconds_bucket{breaker="pay",outcome="success",le="0.005"} 1',
    );
    expect(bucket('5')).not.toContain('#');
    expect(text).toContain(
      'breakwater_call_duration_seconds_count{breaker="pay",outcome="success"} 4',
    );
    expect(text.endsWith('# EOF\n')).toBe(true);
  });
});
