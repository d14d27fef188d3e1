export { collectMetrics } from './collect-metrics';
export type {
  CallOutcome,
  CollectMetricsOptions,
  MetricsCollector,
  PrometheusRegistry,
} from './collect-metrics';
export { metricsHandler } from './metrics-handler';
export { collectLoadShedMetrics } from './load-shed-metrics';
export type { LoadShedMetricsOptions, LoadShedSource } from './load-shed-metrics';
