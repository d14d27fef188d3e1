import { ConfigError } from '@breakwater/core';
import type { OpenMetricsContentType, PrometheusContentType, Registry } from 'prom-client';

/** A prom-client registry of either content type. */
export type PrometheusRegistry = Registry<PrometheusContentType> | Registry<OpenMetricsContentType>;

/** Checks by shape that `value` is a prom-client registry. */
export function checkRegister(owner: string, value: unknown): PrometheusRegistry {
  const candidate = value as Partial<
    Record<'metrics' | 'getSingleMetric' | 'removeSingleMetric' | 'registerMetric', unknown>
  > | null;
  if (
    typeof candidate !== 'object' ||
    candidate === null ||
    typeof candidate.metrics !== 'function' ||
    typeof candidate.getSingleMetric !== 'function' ||
    typeof candidate.removeSingleMetric !== 'function' ||
    typeof candidate.registerMetric !== 'function'
  ) {
    throw new ConfigError(owner, 'register', value, 'must be a prom-client Registry');
  }
  return value as PrometheusRegistry;
}
