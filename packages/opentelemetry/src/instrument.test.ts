import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import {
  CircuitBreakerRegistry,
  RateLimiter,
  bulkhead,
  constant,
  fallback,
  isConfigError,
  retry,
  timeout,
  type RateLimitStore,
} from '@breakwater/core';
import { context, trace, type Attributes } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import {
  AggregationTemporality,
  DataPointType,
  InMemoryMetricExporter,
  MeterProvider,
  PeriodicExportingMetricReader,
  type MetricData,
} from '@opentelemetry/sdk-metrics';
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  SimpleSpanProcessor,
} from '@opentelemetry/sdk-trace-base';
import { instrument, type Instrumentation, type InstrumentOptions } from './index';

/** A clock the test moves by hand. */
function manualClock(start = 1_000_000) {
  let now = start;
  return {
    now: () => now,
    advance(ms: number) {
      now += ms;
    },
  };
}

let contextManager: AsyncLocalStorageContextManager;
beforeAll(() => {
  contextManager = new AsyncLocalStorageContextManager().enable();
  context.setGlobalContextManager(contextManager);
});
afterAll(() => {
  context.disable();
});

let exporter: InMemoryMetricExporter;
let reader: PeriodicExportingMetricReader;
let meterProvider: MeterProvider;
let spans: InMemorySpanExporter;
let tracerProvider: BasicTracerProvider;
let active: Instrumentation | undefined;

beforeEach(() => {
  exporter = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE);
  reader = new PeriodicExportingMetricReader({ exporter, exportIntervalMillis: 3_600_000 });
  meterProvider = new MeterProvider({ readers: [reader] });
  spans = new InMemorySpanExporter();
  tracerProvider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(spans)] });
});

afterEach(async () => {
  active?.stop();
  active = undefined;
  await meterProvider.shutdown();
  await tracerProvider.shutdown();
});

function start(registry: CircuitBreakerRegistry, options: InstrumentOptions = {}): Instrumentation {
  active = instrument(registry, { meterProvider, ...options });
  return active;
}

/** Collects and returns every metric of the last export, by name. */
async function collect(): Promise<Map<string, MetricData>> {
  exporter.reset();
  await reader.forceFlush();
  const byName = new Map<string, MetricData>();
  for (const resource of exporter.getMetrics()) {
    for (const scope of resource.scopeMetrics) {
      for (const metric of scope.metrics) byName.set(metric.descriptor.name, metric);
    }
  }
  return byName;
}

/** The value of the data point whose attributes include `attributes`. */
function value(metric: MetricData | undefined, attributes: Attributes): unknown {
  expect(metric).toBeDefined();
  const point = metric!.dataPoints.find((p) =>
    Object.entries(attributes).every(([k, v]) => p.attributes[k] === v),
  );
  return point?.value;
}

const tracer = () => tracerProvider.getTracer('test');

describe('instrument: breakers', () => {
  it('records state, calls by outcome, durations in seconds and transitions', async () => {
    const clock = manualClock();
    const registry = new CircuitBreakerRegistry({
      defaults: { failureThreshold: 2, openDurationMs: 1_000, clock },
    });
    const breaker = registry.get('plant-id');
    start(registry);
    await breaker.execute(() => {
      clock.advance(250);
      return 'ok';
    });
    for (let i = 0; i < 2; i++) {
      await breaker
        .execute(() => {
          clock.advance(4);
          throw new Error('boom');
        })
        .catch(() => undefined);
    }
    await breaker.execute(() => 'never').catch(() => undefined);

    const metrics = await collect();
    const name = { 'breakwater.breaker.name': 'plant-id' };
    const state = metrics.get('breakwater.circuit.state');
    expect(value(state, { ...name, 'breakwater.circuit.state': 'open' })).toBe(1);
    expect(value(state, { ...name, 'breakwater.circuit.state': 'closed' })).toBe(0);
    const calls = metrics.get('breakwater.circuit.calls');
    expect(calls?.descriptor.unit).toBe('{call}');
    expect(value(calls, { ...name, 'breakwater.call.outcome': 'success' })).toBe(1);
    expect(value(calls, { ...name, 'breakwater.call.outcome': 'failure' })).toBe(2);
    expect(value(calls, { ...name, 'breakwater.call.outcome': 'rejected' })).toBe(1);
    const duration = metrics.get('breakwater.circuit.call.duration');
    expect(duration?.descriptor.unit).toBe('s');
    expect(duration?.dataPointType).toBe(DataPointType.HISTOGRAM);
    const success = value(duration, { ...name, 'breakwater.call.outcome': 'success' }) as {
      sum: number;
      count: number;
      buckets: { boundaries: number[] };
    };
    expect(success.count).toBe(1);
    expect(success.sum).toBeCloseTo(0.25);
    expect(success.buckets.boundaries).toContain(0.25);
    const failure = value(duration, { ...name, 'breakwater.call.outcome': 'failure' }) as {
      sum: number;
      count: number;
    };
    expect(failure.count).toBe(2);
    expect(failure.sum).toBeCloseTo(0.008);
    const transitions = metrics.get('breakwater.circuit.transitions');
    expect(
      value(transitions, {
        ...name,
        'breakwater.transition.from': 'closed',
        'breakwater.transition.to': 'open',
      }),
    ).toBe(1);
  });

  it('reads an elapsed open time as half_open at collection, without traffic', async () => {
    const clock = manualClock();
    const registry = new CircuitBreakerRegistry({ defaults: { openDurationMs: 1_000, clock } });
    const breaker = registry.get('db');
    start(registry);
    breaker.open();
    breaker.reset();
    await breaker.execute(() => Promise.reject(new Error('x'))).catch(() => undefined);
    registry.get('slow', { failureThreshold: 1 });
    registry.get('slow').open();
    expect(
      value((await collect()).get('breakwater.circuit.state'), {
        'breakwater.breaker.name': 'slow',
        'breakwater.circuit.state': 'forced_open',
      }),
    ).toBe(1);
    const failing = registry.get('failing', { failureThreshold: 1 });
    await failing.execute(() => Promise.reject(new Error('x'))).catch(() => undefined);
    clock.advance(1_000);
    expect(
      value((await collect()).get('breakwater.circuit.state'), {
        'breakwater.breaker.name': 'failing',
        'breakwater.circuit.state': 'half_open',
      }),
    ).toBe(1);
  });

  it('follows breakers added after it started and stops reading removed ones', async () => {
    const registry = new CircuitBreakerRegistry();
    start(registry);
    const late = registry.get('late');
    await late.execute(() => 'ok');
    let calls = (await collect()).get('breakwater.circuit.calls');
    expect(
      value(calls, { 'breakwater.breaker.name': 'late', 'breakwater.call.outcome': 'success' }),
    ).toBe(1);
    registry.delete('late');
    await late.execute(() => 'ok');
    calls = (await collect()).get('breakwater.circuit.calls');
    expect(
      value(calls, { 'breakwater.breaker.name': 'late', 'breakwater.call.outcome': 'success' }),
    ).toBe(1);
  });

  it('bounds attribute cardinality: breakers past maxBreakers share the name _other', async () => {
    const registry = new CircuitBreakerRegistry();
    start(registry, { maxBreakers: 10 });
    for (let i = 0; i < 300; i++) {
      const breaker = registry.get(`tenant-${i}`, { failureThreshold: 1 });
      await breaker.execute(() => Promise.reject(new Error('x'))).catch(() => undefined);
    }
    const metrics = await collect();
    for (const name of [
      'breakwater.circuit.calls',
      'breakwater.circuit.call.duration',
      'breakwater.circuit.transitions',
      'breakwater.circuit.state',
    ]) {
      const labels = new Set(
        metrics.get(name)?.dataPoints.map((p) => p.attributes['breakwater.breaker.name']),
      );
      expect(labels.size).toBeLessThanOrEqual(11);
    }
    const calls = metrics.get('breakwater.circuit.calls');
    expect(
      value(calls, { 'breakwater.breaker.name': '_other', 'breakwater.call.outcome': 'failure' }),
    ).toBe(290);
    const state = metrics.get('breakwater.circuit.state');
    expect(
      state?.dataPoints.some((p) => p.attributes['breakwater.breaker.name'] === '_other'),
    ).toBe(false);
  });

  it('skips durations when asked, and counts calls from totals all the same', async () => {
    const registry = new CircuitBreakerRegistry();
    const breaker = registry.get('quick');
    start(registry, { durations: false });
    await breaker.execute(() => 'ok');
    const metrics = await collect();
    expect(metrics.has('breakwater.circuit.call.duration')).toBe(false);
    expect(
      value(metrics.get('breakwater.circuit.calls'), {
        'breakwater.breaker.name': 'quick',
        'breakwater.call.outcome': 'success',
      }),
    ).toBe(1);
  });

  it('stops: no listener left, no callback left', async () => {
    const registry = new CircuitBreakerRegistry();
    const breaker = registry.get('a');
    const instrumentation = start(registry);
    instrumentation.stop();
    instrumentation.stop();
    await breaker.execute(() => 'ok');
    const metrics = await collect();
    expect(metrics.get('breakwater.circuit.calls')?.dataPoints ?? []).toHaveLength(0);
    expect(metrics.get('breakwater.circuit.call.duration')?.dataPoints ?? []).toHaveLength(0);
  });
});

describe('instrument: span events', () => {
  it('adds rejection and transition events to the active span', async () => {
    const registry = new CircuitBreakerRegistry({ defaults: { failureThreshold: 1 } });
    const breaker = registry.get('payments');
    start(registry);
    await tracer().startActiveSpan('request', async (span) => {
      await breaker.execute(() => Promise.reject(new Error('x'))).catch(() => undefined);
      await breaker.execute(() => 'never').catch(() => undefined);
      span.end();
    });
    const [span] = spans.getFinishedSpans();
    const events = span!.events.map((e) => [e.name, e.attributes]);
    expect(events).toEqual([
      [
        'breakwater.circuit.transition',
        {
          'breakwater.breaker.name': 'payments',
          'breakwater.transition.from': 'closed',
          'breakwater.transition.to': 'open',
          'breakwater.reason': expect.any(String),
        },
      ],
      [
        'breakwater.circuit.rejected',
        { 'breakwater.breaker.name': 'payments', 'breakwater.retry_after_ms': expect.any(Number) },
      ],
    ]);
  });

  it('records a transition outside any span as its own span when given a tracer', async () => {
    const registry = new CircuitBreakerRegistry();
    const breaker = registry.get('cron');
    start(registry, { tracer: tracer() });
    breaker.open();
    const finished = spans.getFinishedSpans();
    expect(finished.map((s) => s.name)).toEqual(['breakwater.circuit.transition']);
    expect(finished[0]!.attributes['breakwater.transition.to']).toBe('forced_open');
  });

  it('adds no span events with tracer: false', async () => {
    const registry = new CircuitBreakerRegistry({ defaults: { failureThreshold: 1 } });
    const breaker = registry.get('quiet');
    start(registry, { tracer: false });
    await tracer().startActiveSpan('request', async (span) => {
      await breaker.execute(() => Promise.reject(new Error('x'))).catch(() => undefined);
      span.end();
    });
    expect(spans.getFinishedSpans()[0]!.events).toEqual([]);
  });
});

describe('instrument: policies', () => {
  it('counts retries, give-ups, fallbacks, bulkhead rejections and timeouts', async () => {
    const registry = new CircuitBreakerRegistry();
    const upstreamRetry = retry({ maxAttempts: 3, backoff: constant(0) });
    const cached = fallback('cached');
    const pool = bulkhead({ maxConcurrent: 1 });
    const limit = timeout(5);
    start(registry, {
      policies: { 'upstream-retry': upstreamRetry, cached, pool, limit },
    });
    await tracer().startActiveSpan('request', async (span) => {
      await upstreamRetry.execute(() => Promise.reject(new Error('x'))).catch(() => undefined);
      await cached.execute(() => Promise.reject(new Error('x')));
      let finish: () => void = () => undefined;
      const running = pool.execute(() => new Promise<void>((resolve) => (finish = resolve)));
      await pool.execute(() => 'x').catch(() => undefined);
      finish();
      await running;
      span.end();
    });
    await limit.execute(() => new Promise(() => undefined)).catch(() => undefined);
    await new Promise((resolve) => setImmediate(resolve));

    const metrics = await collect();
    const policy = (name: string) => ({ 'breakwater.policy.name': name });
    expect(value(metrics.get('breakwater.retry.retries'), policy('upstream-retry'))).toBe(2);
    expect(
      value(metrics.get('breakwater.retry.give_ups'), {
        ...policy('upstream-retry'),
        'breakwater.reason': 'maxAttempts',
      }),
    ).toBe(1);
    expect(value(metrics.get('breakwater.fallback.invocations'), policy('cached'))).toBe(1);
    expect(
      value(metrics.get('breakwater.bulkhead.rejections'), {
        ...policy('pool'),
        'breakwater.reason': 'full',
      }),
    ).toBe(1);
    expect(value(metrics.get('breakwater.timeout.timeouts'), policy('limit'))).toBe(1);
    const events = spans.getFinishedSpans()[0]!.events.map((e) => e.name);
    expect(events).toEqual([
      'breakwater.retry',
      'breakwater.retry',
      'breakwater.fallback',
      'breakwater.bulkhead.rejected',
    ]);
  });

  it('takes any object with on() for a load shedder: rejections, limit and in-flight', async () => {
    type Listener = (event: { limit: number; inFlight: number; from: number; to: number }) => void;
    const listeners = new Map<string, Listener>();
    const shedder = {
      on(event: 'rejected' | 'limitChanged', listener: Listener) {
        listeners.set(event, listener);
        return () => listeners.delete(event);
      },
      snapshot: () => ({ name: 'api-shed', limit: 20, inFlight: 7 }),
    };
    const registry = new CircuitBreakerRegistry();
    const instrumentation = start(registry, { policies: { 'api-shed': shedder } });
    listeners.get('rejected')!({ limit: 20, inFlight: 20, from: 0, to: 0 });
    listeners.get('rejected')!({ limit: 20, inFlight: 20, from: 0, to: 0 });
    const metrics = await collect();
    const name = { 'breakwater.policy.name': 'api-shed' };
    expect(value(metrics.get('breakwater.loadshed.rejections'), name)).toBe(2);
    expect(value(metrics.get('breakwater.loadshed.limit'), name)).toBe(20);
    expect(value(metrics.get('breakwater.loadshed.in_flight'), name)).toBe(7);
    instrumentation.stop();
    expect(listeners.size).toBe(0);
  });

  it('survives a load shedder whose snapshot throws, using its last limitChanged', async () => {
    const listeners = new Map<string, (event: Record<string, number>) => void>();
    const shedder = {
      on(event: string, listener: (event: Record<string, number>) => void) {
        listeners.set(event, listener);
        return () => listeners.delete(event);
      },
      snapshot(): never {
        throw new Error('broken');
      },
    };
    start(new CircuitBreakerRegistry(), { policies: { shed: shedder } });
    listeners.get('limitChanged')!({ from: 10, to: 14 });
    const metrics = await collect();
    expect(
      value(metrics.get('breakwater.loadshed.limit'), { 'breakwater.policy.name': 'shed' }),
    ).toBe(14);
  });
});

describe('instrument: rate limiters', () => {
  it('counts decisions and store errors and observes the store fallback', async () => {
    const failing: RateLimitStore = {
      consume: () => Promise.reject(new Error('connection refused')),
      reset: () => Promise.resolve(),
    };
    const limiter = new RateLimiter({ name: 'api', limit: 1, window: '1m', store: failing });
    const healthy = new RateLimiter({ name: 'healthy', limit: 1, window: '1m' });
    start(new CircuitBreakerRegistry(), { limiters: [limiter, healthy] });
    await tracer().startActiveSpan('request', async (span) => {
      await healthy.consume('k');
      await healthy.consume('k');
      span.end();
    });
    await limiter.consume('k');
    const metrics = await collect();
    const decisions = metrics.get('breakwater.ratelimit.decisions');
    expect(
      value(decisions, {
        'breakwater.limiter.name': 'healthy',
        'breakwater.ratelimit.decision': 'allowed',
      }),
    ).toBe(1);
    expect(
      value(decisions, {
        'breakwater.limiter.name': 'healthy',
        'breakwater.ratelimit.decision': 'refused',
      }),
    ).toBe(1);
    expect(
      value(metrics.get('breakwater.ratelimit.store.errors'), { 'breakwater.limiter.name': 'api' }),
    ).toBe(1);
    expect(
      value(metrics.get('breakwater.ratelimit.store.fallback'), {
        'breakwater.limiter.name': 'api',
      }),
    ).toBe(1);
    expect(
      value(metrics.get('breakwater.ratelimit.store.fallback'), {
        'breakwater.limiter.name': 'healthy',
      }),
    ).toBe(0);
    expect(spans.getFinishedSpans()[0]!.events.map((e) => e.name)).toEqual([
      'breakwater.ratelimit.refused',
    ]);
  });
});

describe('instrument: options', () => {
  const registry = new CircuitBreakerRegistry();
  const path = (options: unknown, target: unknown = registry): string => {
    try {
      instrument(target as CircuitBreakerRegistry, options as InstrumentOptions)?.stop();
    } catch (error) {
      if (isConfigError(error)) return error.path;
      throw error;
    }
    throw new Error('expected a ConfigError');
  };

  it('names the offending option', () => {
    expect(path({}, {})).toBe('registry');
    expect(path([])).toBe('options');
    expect(path({ meterProvider: {} })).toBe('meterProvider');
    expect(path({ tracer: 'yes' })).toBe('tracer');
    expect(path({ limiters: [{}] })).toBe('limiters[0]');
    expect(path({ policies: [] })).toBe('policies');
    expect(path({ policies: { x: {} } })).toBe('policies.x');
    expect(path({ policies: { '': retry() } })).toBe('policies');
    expect(path({ durations: 'no' })).toBe('durations');
    expect(path({ buckets: [1, 1] })).toBe('buckets[1]');
    expect(path({ maxBreakers: -1 })).toBe('maxBreakers');
    expect(path({ histogram: true })).toBe('histogram');
  });

  it('refuses a policy whose on() throws for the events it must report, leaving nothing subscribed', () => {
    const listeners = new Set<string>();
    const strict = {
      kind: 'retry',
      on(event: string) {
        if (event === 'giveUp') throw new Error(`unknown event ${event}`);
        listeners.add(event);
        return () => listeners.delete(event);
      },
    };
    expect(path({ meterProvider, policies: { strict } })).toBe('policies.strict');
    expect(listeners.size).toBe(0);
  });

  it('uses the global meter provider by default', () => {
    expect(() => instrument(registry).stop()).not.toThrow();
    expect(trace.getActiveSpan()).toBeUndefined();
  });
});
