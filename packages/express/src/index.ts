export { circuitBreaker } from './circuit-breaker';
export { breakerErrors } from './breaker-errors';
export type { BreakerRequest, CircuitBreakerMiddlewareOptions } from './circuit-breaker';
export { rateLimit } from './rate-limit';
export type {
  RateLimitedRequest,
  RateLimitHandler,
  RateLimitMiddleware,
  RateLimitMiddlewareOptions,
} from './rate-limit';
export { healthRoutes } from './health-routes';
export type { HealthRoutesMiddleware, HealthRoutesMiddlewareOptions } from './health-routes';
export { expressRateLimitStore, ExpressRateLimitStore } from './express-rate-limit-store';
export type {
  ExpressRateLimitClientInfo,
  ExpressRateLimitInitOptions,
  ExpressRateLimitStoreOptions,
} from './express-rate-limit-store';
export { loadShed } from './load-shed';
export type { LoadShedMiddleware } from './load-shed';
