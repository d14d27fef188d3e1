import { ConfigError } from '@breakwater/core';
import { Counter, Gauge, register as defaultRegister } from 'prom-client';
import type { MetricsCollector, PrometheusRegistry } from './collect-metrics';
import { checkRegister } from './internal/check-register';

/**
 * What the load-shedding metrics read: a `LoadShedder` (from any adapter's `loadShed().shedder` or
 * Nest's guard) or an `AdaptiveConcurrencyPolicy`.
 */
export interface LoadShedSource {
  readonly name: string;
  snapshot(): { limit: number | null; inFlight: number; rejected: number };
}

/** Options of {@link collectLoadShedMetrics}. */
export interface LoadShedMetricsOptions {
  /** The prom-client registry the metrics are registered in. @defaultValue prom-client's `register` */
  register?: PrometheusRegistry;
  /** Prepended to every metric name. @defaultValue `'breakwater_'` */
  prefix?: string;
}

const OWNER = 'collectLoadShedMetrics';
const KNOWN = { register: true, prefix: true } as const satisfies Record<
  keyof LoadShedMetricsOptions,
  true
>;
const PREFIX_PATTERN = /^([a-zA-Z_:][a-zA-Z0-9_:]*)?$/;

/**
 * Exports load shedding and adaptive concurrency to Prometheus, read from each source's
 * `snapshot()` at scrape time (no listener, nothing on the request path):
 * `breakwater_loadshed_limit{name}`, `breakwater_loadshed_in_flight{name}` and
 * `breakwater_loadshed_rejected_total{name}`.
 *
 * @throws ConfigError when an option is invalid, a source has no `name` and `snapshot()`, or the
 * register already holds one of the metrics
 * @example
 * ```ts
 * const shed = loadShed({ maxEventLoopDelayMs: 200 });
 * app.use(shed);
 * collectLoadShedMetrics([shed.shedder, dbLimit], { register });
 * ```
 */
export function collectLoadShedMetrics(
  sources: readonly LoadShedSource[],
  options: LoadShedMetricsOptions = {},
): MetricsCollector {
  if (!Array.isArray(sources)) {
    throw new ConfigError(OWNER, 'sources', sources, 'must be an array of load shedders');
  }
  sources.forEach((source: unknown, index) => {
    const candidate = source as Partial<LoadShedSource> | null;
    if (typeof candidate?.name !== 'string' || typeof candidate.snapshot !== 'function') {
      throw new ConfigError(OWNER, `sources[${index}]`, source, 'must have a name and snapshot()');
    }
  });
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    throw new ConfigError(OWNER, 'options', options, 'must be an object');
  }
  for (const key of Object.keys(options)) {
    if (!(key in KNOWN)) {
      throw new ConfigError(
        OWNER,
        key,
        (options as Record<string, unknown>)[key],
        'is not an option',
      );
    }
  }
  const register =
    options.register === undefined ? defaultRegister : checkRegister(OWNER, options.register);
  const prefix = options.prefix ?? 'breakwater_';
  if (typeof prefix !== 'string' || !PREFIX_PATTERN.test(prefix)) {
    throw new ConfigError(OWNER, 'prefix', prefix, 'must be a valid Prometheus metric name prefix');
  }
  const names = {
    limit: `${prefix}loadshed_limit`,
    inFlight: `${prefix}loadshed_in_flight`,
    rejected: `${prefix}loadshed_rejected_total`,
  };
  for (const name of Object.values(names)) {
    if (register.getSingleMetric(name) !== undefined) {
      throw new ConfigError(
        OWNER,
        'prefix',
        prefix,
        `must not name metrics the register already holds ("${name}")`,
      );
    }
  }
  const list: LoadShedSource[] = [...(sources as readonly LoadShedSource[])];
  const registers = [register];
  const limit: Gauge<'name'> = new Gauge({
    name: names.limit,
    help: 'The adaptive concurrency limit of a load shedder or adaptive concurrency policy.',
    labelNames: ['name'],
    registers,
    collect() {
      limit.reset();
      for (const source of list) {
        const value = source.snapshot().limit;
        if (value !== null) limit.set({ name: source.name }, value);
      }
    },
  });
  const inFlight: Gauge<'name'> = new Gauge({
    name: names.inFlight,
    help: 'Requests or calls admitted and not yet finished.',
    labelNames: ['name'],
    registers,
    collect() {
      inFlight.reset();
      for (const source of list) inFlight.set({ name: source.name }, source.snapshot().inFlight);
    },
  });
  const rejected: Counter<'name'> = new Counter({
    name: names.rejected,
    help: 'Requests shed or calls rejected by the concurrency limit or a process threshold.',
    labelNames: ['name'],
    registers,
    collect() {
      rejected.reset();
      for (const source of list) rejected.inc({ name: source.name }, source.snapshot().rejected);
    },
  });
  let stopped = false;
  return {
    metricNames: Object.values(names),
    stop() {
      if (stopped) return;
      stopped = true;
      for (const name of Object.values(names)) register.removeSingleMetric(name);
    },
  };
}
