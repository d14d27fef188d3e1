import { ConfigError } from '../errors';
import type { CircuitBreakerRegistry } from '../breaker/registry';
import type { RateLimiter } from '../rate-limit/rate-limiter';

/**
 * Default upper bounds, in seconds, of call-duration histograms (the metrics packages' default).
 */
export const DEFAULT_DURATION_BUCKETS: readonly number[] = Object.freeze([
  0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
]);

/**
 * Checks the shape of the breaker registry a metrics exporter follows (for the metrics packages).
 * @throws ConfigError at `registry` when it is not a CircuitBreakerRegistry
 */
export function checkBreakerRegistry(owner: string, registry: unknown): CircuitBreakerRegistry {
  const candidate = registry as Partial<Record<'list' | 'on', unknown>> | null;
  if (
    typeof candidate !== 'object' ||
    candidate === null ||
    typeof candidate.list !== 'function' ||
    typeof candidate.on !== 'function'
  ) {
    throw new ConfigError(owner, 'registry', registry, 'must be a CircuitBreakerRegistry');
  }
  return registry as CircuitBreakerRegistry;
}

/**
 * Checks a `limiters` option: an array of rate limiters with unique names (they name series).
 * @throws ConfigError at `limiters`, `limiters[i]` or `limiters[i].name`
 */
export function rateLimitersOption(owner: string, value: unknown): readonly RateLimiter[] {
  if (value === undefined) return [];
  if (!Array.isArray(value)) {
    throw new ConfigError(owner, 'limiters', value, 'must be an array of RateLimiter');
  }
  const seen = new Set<string>();
  value.forEach((limiter: unknown, i) => {
    const candidate = limiter as Partial<Record<'name' | 'on' | 'health', unknown>> | null;
    if (
      typeof candidate !== 'object' ||
      candidate === null ||
      typeof candidate.name !== 'string' ||
      typeof candidate.on !== 'function' ||
      typeof candidate.health !== 'function'
    ) {
      throw new ConfigError(owner, `limiters[${i}]`, limiter, 'must be a RateLimiter');
    }
    if (seen.has(candidate.name)) {
      throw new ConfigError(
        owner,
        `limiters[${i}].name`,
        candidate.name,
        'must be unique among the limiters (it names their series)',
      );
    }
    seen.add(candidate.name);
  });
  return value as RateLimiter[];
}

/**
 * Checks a `buckets` option: increasing, finite, positive bounds in seconds.
 * @throws ConfigError at `buckets` or `buckets[i]`
 */
export function durationBucketsOption(owner: string, value: unknown): readonly number[] {
  if (value === undefined) return DEFAULT_DURATION_BUCKETS;
  if (!Array.isArray(value) || value.length === 0) {
    throw new ConfigError(owner, 'buckets', value, 'must be a non-empty array of seconds');
  }
  let previous = 0;
  value.forEach((bound: unknown, i) => {
    if (typeof bound !== 'number' || !Number.isFinite(bound) || bound <= previous) {
      throw new ConfigError(
        owner,
        `buckets[${i}]`,
        bound,
        'must be a finite number of seconds, greater than 0 and than the bucket before',
      );
    }
    previous = bound;
  });
  return Object.freeze([...(value as number[])]);
}
