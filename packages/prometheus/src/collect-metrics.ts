import {
  ConfigError,
  checkBreakerRegistry,
  durationBucketsOption,
  isTimeoutError,
  rateLimitersOption,
  type CircuitBreaker,
  type CircuitBreakerRegistry,
  type CircuitState,
  type RateLimiter,
} from '@breakwater/core';
import {
  Counter,
  Gauge,
  Histogram,
  register as defaultRegister,
  type OpenMetricsContentType,
  type PrometheusContentType,
  type Registry,
} from 'prom-client';
import { Durations } from './internal/durations';
import { checkRegister } from './internal/check-register';

/** A prom-client registry of either content type. */
export type PrometheusRegistry = Registry<PrometheusContentType> | Registry<OpenMetricsContentType>;

/** Options of {@link collectMetrics}. */
export interface CollectMetricsOptions {
  /** The prom-client registry the metrics are registered in. @defaultValue prom-client's `register` */
  register?: PrometheusRegistry;
  /** Prepended to every metric name. @defaultValue `'breakwater_'` */
  prefix?: string;
  /** Rate limiters to report (decisions, store errors, store fallback). @defaultValue `[]` */
  limiters?: readonly RateLimiter[];
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
}

/** What {@link collectMetrics} returns. */
export interface MetricsCollector {
  /** The names of the metrics registered, prefix included. */
  readonly metricNames: readonly string[];
  /** Removes every listener and unregisters the metrics; calling it again does nothing. */
  stop(): void;
}

/** Outcomes of a call through a breaker, as the `outcome` label of the call metrics. */
export type CallOutcome = 'success' | 'failure' | 'timeout' | 'rejected' | 'ignored';

const OWNER = 'collectMetrics';
const KNOWN_OPTIONS = new Set(['register', 'prefix', 'limiters', 'buckets', 'durations']);
const STATES: readonly CircuitState[] = ['closed', 'open', 'half_open', 'forced_open', 'disabled'];
/** Transitions a breaker makes on its own: exported from 0 so that `increase()` sees the first. */
const AUTOMATIC_TRANSITIONS: readonly [CircuitState, CircuitState][] = [
  ['closed', 'open'],
  ['open', 'half_open'],
  ['half_open', 'open'],
  ['half_open', 'closed'],
];
const PREFIX_PATTERN = /^([a-zA-Z_:][a-zA-Z0-9_:]*)?$/;

/** Counts and durations of one breaker; written by its listeners, read at scrape time. */
class BreakerSeries {
  success = 0;
  failure = 0;
  timeout = 0;
  rejected = 0;
  ignored = 0;
  readonly successDurations: Durations;
  readonly failureDurations: Durations;
  readonly timeoutDurations: Durations;
  /** Transition counts by `from` then `to`. */
  readonly transitions = new Map<CircuitState, Map<CircuitState, number>>();
  readonly off: () => void;

  constructor(
    readonly breaker: CircuitBreaker,
    bounds: readonly number[],
    private readonly durations: boolean,
  ) {
    this.successDurations = new Durations(bounds);
    this.failureDurations = new Durations(bounds);
    this.timeoutDurations = new Durations(bounds);
    for (const [from, to] of AUTOMATIC_TRANSITIONS) this.countTransition(from, to, 0);
    const onStateChange = breaker.on('stateChange', ({ from, to }) =>
      this.countTransition(from, to, 1),
    );
    if (!durations) {
      this.off = onStateChange;
      return;
    }
    const offs = [
      onStateChange,
      breaker.on('success', ({ durationMs }) => {
        this.success++;
        this.successDurations.observe(durationMs);
      }),
      breaker.on('failure', ({ error, durationMs }) => {
        if (isTimeoutError(error)) {
          this.timeout++;
          this.timeoutDurations.observe(durationMs);
        } else {
          this.failure++;
          this.failureDurations.observe(durationMs);
        }
      }),
      breaker.on('rejected', () => {
        this.rejected++;
      }),
      breaker.on('ignored', () => {
        this.ignored++;
      }),
    ];
    this.off = () => {
      for (const off of offs) off();
    };
  }

  /** Calls by outcome: counted by the listeners, or read from the breaker's totals. */
  counts(): Record<CallOutcome, number> {
    if (this.durations) {
      const { success, failure, timeout, rejected, ignored } = this;
      return { success, failure, timeout, rejected, ignored };
    }
    const t = this.breaker.totals();
    return {
      success: t.successes,
      failure: t.failures - t.timeouts,
      timeout: t.timeouts,
      rejected: t.rejected,
      ignored: t.ignored,
    };
  }

  private countTransition(from: CircuitState, to: CircuitState, n: number): void {
    let byTarget = this.transitions.get(from);
    if (byTarget === undefined)
      this.transitions.set(from, (byTarget = new Map<CircuitState, number>()));
    byTarget.set(to, (byTarget.get(to) ?? 0) + n);
  }
}

/** Decision and store-error counts of one limiter. */
class LimiterSeries {
  allowed = 0;
  refused = 0;
  storeErrors = 0;
  readonly off: () => void;

  constructor(readonly limiter: RateLimiter) {
    const offs = [
      limiter.on('decision', ({ decision }) => {
        if (decision.allowed) this.allowed++;
        else this.refused++;
      }),
      limiter.on('storeFailure', () => {
        this.storeErrors++;
      }),
    ];
    this.off = () => {
      for (const off of offs) off();
    };
  }
}

/** The shape prom-client keeps a histogram's series in (read by its own exporter). */
interface HistogramEntry {
  labels: Record<string, string>;
  bucketValues: Record<number, number>;
  sum: number;
  count: number;
}

/**
 * Exports the state, calls, durations and transitions of every breaker of `registry` (breakers
 * added later included, removed ones dropped), and the decisions and store health of `limiters`,
 * as Prometheus metrics in a prom-client registry.
 *
 * Calls are counted in plain numbers by lean listeners and handed to prom-client only when
 * Prometheus scrapes; states are read at scrape time, so an elapsed open time shows as
 * `half_open` without traffic. Label values come only from breaker and limiter names.
 *
 * @throws ConfigError when an option is invalid, when two limiters share a name, or when the
 * register already holds one of the metrics (collectMetrics called twice with the same prefix)
 * @example
 * ```ts
 * import { collectMetrics, metricsHandler } from '@breakwater/prometheus';
 *
 * const registry = new CircuitBreakerRegistry();
 * const collector = collectMetrics(registry, { limiters: [apiLimiter] });
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
    if (!KNOWN_OPTIONS.has(key)) {
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
  const durations = options.durations ?? true;
  if (typeof durations !== 'boolean') {
    throw new ConfigError(OWNER, 'durations', durations, 'must be a boolean');
  }

  const names = {
    state: `${prefix}circuit_state`,
    calls: `${prefix}calls_total`,
    duration: `${prefix}call_duration_seconds`,
    transitions: `${prefix}state_transitions_total`,
    decisions: `${prefix}ratelimit_decisions_total`,
    storeErrors: `${prefix}store_errors_total`,
    fallback: `${prefix}store_fallback_active`,
  };
  const metricNames = Object.values(names).filter((name) => durations || name !== names.duration);
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
  const limiterSeries = limiters.map((limiter) => new LimiterSeries(limiter));
  const track = (breaker: CircuitBreaker): void => {
    breakers.get(breaker.name)?.off();
    breakers.set(breaker.name, new BreakerSeries(breaker, bounds, durations));
  };
  const untrack = (breaker: CircuitBreaker): void => {
    const series = breakers.get(breaker.name);
    if (series === undefined || series.breaker !== breaker) return;
    series.off();
    breakers.delete(breaker.name);
  };
  for (const breaker of registry.list()) track(breaker);
  const offAdd = registry.on('add', ({ breaker }) => track(breaker));
  const offRemove = registry.on('remove', ({ breaker }) => untrack(breaker));

  const registers = [register];
  const registered: [name: string, metric: Counter | Gauge | Histogram][] = [];
  try {
    const state: Gauge<'breaker' | 'state'> = new Gauge({
      name: names.state,
      help: 'Circuit breaker state: 1 for the current state, 0 for the others.',
      labelNames: ['breaker', 'state'],
      registers,
      collect() {
        state.reset();
        for (const [name, series] of breakers) {
          const current = series.breaker.state;
          for (const s of STATES) state.set({ breaker: name, state: s }, s === current ? 1 : 0);
        }
      },
    });
    registered.push([names.state, state]);

    const calls: Counter<'breaker' | 'outcome'> = new Counter({
      name: names.calls,
      help: 'Calls through a circuit breaker by outcome (success, failure, timeout, rejected, ignored).',
      labelNames: ['breaker', 'outcome'],
      registers,
      collect() {
        calls.reset();
        for (const [breaker, s] of breakers) {
          const c = s.counts();
          calls.inc({ breaker, outcome: 'success' }, c.success);
          calls.inc({ breaker, outcome: 'failure' }, c.failure);
          calls.inc({ breaker, outcome: 'timeout' }, c.timeout);
          calls.inc({ breaker, outcome: 'rejected' }, c.rejected);
          calls.inc({ breaker, outcome: 'ignored' }, c.ignored);
        }
      },
    });
    registered.push([names.calls, calls]);

    if (durations) {
      const duration: Histogram<'breaker' | 'outcome'> = new Histogram({
        name: names.duration,
        help: 'Duration of calls admitted by a circuit breaker, by outcome (success, failure, timeout).',
        labelNames: ['breaker', 'outcome'],
        buckets: [...bounds],
        registers,
        collect() {
          const entries: Record<string, HistogramEntry> = {};
          const add = (breaker: string, outcome: CallOutcome, d: Durations): void => {
            const bucketValues: Record<number, number> = {};
            bounds.forEach((bound, i) => (bucketValues[bound] = d.perBucket[i] as number));
            entries[`${breaker}\u0000${outcome}`] = {
              labels: { breaker, outcome },
              bucketValues,
              sum: d.sum,
              count: d.count,
            };
          };
          for (const [breaker, s] of breakers) {
            add(breaker, 'success', s.successDurations);
            add(breaker, 'failure', s.failureDurations);
            add(breaker, 'timeout', s.timeoutDurations);
          }
          (duration as unknown as { hashMap: Record<string, HistogramEntry> }).hashMap = entries;
        },
      });
      registered.push([names.duration, duration]);
    }

    const transitions: Counter<'breaker' | 'from' | 'to'> = new Counter({
      name: names.transitions,
      help: 'Circuit breaker state transitions.',
      labelNames: ['breaker', 'from', 'to'],
      registers,
      collect() {
        transitions.reset();
        for (const [breaker, s] of breakers) {
          for (const [from, byTarget] of s.transitions) {
            for (const [to, n] of byTarget) transitions.inc({ breaker, from, to }, n);
          }
        }
      },
    });
    registered.push([names.transitions, transitions]);

    const decisions: Counter<'limiter' | 'decision'> = new Counter({
      name: names.decisions,
      help: 'Rate limiter decisions (allowed, refused).',
      labelNames: ['limiter', 'decision'],
      registers,
      collect() {
        decisions.reset();
        for (const s of limiterSeries) {
          decisions.inc({ limiter: s.limiter.name, decision: 'allowed' }, s.allowed);
          decisions.inc({ limiter: s.limiter.name, decision: 'refused' }, s.refused);
        }
      },
    });
    registered.push([names.decisions, decisions]);

    const storeErrors: Counter<'limiter'> = new Counter({
      name: names.storeErrors,
      help: 'Failed or timed-out calls of a rate limiter to its store.',
      labelNames: ['limiter'],
      registers,
      collect() {
        storeErrors.reset();
        for (const s of limiterSeries) storeErrors.inc({ limiter: s.limiter.name }, s.storeErrors);
      },
    });
    registered.push([names.storeErrors, storeErrors]);

    const fallback: Gauge<'limiter'> = new Gauge({
      name: names.fallback,
      help: '1 while a rate limiter decides without its primary store (its onStoreFailure policy), else 0.',
      labelNames: ['limiter'],
      registers,
      collect() {
        fallback.reset();
        for (const s of limiterSeries) {
          fallback.set(
            { limiter: s.limiter.name },
            s.limiter.health().store === 'fallback' ? 1 : 0,
          );
        }
      },
    });
    registered.push([names.fallback, fallback]);
  } catch (error) {
    stopAll();
    throw error;
  }

  let stopped = false;
  function stopAll(): void {
    offAdd();
    offRemove();
    for (const series of breakers.values()) series.off();
    breakers.clear();
    for (const series of limiterSeries) series.off();
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

function prefixOption(value: unknown): string {
  if (value === undefined) return 'breakwater_';
  if (typeof value !== 'string' || !PREFIX_PATTERN.test(value)) {
    throw new ConfigError(
      OWNER,
      'prefix',
      value,
      'must be a valid start of a Prometheus metric name (letters, digits, _ and :, not starting with a digit)',
    );
  }
  return value;
}
