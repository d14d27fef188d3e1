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
} from './errors';
export type { BreakwaterErrorCode } from './errors';

// Time
export { parseDuration } from './duration';
export type { Duration, DurationUnit } from './duration';
export { systemClock } from './clock';
export type { Clock } from './clock';
export type { Logger } from './logger';

// Circuit breaker
export { CircuitBreaker } from './circuit-breaker';
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
} from './circuit-breaker';
export { CircuitBreakerRegistry } from './circuit-breaker-registry';
export type {
  BreakerDefaults,
  CircuitBreakerRegistryEvents,
  CircuitBreakerRegistryOptions,
} from './circuit-breaker-registry';
export { MemoryBreakerStore } from './breaker-store';
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
} from './breaker-store';

// Policies
export type { Policy } from './policy';
export { exponential, constant } from './backoff';
export type { Backoff, ExponentialBackoffOptions, Jitter } from './backoff';
export { retry, RetryPolicy, defaultRetryOn } from './retry';
export type { GiveUpEvent, GiveUpReason, RetryEvent, RetryOptions, RetryOutcome } from './retry';
export { RetryBudget } from './retry-budget';
export type { RetryBudgetOptions } from './retry-budget';
export { timeout, TimeoutPolicy } from './timeout';
export type { TimeoutOptions } from './timeout';
export { bulkhead, BulkheadPolicy } from './bulkhead';
export type { BulkheadOptions } from './bulkhead';
export { fallback, FallbackPolicy } from './fallback';
export type { FallbackOptions } from './fallback';
export { pipeline, Pipeline } from './pipeline';
export type { ExtraResult, ExtraResults, PolicyLike } from './pipeline';
export { createFetch } from './fetch';
export type { CreateFetchOptions, FetchFunction } from './fetch';

// Rate limiting
export type {
  RateLimitAlgorithm,
  RateLimitRule,
  RateLimitDecision,
  RateLimitStore,
} from './rate-limit-store';
export { parseRate } from './rate';
export type { ParsedRate, Rate, RateSpec, RateString } from './rate';
export { RateLimiter } from './rate-limiter';
export type {
  RateLimiterEvents,
  RateLimiterHealth,
  RateLimiterOptions,
  StoreFailurePolicy,
} from './rate-limiter';
export { MemoryRateLimitStore } from './memory-rate-limit-store';
export type { MemoryRateLimitStoreOptions } from './memory-rate-limit-store';
export { FailoverRateLimitStore } from './failover-rate-limit-store';
export type {
  FailoverMemberHealth,
  FailoverRateLimitStoreOptions,
  StoreBreakerOptions,
} from './failover-rate-limit-store';

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
export type { RateLimitHeaderOptions } from './http/rate-limit-headers';
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
export { dashboardPage } from './http/dashboard-page';
export type { DashboardPageOptions } from './http/dashboard-page';
export { RouteBreakers } from './http/route-breakers';
export type { RouteBreakerOptions } from './http/route-breakers';
export { HttpRateLimit } from './http/http-rate-limit';
export type { HttpRateLimitOptions, HttpRateLimitVerdict } from './http/http-rate-limit';
