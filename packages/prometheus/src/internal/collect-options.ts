import { ConfigError } from '@breakwater/core';
import { Registry } from 'prom-client';
import type { PrometheusRegistry } from './check-register';

/** The owner named in option errors. */
export const OWNER = 'collectMetrics';

const PREFIX_PATTERN = /^([a-zA-Z_:][a-zA-Z0-9_:]*)?$/;

const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

const RESERVED_LABELS = new Set([
  'breaker',
  'outcome',
  'state',
  'from',
  'to',
  'limiter',
  'decision',
  'policy',
  'reason',
  'name',
  'le',
  'quantile',
]);

const MAX_LABEL_VALUE_LENGTH = 1024;

export function prefixOption(value: unknown): string {
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

export function labelsOption(value: unknown): Readonly<Record<string, string>> {
  if (value === undefined) return {};
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new ConfigError(OWNER, 'labels', value, 'must be an object of label names to strings');
  }
  const labels: Record<string, string> = {};
  for (const [name, labelValue] of Object.entries(value as Record<string, unknown>)) {
    if (!LABEL_NAME.test(name) || name.startsWith('__') || RESERVED_LABELS.has(name)) {
      throw new ConfigError(
        OWNER,
        'labels',
        name,
        `must have valid Prometheus label names, not starting with __ and other than ${[...RESERVED_LABELS].join(', ')}`,
      );
    }
    if (typeof labelValue !== 'string' || labelValue.length > MAX_LABEL_VALUE_LENGTH) {
      throw new ConfigError(
        OWNER,
        `labels.${name}`,
        labelValue,
        `must be a string of at most ${MAX_LABEL_VALUE_LENGTH} characters`,
      );
    }
    labels[name] = labelValue;
  }
  return Object.freeze(labels);
}

export function exemplarsOption(
  value: unknown,
  register: PrometheusRegistry,
  durations: boolean,
): (() => unknown) | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'function') {
    throw new ConfigError(OWNER, 'exemplars', value, 'must be a function returning labels');
  }
  if (register.contentType !== Registry.OPENMETRICS_CONTENT_TYPE) {
    throw new ConfigError(
      OWNER,
      'exemplars',
      value,
      'needs an OpenMetrics register (register.setContentType(Registry.OPENMETRICS_CONTENT_TYPE)): ' +
        'the Prometheus text format carries no exemplars',
    );
  }
  if (!durations) {
    throw new ConfigError(
      OWNER,
      'exemplars',
      value,
      'needs durations: true (exemplars go on the histogram)',
    );
  }
  return value as () => unknown;
}
