// Errors
export {
  BreakwaterError,
  CircuitOpenError,
  TimeoutError,
  RateLimitError,
  BulkheadFullError,
  ConfigError,
  RegistryFullError,
  isBreakwaterError,
  isCircuitOpenError,
  isTimeoutError,
  isRateLimitError,
  isBulkheadFullError,
  isConfigError,
  isRegistryFullError,
  ConcurrencyLimitError,
  isConcurrencyLimitError,
} from './errors';
export type { BreakwaterErrorCode } from './errors';
export { isCircuitBreaker, isCircuitBreakerRegistry, isLoadShedder, isRateLimiter } from './brand';

// Time
export { parseDuration } from './time/duration';
export type { Duration, DurationString, DurationUnit } from './time/duration';
export { systemClock } from './time/clock';
export type { Clock } from './time/clock';
export type { Logger } from './internal/log';

// Circuit breaker
export { CircuitBreaker } from './breaker/circuit-breaker';
export type {
  BreakerPermit,
  CircuitBreakerEvents,
  CircuitBreakerOptions,
  CircuitBreakerSnapshot,
  CircuitBreakerStateJSON,
  CircuitBreakerTotals,
  CircuitState,
  HalfOpenOptions,
  OpenBackoffOptions,
  WindowOptions,
} from './breaker/circuit-breaker';
export { CircuitBreakerRegistry } from './breaker/registry';
export type {
  BreakerDefaults,
  CircuitBreakerRegistryEvents,
  CircuitBreakerRegistryOptions,
} from './breaker/registry';
export { MemoryBreakerStore } from './breaker/breaker-store';
export type {
  BreakerLink,
  BreakerScope,
  BreakerStore,
  ProbeClaim,
  ProbeOutcome,
  SharedBreaker,
  SharedBreakerSettings,
  SharedCircuitState,
  SharedCommand,
} from './breaker/breaker-store';

// Policies
export type { Policy } from './policy';
export { exponential, constant } from './policies/backoff';
export type { Backoff, ExponentialBackoffOptions, Jitter } from './policies/backoff';
export { retry, RetryPolicy, defaultRetryOn } from './policies/retry';
export type {
  GiveUpEvent,
  GiveUpReason,
  RetryEvent,
  RetryOptions,
  RetryOutcome,
} from './policies/retry';
export { RetryBudget } from './policies/retry-budget';
export type { RetryBudgetOptions } from './policies/retry-budget';
export { timeout, TimeoutPolicy } from './policies/timeout';
export type { TimeoutOptions } from './policies/timeout';
export { bulkhead, BulkheadPolicy } from './policies/bulkhead';
export type { BulkheadOptions } from './policies/bulkhead';
export { fallback, FallbackPolicy } from './policies/fallback';
export type { FallbackOptions } from './policies/fallback';
export { pipeline, Pipeline } from './policies/pipeline';
export type { ExtraResult, ExtraResults, PolicyLike } from './policies/pipeline';
export { adaptiveConcurrency, AdaptiveConcurrencyPolicy } from './policies/adaptive-concurrency';
export type {
  AdaptiveConcurrencyEvents,
  AdaptiveConcurrencyOptions,
  AdaptiveConcurrencySnapshot,
  ConcurrencyPermit,
} from './policies/adaptive-concurrency';
export type { AimdOptions } from './policies/limits/aimd';
export type { Gradient2Options } from './policies/limits/gradient2';
export type { LimitAlgorithmName } from './policies/limits/limit';
export type { VegasOptions } from './policies/limits/vegas';
export type { RetryPolicyEvents } from './policies/retry';
export type { FallbackPolicyEvents } from './policies/fallback';
export type { BulkheadPolicyEvents } from './policies/bulkhead';
export type { TimeoutPolicyEvents } from './policies/timeout';
export { createFetch } from './fetch/create-fetch';
export type { CreateFetchOptions, FetchFunction } from './fetch/create-fetch';
export { parseRetryAfter } from './fetch/retry-after';

// Rate limiting
export type {
  RateLimitAlgorithm,
  RateLimitRule,
  RateLimitDecision,
  RateLimitStore,
} from './rate-limit/rate-limit-store';
export { parseRate } from './rate-limit/rate';
export type { ParsedRate, Rate, RateSpec, RateString } from './rate-limit/rate';
export { RateLimiter } from './rate-limit/rate-limiter';
export type {
  RateLimiterEvents,
  RateLimiterHealth,
  RateLimiterOptions,
  StoreFailurePolicy,
} from './rate-limit/rate-limiter';
export { MemoryRateLimitStore } from './rate-limit/memory-rate-limit-store';
export type { MemoryRateLimitStoreOptions } from './rate-limit/memory-rate-limit-store';
export { FailoverRateLimitStore } from './rate-limit/failover-rate-limit-store';
export type {
  FailoverMemberHealth,
  FailoverRateLimitStoreOptions,
  StoreBreakerOptions,
} from './rate-limit/failover-rate-limit-store';

// HTTP: what every adapter writes (status codes, problem+json, headers, health, dashboard)
export {
  PROBLEM_JSON,
  circuitOpenResponse,
  errorResponse,
  jsonResponse,
  problemResponse,
  rateLimitedResponse,
  retryAfterSeconds,
} from './http/http-response';
export type { HttpResponse } from './http/http-response';
export { quotePolicyName, rateLimitHeaders } from './http/rate-limit-headers';
export type {
  HeaderTarget,
  RateLimitHeaderOptions,
  RateLimitHeadersDraft,
} from './http/rate-limit-headers';
export { breakerStatus, healthReport, isReady } from './http/health-report';
export type {
  HealthCheck,
  HealthReport,
  HealthReporter,
  HealthSources,
  HealthStatus,
} from './http/health-report';
export { HealthRoutes } from './http/health-routes';
export type {
  AuthorizeResult,
  HealthRouteResult,
  HealthRoutesOptions,
  SseStream,
} from './http/health-routes';
export { DASHBOARD_CSP, dashboardPage } from './http/dashboard-page';
export type { DashboardPageOptions } from './http/dashboard-page';
export {
  FORCED_OPEN_RETRY_AFTER_MS,
  RouteBreakers,
  RouteEntry,
  errorStatus,
} from './http/route-breakers';
export type { RouteBreakerOptions } from './http/route-breakers';
export { HttpRateLimit, RateLimitInfo } from './http/http-rate-limit';
export type {
  DynamicHttpRateLimitOptions,
  HttpRateLimitOptions,
  HttpRateLimitVerdict,
  RateLimitMessage,
} from './http/http-rate-limit';
export { addressKey } from './http/client-address';
export { LoadShedder, loadShedResponse } from './http/load-shed';
export type {
  LoadShedEvents,
  LoadShedLimitOptions,
  LoadShedOptions,
  LoadShedPermit,
  LoadShedPriority,
  LoadShedReason,
  LoadShedSnapshot,
} from './http/load-shed';
export { processPressure } from './http/process-pressure';
export type { PressureMonitor, PressureReading } from './http/process-pressure';
export type { HealthReportSources, LoadShedReporter } from './http/health-report';

// Observability: option checks shared by the metrics packages
export {
  DEFAULT_DURATION_BUCKETS,
  checkBreakerRegistry,
  durationBucketsOption,
  instrumentedPolicyKind,
  listenToPolicy,
  loadShedGauges,
  policiesOption,
  rateLimitersOption,
} from './observability/metrics-sources';
export type {
  InstrumentablePolicy,
  InstrumentedPolicyKind,
  PolicyEventPayload,
} from './observability/metrics-sources';
