import {
  ConfigError,
  checkBreakerRegistry,
  durationBucketsOption,
  instrumentedPolicyKind,
  policiesOption,
  rateLimitersOption,
  type CircuitBreaker,
  type CircuitBreakerRegistry,
  type CircuitState,
  type InstrumentablePolicy,
  type RateLimiter,
} from '@breakwater/core';
import {
  metrics,
  trace,
  type Attributes,
  type BatchObservableResult,
  type Counter,
  type Histogram,
  type Meter,
  type MeterProvider,
  type Observable,
  type Tracer,
} from '@opentelemetry/api';
import { PolicySeries } from './internal/policy-series';
import { BreakerSeries, LimiterSeries } from './internal/series';

/** Options of {@link instrument}. */
export interface InstrumentOptions {
  /** Where the instruments are created. @defaultValue the global `metrics.getMeterProvider()` */
  meterProvider?: MeterProvider;
  /**
   * Span events: by default they are added to the active span (rejections, retries, fallbacks,
   * transitions). A `Tracer` additionally records a transition that happens outside any span as
   * its own short span `breakwater.circuit.transition`; `false` turns span events off.
   * @defaultValue span events on the active span only
   */
  tracer?: Tracer | false;
  /** Rate limiters to report (decisions, store errors, store fallback). @defaultValue `[]` */
  limiters?: readonly RateLimiter[];
  /**
   * Policies to report, by the name their series carry: `retry()`, `fallback()`, `bulkhead()`,
   * `timeout()`, and any load shedder or concurrency limiter: an object with `on('rejected', ...)`,
   * optionally `on('limitChanged', ...)` and a `snapshot()` with numeric `limit` and `inFlight`.
   * @defaultValue `{}`
   */
  policies?: Readonly<Record<string, InstrumentablePolicy>>;
  /**
   * Record `breakwater.circuit.call.duration`. Durations cost an event per call; without them
   * calls are still counted, read from each breaker's totals at collection time.
   * @defaultValue true
   */
  durations?: boolean;
  /**
   * Upper bounds, in seconds, of the duration histogram's buckets (an advice the SDK's views may
   * override). @defaultValue `[0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]`
   */
  buckets?: readonly number[];
  /**
   * Most breakers reported under their own name; breakers beyond it (per-route or per-tenant
   * names) share the name `_other`, so attribute cardinality stays bounded.
   * @defaultValue 100
   */
  maxBreakers?: number;
}

/** What {@link instrument} returns. */
export interface Instrumentation {
  /** Removes every listener and observable callback; calling it again does nothing. */
  stop(): void;
}

/** Every instrument name {@link instrument} creates (see the README for units and attributes). */
export const INSTRUMENT_NAMES = Object.freeze({
  state: 'breakwater.circuit.state',
  calls: 'breakwater.circuit.calls',
  duration: 'breakwater.circuit.call.duration',
  transitions: 'breakwater.circuit.transitions',
  decisions: 'breakwater.ratelimit.decisions',
  storeErrors: 'breakwater.ratelimit.store.errors',
  storeFallback: 'breakwater.ratelimit.store.fallback',
  retries: 'breakwater.retry.retries',
  giveUps: 'breakwater.retry.give_ups',
  fallbacks: 'breakwater.fallback.invocations',
  bulkheadRejections: 'breakwater.bulkhead.rejections',
  timeouts: 'breakwater.timeout.timeouts',
  loadShedRejections: 'breakwater.loadshed.rejections',
  loadShedLimit: 'breakwater.loadshed.limit',
  loadShedInFlight: 'breakwater.loadshed.in_flight',
});

/** Attribute keys of the instruments and span events. */
export const ATTRIBUTES = Object.freeze({
  breaker: 'breakwater.breaker.name',
  outcome: 'breakwater.call.outcome',
  state: 'breakwater.circuit.state',
  from: 'breakwater.transition.from',
  to: 'breakwater.transition.to',
  reason: 'breakwater.reason',
  limiter: 'breakwater.limiter.name',
  decision: 'breakwater.ratelimit.decision',
  policy: 'breakwater.policy.name',
});

/** The name shared by breakers past `maxBreakers`. */
export const OTHER_BREAKERS = '_other';

const OWNER = 'instrument';
const KNOWN_OPTIONS: Record<keyof InstrumentOptions, true> = {
  meterProvider: true,
  tracer: true,
  limiters: true,
  policies: true,
  durations: true,
  buckets: true,
  maxBreakers: true,
};
const STATES: readonly CircuitState[] = ['closed', 'open', 'half_open', 'forced_open', 'disabled'];
const METER_NAME = '@breakwater/opentelemetry';
const METER_VERSION = '0.1.0';

/** The instruments shared by every series. */
export interface Instruments {
  readonly duration: Histogram | undefined;
  readonly transitions: Counter;
  readonly decisions: Counter;
  readonly storeErrors: Counter;
  readonly retries: Counter;
  readonly giveUps: Counter;
  readonly fallbacks: Counter;
  readonly bulkheadRejections: Counter;
  readonly timeouts: Counter;
  readonly loadShedRejections: Counter;
  /** Adds a span event to the active span, when span events are on. */
  readonly spanEvent: ((name: string, attributes: Attributes) => void) | undefined;
}

/**
 * Records the state, calls, durations and transitions of every breaker of `registry` (breakers
 * added later included, removed ones dropped), the decisions and store health of `limiters`, and
 * the events of `policies`, as OpenTelemetry metrics; adds span events (rejections, retries,
 * fallbacks, transitions) to the active span.
 *
 * States and call counts are observed at collection time from each breaker's state and totals,
 * so the call path pays only for durations (one event per call, `durations: false` to skip).
 * Attribute values come only from breaker, limiter and policy names; breakers past
 * `maxBreakers` share the name `_other`.
 *
 * @throws ConfigError when an option is invalid or a policy cannot be subscribed to
 * @example
 * ```ts
 * import { instrument } from '@breakwater/opentelemetry';
 *
 * const registry = new CircuitBreakerRegistry();
 * const instrumentation = instrument(registry, {
 *   limiters: [apiLimiter],
 *   policies: { 'upstream-retry': upstreamRetry, 'db-bulkhead': dbBulkhead },
 * });
 * // at shutdown: instrumentation.stop();
 * ```
 */
export function instrument(
  registry: CircuitBreakerRegistry,
  options: InstrumentOptions = {},
): Instrumentation {
  checkBreakerRegistry(OWNER, registry);
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    throw new ConfigError(OWNER, 'options', options, 'must be an object');
  }
  for (const key of Object.keys(options)) {
    if (!(key in KNOWN_OPTIONS)) {
      throw new ConfigError(
        OWNER,
        key,
        (options as Record<string, unknown>)[key],
        'is not an option',
      );
    }
  }
  const provider = meterProviderOption(options.meterProvider);
  const tracer = tracerOption(options.tracer);
  const limiters = rateLimitersOption(OWNER, options.limiters);
  const policies = policiesOption(OWNER, options.policies);
  const durations = options.durations ?? true;
  if (typeof durations !== 'boolean') {
    throw new ConfigError(OWNER, 'durations', durations, 'must be a boolean');
  }
  const buckets = durationBucketsOption(OWNER, options.buckets);
  const maxBreakers = options.maxBreakers ?? 100;
  if (!Number.isInteger(maxBreakers) || maxBreakers < 0) {
    throw new ConfigError(OWNER, 'maxBreakers', maxBreakers, 'must be an integer >= 0');
  }

  const meter = provider.getMeter(METER_NAME, METER_VERSION);
  const instruments = createInstruments(meter, durations, buckets, tracer !== false);
  const tracerForTransitions = tracer === false ? undefined : tracer;

  const breakers = new Map<CircuitBreaker, BreakerSeries>();
  const named = new Set<string>();
  const labelOf = (breaker: CircuitBreaker): string => {
    if (named.has(breaker.name)) return breaker.name;
    if (named.size >= maxBreakers) return OTHER_BREAKERS;
    named.add(breaker.name);
    return breaker.name;
  };
  const track = (breaker: CircuitBreaker): void => {
    if (breakers.has(breaker)) return;
    breakers.set(
      breaker,
      new BreakerSeries(breaker, labelOf(breaker), instruments, tracerForTransitions),
    );
  };
  const untrack = (breaker: CircuitBreaker): void => {
    const series = breakers.get(breaker);
    if (series === undefined) return;
    series.off();
    breakers.delete(breaker);
    if (series.label !== OTHER_BREAKERS) named.delete(series.label);
  };

  const limiterSeries: LimiterSeries[] = [];
  const policySeries: PolicySeries[] = [];
  const offs: (() => void)[] = [];
  const stopAll = (): void => {
    for (const off of offs) off();
    for (const series of breakers.values()) series.off();
    breakers.clear();
    for (const series of limiterSeries) series.off();
    for (const series of policySeries) series.off();
  };
  try {
    for (const breaker of registry.list()) track(breaker);
    offs.push(
      registry.on('add', ({ breaker }) => track(breaker)),
      registry.on('remove', ({ breaker }) => untrack(breaker)),
    );
    for (const limiter of limiters) limiterSeries.push(new LimiterSeries(limiter, instruments));
    for (const [name, policy] of policies) {
      policySeries.push(
        new PolicySeries(name, policy, instrumentedPolicyKind(policy), instruments),
      );
    }
    offs.push(observe(meter, breakers, limiterSeries, policySeries));
  } catch (error) {
    stopAll();
    throw error;
  }

  let stopped = false;
  return {
    stop() {
      if (stopped) return;
      stopped = true;
      stopAll();
    },
  };
}

function createInstruments(
  meter: Meter,
  durations: boolean,
  buckets: readonly number[],
  spanEvents: boolean,
): Instruments {
  const counter = (name: string, unit: string, description: string): Counter =>
    meter.createCounter(name, { unit, description });
  return {
    duration: durations
      ? meter.createHistogram(INSTRUMENT_NAMES.duration, {
          unit: 's',
          description: 'Duration of calls admitted by a circuit breaker, by outcome.',
          advice: { explicitBucketBoundaries: [...buckets] },
        })
      : undefined,
    transitions: counter(
      INSTRUMENT_NAMES.transitions,
      '{transition}',
      'Circuit breaker state transitions.',
    ),
    decisions: counter(INSTRUMENT_NAMES.decisions, '{decision}', 'Rate limiter decisions.'),
    storeErrors: counter(
      INSTRUMENT_NAMES.storeErrors,
      '{error}',
      'Failed or timed-out calls of a rate limiter to its store.',
    ),
    retries: counter(INSTRUMENT_NAMES.retries, '{retry}', 'Retries scheduled by a retry policy.'),
    giveUps: counter(
      INSTRUMENT_NAMES.giveUps,
      '{call}',
      'Retryable outcomes a retry policy did not retry, by reason.',
    ),
    fallbacks: counter(
      INSTRUMENT_NAMES.fallbacks,
      '{call}',
      'Failures replaced by a fallback policy.',
    ),
    bulkheadRejections: counter(
      INSTRUMENT_NAMES.bulkheadRejections,
      '{call}',
      'Calls a bulkhead rejected, by reason (full, queueTimeout).',
    ),
    timeouts: counter(
      INSTRUMENT_NAMES.timeouts,
      '{call}',
      'Calls a timeout policy rejected after its time limit.',
    ),
    loadShedRejections: counter(
      INSTRUMENT_NAMES.loadShedRejections,
      '{call}',
      'Calls or requests a load shedder or concurrency limiter rejected.',
    ),
    spanEvent: spanEvents ? addSpanEvent : undefined,
  };
}

function addSpanEvent(name: string, attributes: Attributes): void {
  trace.getActiveSpan()?.addEvent(name, attributes);
}

/** The observable instruments, read in one batch callback; returns its removal. */
function observe(
  meter: Meter,
  breakers: Map<CircuitBreaker, BreakerSeries>,
  limiters: readonly LimiterSeries[],
  policies: readonly PolicySeries[],
): () => void {
  const state = meter.createObservableGauge(INSTRUMENT_NAMES.state, {
    unit: '1',
    description: 'Circuit breaker state: 1 for the current state, 0 for the others.',
  });
  const calls = meter.createObservableCounter(INSTRUMENT_NAMES.calls, {
    unit: '{call}',
    description:
      'Calls through a circuit breaker by outcome (success, failure, timeout, rejected, ignored).',
  });
  const fallback = meter.createObservableGauge(INSTRUMENT_NAMES.storeFallback, {
    unit: '1',
    description: '1 while a rate limiter decides without its primary store, else 0.',
  });
  const limit = meter.createObservableGauge(INSTRUMENT_NAMES.loadShedLimit, {
    unit: '{call}',
    description: 'Concurrency limit of a load shedder or concurrency limiter.',
  });
  const inFlight = meter.createObservableGauge(INSTRUMENT_NAMES.loadShedInFlight, {
    unit: '{call}',
    description:
      'Calls or requests a load shedder or concurrency limiter has admitted and running.',
  });
  const observables: Observable[] = [state, calls, fallback, limit, inFlight];
  const callback = (result: BatchObservableResult): void => {
    const totals = new Map<string, [number, number, number, number, number]>();
    const states = new Map<string, CircuitState>();
    for (const series of breakers.values()) {
      const t = series.breaker.totals();
      const sum = totals.get(series.label) ?? [0, 0, 0, 0, 0];
      sum[0] += t.successes;
      sum[1] += t.failures - t.timeouts;
      sum[2] += t.timeouts;
      sum[3] += t.rejected;
      sum[4] += t.ignored;
      totals.set(series.label, sum);
      if (series.label !== OTHER_BREAKERS) states.set(series.label, series.breaker.state);
    }
    for (const [label, current] of states) {
      for (const s of STATES) {
        result.observe(state, s === current ? 1 : 0, {
          [ATTRIBUTES.breaker]: label,
          [ATTRIBUTES.state]: s,
        });
      }
    }
    for (const [label, sum] of totals) {
      const outcomes = ['success', 'failure', 'timeout', 'rejected', 'ignored'] as const;
      outcomes.forEach((outcome, i) =>
        result.observe(calls, sum[i] as number, {
          [ATTRIBUTES.breaker]: label,
          [ATTRIBUTES.outcome]: outcome,
        }),
      );
    }
    for (const series of limiters) {
      result.observe(fallback, series.limiter.health().store === 'fallback' ? 1 : 0, {
        [ATTRIBUTES.limiter]: series.limiter.name,
      });
    }
    for (const series of policies) {
      const gauges = series.gauges();
      if (gauges === undefined) continue;
      if (gauges.limit !== undefined) result.observe(limit, gauges.limit, series.attributes);
      if (gauges.inFlight !== undefined) {
        result.observe(inFlight, gauges.inFlight, series.attributes);
      }
    }
  };
  meter.addBatchObservableCallback(callback, observables);
  return () => meter.removeBatchObservableCallback(callback, observables);
}

function meterProviderOption(value: unknown): MeterProvider {
  if (value === undefined) return metrics.getMeterProvider();
  if (
    typeof value !== 'object' ||
    value === null ||
    typeof (value as { getMeter?: unknown }).getMeter !== 'function'
  ) {
    throw new ConfigError(OWNER, 'meterProvider', value, 'must be a MeterProvider');
  }
  return value as MeterProvider;
}

function tracerOption(value: unknown): Tracer | false | undefined {
  if (value === undefined || value === false) return value;
  if (
    typeof value !== 'object' ||
    value === null ||
    typeof (value as { startSpan?: unknown }).startSpan !== 'function'
  ) {
    throw new ConfigError(OWNER, 'tracer', value, 'must be a Tracer or false');
  }
  return value as Tracer;
}
