export { circuitBreaker } from './circuit-breaker';
export type { CircuitBreakerMiddlewareOptions } from './circuit-breaker';
export { rateLimit } from './rate-limit';
export type {
  RateLimitHandler,
  RateLimitMiddleware,
  RateLimitMiddlewareOptions,
} from './rate-limit';
export { healthRoutes } from './health-routes';
export type { HealthRoutesMiddleware, HealthRoutesMiddlewareOptions } from './health-routes';
export { loadShed } from './load-shed';
export type { LoadShedMiddleware } from './load-shed';
