export { BreakwaterModule } from './breakwater.module';
export type {
  BreakwaterHealthOptions,
  BreakwaterModuleAsyncOptions,
  BreakwaterModuleOptions,
  BreakwaterOptionsFactory,
  HttpRequestLike,
  NamedRateLimiterOptions,
  RouteRateLimitDefaults,
} from './breakwater-options.interface';
export {
  BREAKWATER_OPTIONS,
  BULKHEAD_METADATA,
  CIRCUIT_BREAKER_METADATA,
  RATE_LIMIT_METADATA,
  RETRY_METADATA,
  RateLimiters,
  SKIP_RATE_LIMIT_METADATA,
  TIMEOUT_METADATA,
  getBreakerToken,
  getRateLimiterToken,
} from './breakwater.constants';
export {
  InjectBreaker,
  InjectBreakwaterOptions,
  InjectRateLimiter,
  InjectRateLimiters,
} from './breakwater.decorators';
export { CircuitBreaker } from './circuit-breaker.decorator';
export type { CircuitBreakerDecoratorOptions } from './circuit-breaker.decorator';
export { RateLimit, SkipRateLimit } from './rate-limit.decorator';
export type { RateLimitOptions } from './rate-limit.decorator';
export { RateLimitGuard } from './rate-limit.guard';
export type { RateLimitRequestResponse } from './rate-limit.guard';
export { RateLimitedException } from './rate-limited.exception';
export { BreakwaterExceptionFilter } from './breakwater-exception.filter';
export { LoadShed, LOAD_SHED_METADATA } from './load-shed.decorator';
export type { LoadShedDecoratorOptions } from './load-shed.decorator';
export { LoadShedGuard } from './load-shed.guard';
export { LoadShedException } from './load-shed.exception';
export { Retry } from './retry.decorator';
export type { RetryDecoratorOptions } from './retry.decorator';
export { Timeout } from './timeout.decorator';
export type { TimeoutDecoratorOptions } from './timeout.decorator';
export { Bulkhead } from './bulkhead.decorator';
export type { BulkheadDecoratorOptions } from './bulkhead.decorator';
export { BreakwaterHttpException } from './breakwater-http.exception';
export { BreakwaterErrorsInterceptor } from './breakwater-errors.interceptor';
