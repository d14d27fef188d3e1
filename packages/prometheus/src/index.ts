export { collectMetrics } from './collect-metrics';
export type {
  CallOutcome,
  CollectMetricsOptions,
  MetricsCollector,
  PrometheusRegistry,
} from './collect-metrics';
export { metricsHandler } from './metrics-handler';
