// Rate-limit store
export { RedisRateLimitStore } from './redis-rate-limit-store';
export type { RedisRateLimitStoreOptions } from './redis-rate-limit-store';

// Client and errors
export { createRedisClient, failFastRedisOptions } from './create-redis-client';
export { RedisUnavailableError, isRedisUnavailableError } from './redis-unavailable-error';
export { RedisReplyError, isRedisReplyError } from './redis-reply-error';

// Shared circuit-breaker state
export { RedisBreakerStore } from './redis-breaker-store';
export type { RedisBreakerStoreOptions } from './redis-breaker-store';
