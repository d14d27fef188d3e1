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
  type InstrumentedPolicyKind,
  type RateLimiter,
} from '@breakwater/core';
import { Counter, Gauge, register as defaultRegister, type Histogram } from 'prom-client';
import { checkRegister, type PrometheusRegistry } from './internal/check-register';
import { DurationHistogram, type DurationSeries } from './internal/duration-histogram';
import { PolicyCounts } from './internal/policy-counts';
import { exemplarsOption, labelsOption, OWNER, prefixOption } from './internal/collect-options';
import { BreakerSeries, LimiterSeries } from './internal/series';

export type { CallOutcome } from './internal/series';

export type { PrometheusRegistry } from './internal/check-register';

/** Options of {@link collectMetrics}. */
export interface CollectMetricsOptions {
  /** The prom-client registry the metrics are registered in. @defaultValue prom-client's `register` */
  register?: PrometheusRegistry;
  /** Prepended to every metric name. @defaultValue `'breakwater_'` */
  prefix?: string;
  /** Rate limiters to report (decisions, store errors, store fallback). @defaultValue `[]` */
  limiters?: readonly RateLimiter[];
  /**
   * Policies to report, by the name their series carry: `retry()`, `fallback()`, `bulkhead()`,
   * `timeout()`, and any load shedder or concurrency limiter (an object with
   * `on('rejected', ...)`, optionally `on('limitChanged', ...)` and a `snapshot()` with numeric
   * `limit` and `inFlight`). A metric family is registered only when a policy of its kind is given.
   * @defaultValue `{}`
   */
  policies?: Readonly<Record<string, InstrumentablePolicy>>;
  /**
   * Static labels added to every series (`{ service: 'checkout', region: 'eu' }`). Names must be
   * valid Prometheus label names other than the ones the metrics use themselves.
   * @defaultValue `{}`
   */
  labels?: Readonly<Record<string, string>>;
  /**
   * Upper bounds, in seconds, of the call-duration histogram buckets (increasing).
   * @defaultValue `[0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]`
   */
  buckets?: readonly number[];
  /**
   * Export `call_duration_seconds`. Durations need two clock reads and an event per call; without
   * them, call counts are read from each breaker's totals at scrape time and the call path pays
   * only an increment.
   * @defaultValue true
   */
  durations?: boolean;
  /**
   * Exemplars for the duration histogram: called at the end of each call, in its context, it
   * returns the exemplar's labels (`{ trace_id }`, at most 128 characters in all) or `undefined`.
   * The latest exemplar of each bucket is exposed. Needs an OpenMetrics register (the only format
   * that carries exemplars) and `durations`. A hook that throws or returns anything else is
   * ignored for that call.
   * @defaultValue none
   * @example
   * ```ts
   * import { trace } from '@opentelemetry/api';
   * exemplars: () => {
   *   const context = trace.getActiveSpan()?.spanContext();
   *   return context === undefined ? undefined : { trace_id: context.traceId };
   * }
   * ```
   */
  exemplars?: () => Readonly<Record<string, string>> | undefined;
}

/** What {@link collectMetrics} returns. */
export interface MetricsCollector {
  /** The names of the metrics registered, prefix included. */
  readonly metricNames: readonly string[];
  /** Removes every listener and unregisters the metrics; calling it again does nothing. */
  stop(): void;
}

/** Outcomes of a call through a breaker, as the `outcome` label of the call metrics. */

const KNOWN_OPTIONS = Object.keys({
  register: true,
  prefix: true,
  limiters: true,
  policies: true,
  labels: true,
  buckets: true,
  durations: true,
  exemplars: true,
} satisfies Record<keyof CollectMetricsOptions, true>);
const STATES: readonly CircuitState[] = ['closed', 'open', 'half_open', 'forced_open', 'disabled'];
/** Transitions a breaker makes on its own: exported from 0 so that `increase()` sees the first. */
/** Label names the metrics use themselves, which static labels must not take. */

/**
 * Exports the state, calls, durations and transitions of every breaker of `registry` (breakers
 * added later included, removed ones dropped), the decisions and store health of `limiters`, and
 * the events of `policies`, as Prometheus metrics in a prom-client registry.
 *
 * Calls are counted in plain numbers by lean listeners and handed to prom-client only when
 * Prometheus scrapes; states are read at scrape time, so an elapsed open time shows as
 * `half_open` without traffic. Label values come only from breaker, limiter and policy names and
 * the static `labels`. Only prom-client's public API is used: the duration histogram is a metric
 * object registered with `registerMetric()` that answers `get()` like prom-client's own.
 *
 * @throws ConfigError when an option is invalid, when two limiters share a name, or when the
 * register already holds one of the metrics (collectMetrics called twice with the same prefix)
 * @example
 * ```ts
 * import { collectMetrics, metricsHandler } from '@breakwater/prometheus';
 *
 * const registry = new CircuitBreakerRegistry();
 * const collector = collectMetrics(registry, {
 *   limiters: [apiLimiter],
 *   policies: { 'upstream-retry': upstreamRetry },
 *   labels: { service: 'gateway' },
 * });
 * const metrics = metricsHandler();
 * app.get('/metrics', async (_req, res) => {
 *   const { status, headers, body } = await metrics();
 *   res.status(status).set(headers).send(body);
 * });
 * // at shutdown (or in tests): collector.stop();
 * ```
 */
export function collectMetrics(
  registry: CircuitBreakerRegistry,
  options: CollectMetricsOptions = {},
): MetricsCollector {
  checkBreakerRegistry(OWNER, registry);
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    throw new ConfigError(OWNER, 'options', options, 'must be an object');
  }
  for (const key of Object.keys(options)) {
    if (!KNOWN_OPTIONS.includes(key)) {
      throw new ConfigError(
        OWNER,
        key,
        (options as Record<string, unknown>)[key],
        'is not an option',
      );
    }
  }
  const register: PrometheusRegistry =
    options.register === undefined ? defaultRegister : checkRegister(OWNER, options.register);
  const prefix = prefixOption(options.prefix);
  const bounds = durationBucketsOption(OWNER, options.buckets);
  const limiters = rateLimitersOption(OWNER, options.limiters);
  const policies = policiesOption(OWNER, options.policies);
  const staticLabels = labelsOption(options.labels);
  const durations = options.durations ?? true;
  if (typeof durations !== 'boolean') {
    throw new ConfigError(OWNER, 'durations', durations, 'must be a boolean');
  }
  const exemplars = exemplarsOption(options.exemplars, register, durations);
  const kinds = new Set<InstrumentedPolicyKind>(policies.map(([, p]) => instrumentedPolicyKind(p)));

  const names = {
    state: `${prefix}circuit_state`,
    calls: `${prefix}calls_total`,
    duration: `${prefix}call_duration_seconds`,
    transitions: `${prefix}state_transitions_total`,
    decisions: `${prefix}ratelimit_decisions_total`,
    storeErrors: `${prefix}store_errors_total`,
    fallback: `${prefix}store_fallback_active`,
    retries: `${prefix}retries_total`,
    giveUps: `${prefix}retry_give_ups_total`,
    fallbacks: `${prefix}fallbacks_total`,
    bulkhead: `${prefix}bulkhead_rejections_total`,
    timeouts: `${prefix}timeouts_total`,
    loadShed: `${prefix}loadshed_rejected_total`,
    loadShedLimit: `${prefix}loadshed_limit`,
    loadShedInFlight: `${prefix}loadshed_in_flight`,
  };
  const kindOf: Partial<Record<keyof typeof names, InstrumentedPolicyKind>> = {
    retries: 'retry',
    giveUps: 'retry',
    fallbacks: 'fallback',
    bulkhead: 'bulkhead',
    timeouts: 'timeout',
    loadShed: 'load_shed',
    loadShedLimit: 'load_shed',
    loadShedInFlight: 'load_shed',
  };
  const wanted = (key: keyof typeof names): boolean => {
    const kind = kindOf[key];
    if (kind !== undefined) return kinds.has(kind);
    return durations || key !== 'duration';
  };
  const metricNames = (Object.keys(names) as (keyof typeof names)[])
    .filter(wanted)
    .map((key) => names[key]);
  for (const name of metricNames) {
    if (register.getSingleMetric(name) !== undefined) {
      throw new ConfigError(
        OWNER,
        'prefix',
        prefix,
        `must not name metrics the register already holds ("${name}" is already registered, ` +
          'typically by an earlier collectMetrics on this register with this prefix: stop() that ' +
          'collector first, or pass another prefix or register)',
      );
    }
  }

  const breakers = new Map<string, BreakerSeries>();
  const limiterSeries: LimiterSeries[] = [];
  const policyCounts: PolicyCounts[] = [];
  const track = (breaker: CircuitBreaker): void => {
    breakers.get(breaker.name)?.off();
    breakers.set(breaker.name, new BreakerSeries(breaker, bounds, durations, exemplars));
  };
  const untrack = (breaker: CircuitBreaker): void => {
    const series = breakers.get(breaker.name);
    if (series === undefined || series.breaker !== breaker) return;
    series.off();
    breakers.delete(breaker.name);
  };
  const offs: (() => void)[] = [];
  const registers = [register];
  const registered: [name: string, metric: Counter | Gauge | Histogram][] = [];
  const labelNames = (...own: string[]): string[] => [...Object.keys(staticLabels), ...own];
  const counter = (
    key: keyof typeof names,
    help: string,
    own: string[],
    fill: (inc: (labels: Record<string, string>, value: number) => void) => void,
  ): void => {
    if (!wanted(key)) return;
    const metric: Counter = new Counter({
      name: names[key],
      help,
      labelNames: labelNames(...own),
      registers,
      collect() {
        metric.reset();
        fill((labels, value) => metric.inc({ ...staticLabels, ...labels }, value));
      },
    });
    registered.push([names[key], metric]);
  };
  const gauge = (
    key: keyof typeof names,
    help: string,
    own: string[],
    fill: (set: (labels: Record<string, string>, value: number) => void) => void,
  ): void => {
    if (!wanted(key)) return;
    const metric: Gauge = new Gauge({
      name: names[key],
      help,
      labelNames: labelNames(...own),
      registers,
      collect() {
        metric.reset();
        fill((labels, value) => metric.set({ ...staticLabels, ...labels }, value));
      },
    });
    registered.push([names[key], metric]);
  };
  const policiesOf = (kind: InstrumentedPolicyKind): PolicyCounts[] =>
    policyCounts.filter((p) => p.kind === kind);

  try {
    for (const breaker of registry.list()) track(breaker);
    offs.push(
      registry.on('add', ({ breaker }) => track(breaker)),
      registry.on('remove', ({ breaker }) => untrack(breaker)),
    );
    for (const limiter of limiters) limiterSeries.push(new LimiterSeries(limiter));
    for (const [name, policy] of policies) {
      policyCounts.push(new PolicyCounts(name, policy, instrumentedPolicyKind(policy)));
    }

    gauge(
      'state',
      'Circuit breaker state: 1 for the current state, 0 for the others.',
      ['breaker', 'state'],
      (set) => {
        for (const [breaker, series] of breakers) {
          const current = series.breaker.state;
          for (const state of STATES) set({ breaker, state }, state === current ? 1 : 0);
        }
      },
    );
    counter(
      'calls',
      'Calls through a circuit breaker by outcome (success, failure, timeout, rejected, ignored).',
      ['breaker', 'outcome'],
      (inc) => {
        for (const [breaker, s] of breakers) {
          const c = s.counts();
          inc({ breaker, outcome: 'success' }, c.success);
          inc({ breaker, outcome: 'failure' }, c.failure);
          inc({ breaker, outcome: 'timeout' }, c.timeout);
          inc({ breaker, outcome: 'rejected' }, c.rejected);
          inc({ breaker, outcome: 'ignored' }, c.ignored);
        }
      },
    );
    if (durations) {
      const histogram = new DurationHistogram(
        names.duration,
        'Duration of calls admitted by a circuit breaker, by outcome (success, failure, timeout).',
        bounds,
        function* (): Iterable<DurationSeries> {
          for (const [breaker, s] of breakers) {
            yield [{ ...staticLabels, breaker, outcome: 'success' }, s.successDurations];
            yield [{ ...staticLabels, breaker, outcome: 'failure' }, s.failureDurations];
            yield [{ ...staticLabels, breaker, outcome: 'timeout' }, s.timeoutDurations];
          }
        },
      );
      const metric = histogram as unknown as Histogram;
      register.registerMetric(metric);
      registered.push([names.duration, metric]);
    }
    counter(
      'transitions',
      'Circuit breaker state transitions.',
      ['breaker', 'from', 'to'],
      (inc) => {
        for (const [breaker, s] of breakers) {
          for (const [from, byTarget] of s.transitions) {
            for (const [to, n] of byTarget) inc({ breaker, from, to }, n);
          }
        }
      },
    );
    counter(
      'decisions',
      'Rate limiter decisions (allowed, refused).',
      ['limiter', 'decision'],
      (inc) => {
        for (const s of limiterSeries) {
          inc({ limiter: s.limiter.name, decision: 'allowed' }, s.allowed);
          inc({ limiter: s.limiter.name, decision: 'refused' }, s.refused);
        }
      },
    );
    counter(
      'storeErrors',
      'Failed or timed-out calls of a rate limiter to its store.',
      ['limiter'],
      (inc) => {
        for (const s of limiterSeries) inc({ limiter: s.limiter.name }, s.storeErrors);
      },
    );
    gauge(
      'fallback',
      '1 while a rate limiter decides without its primary store (its onStoreFailure policy), else 0.',
      ['limiter'],
      (set) => {
        for (const s of limiterSeries) {
          set({ limiter: s.limiter.name }, s.limiter.health().store === 'fallback' ? 1 : 0);
        }
      },
    );
    counter('retries', 'Retries scheduled by a retry policy.', ['policy'], (inc) => {
      for (const p of policiesOf('retry')) inc({ policy: p.name }, p.events);
    });
    counter(
      'giveUps',
      'Retryable outcomes a retry policy did not retry, by reason (maxAttempts, budget, aborted).',
      ['policy', 'reason'],
      (inc) => {
        for (const p of policiesOf('retry')) {
          for (const [reason, n] of p.byReason) inc({ policy: p.name, reason }, n);
        }
      },
    );
    counter('fallbacks', 'Failures replaced by a fallback policy.', ['policy'], (inc) => {
      for (const p of policiesOf('fallback')) inc({ policy: p.name }, p.events);
    });
    counter(
      'bulkhead',
      'Calls a bulkhead rejected, by reason (full, queueTimeout).',
      ['policy', 'reason'],
      (inc) => {
        for (const p of policiesOf('bulkhead')) {
          for (const [reason, n] of p.byReason) inc({ policy: p.name, reason }, n);
        }
      },
    );
    counter(
      'timeouts',
      'Calls a timeout policy rejected after its time limit.',
      ['policy'],
      (inc) => {
        for (const p of policiesOf('timeout')) inc({ policy: p.name }, p.events);
      },
    );
    counter(
      'loadShed',
      'Calls or requests a load shedder or concurrency limiter rejected.',
      ['name'],
      (inc) => {
        for (const p of policiesOf('load_shed')) inc({ name: p.name }, p.events);
      },
    );
    gauge(
      'loadShedLimit',
      'Concurrency limit of a load shedder or concurrency limiter.',
      ['name'],
      (set) => {
        for (const p of policiesOf('load_shed')) {
          const { limit } = p.gauges();
          if (limit !== undefined) set({ name: p.name }, limit);
        }
      },
    );
    gauge(
      'loadShedInFlight',
      'Calls or requests a load shedder or concurrency limiter admitted and still running.',
      ['name'],
      (set) => {
        for (const p of policiesOf('load_shed')) {
          const { inFlight } = p.gauges();
          if (inFlight !== undefined) set({ name: p.name }, inFlight);
        }
      },
    );
  } catch (error) {
    stopAll();
    throw error;
  }

  let stopped = false;
  function stopAll(): void {
    for (const off of offs) off();
    for (const series of breakers.values()) series.off();
    breakers.clear();
    for (const series of limiterSeries) series.off();
    for (const counts of policyCounts) counts.off();
    for (const [name, metric] of registered) {
      if (register.getSingleMetric(name) === metric) register.removeSingleMetric(name);
    }
  }

  return {
    metricNames,
    stop() {
      if (stopped) return;
      stopped = true;
      stopAll();
    },
  };
}
