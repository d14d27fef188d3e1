import type { CircuitBreaker } from './breaker/circuit-breaker';
import type { CircuitBreakerRegistry } from './breaker/registry';
import type { LoadShedder } from './http/load-shed';
import type { RetryBudget } from './policies/retry-budget';
import type { FailoverRateLimitStore } from './rate-limit/failover-rate-limit-store';
import type { MemoryRateLimitStore } from './rate-limit/memory-rate-limit-store';
import type { RateLimiter } from './rate-limit/rate-limiter';
import { ConfigError } from './errors';

/**
 * The contract version of each kind of object another copy of the library may be handed: bump
 * one when a method or event that code outside the class relies on changes incompatibly, so
 * that a copy with the old contract refuses the new objects by name instead of failing later.
 */
const CONTRACTS = {
  CircuitBreaker: 1,
  CircuitBreakerRegistry: 1,
  RateLimiter: 1,
  LoadShedder: 1,
  RetryBudget: 1,
  MemoryRateLimitStore: 1,
  FailoverRateLimitStore: 1,
} as const;

/** A kind of object recognised by its marker. */
export type BrandKind = keyof typeof CONTRACTS;

/** The class of each kind. */
interface Branded {
  CircuitBreaker: CircuitBreaker;
  CircuitBreakerRegistry: CircuitBreakerRegistry;
  RateLimiter: RateLimiter;
  LoadShedder: LoadShedder<never>;
  RetryBudget: RetryBudget;
  MemoryRateLimitStore: MemoryRateLimitStore;
  FailoverRateLimitStore: FailoverRateLimitStore;
}

// Registered symbols: every copy of the library, ESM or CommonJS, gets the same key.
const KEYS = Object.fromEntries(
  Object.keys(CONTRACTS).map((kind) => [kind, Symbol.for(`breakwater.${kind}`)]),
) as Record<BrandKind, symbol>;

/**
 * Marks `type`'s prototype as `kind` at this copy's contract version (once, at load: no cost
 * per instance or per call). @internal
 */
export function brand(type: abstract new (...args: never[]) => object, kind: BrandKind): void {
  Object.defineProperty(type.prototype, KEYS[kind], { value: CONTRACTS[kind] });
}

/** The contract version `value` carries for `kind`, or `undefined` when it carries none. */
function markOf(value: unknown, kind: BrandKind): unknown {
  return (typeof value === 'object' || typeof value === 'function') && value !== null
    ? (value as Record<symbol, unknown>)[KEYS[kind]]
    : undefined;
}

/** Whether `value` carries `kind`'s marker at this copy's contract version. @internal */
export function hasBrand<K extends BrandKind>(value: unknown, kind: K): value is Branded[K] {
  return markOf(value, kind) === CONTRACTS[kind];
}

/**
 * Whether an option holds a `kind` (from this copy or any compatible one): `true` when it does,
 * `false` when it carries no marker (the caller then checks it as options or refuses it).
 * @throws ConfigError at `path` when it was made by a copy with another contract version
 * @internal
 */
export function isBranded<K extends BrandKind>(
  owner: string,
  path: string,
  value: unknown,
  kind: K,
): value is Branded[K] {
  const mark = markOf(value, kind);
  if (mark === undefined) return false;
  if (mark === CONTRACTS[kind]) return true;
  throw new ConfigError(
    owner,
    path,
    `a ${kind}`,
    `must be a ${kind} of a compatible @breakwater/core (it speaks contract ${typeof mark === 'number' ? mark : typeof mark}, ` +
      `this copy ${CONTRACTS[kind]}): install one major version of @breakwater/core`,
  );
}

/**
 * Whether `value` is a {@link CircuitBreaker}. Checks a marker, not `instanceof`, so it also
 * recognises a breaker made by another installed copy of the library or its other module format
 * (the CommonJS build when this is the ESM one, and the reverse), as long as that copy speaks
 * the same contract version (see the README, "Objects from another copy").
 */
export const isCircuitBreaker = (value: unknown): value is CircuitBreaker =>
  hasBrand(value, 'CircuitBreaker');

/**
 * Whether `value` is a {@link CircuitBreakerRegistry}, from this or any compatible copy of the
 * library (a marker, not `instanceof`; see {@link isCircuitBreaker}).
 */
export const isCircuitBreakerRegistry = (value: unknown): value is CircuitBreakerRegistry =>
  hasBrand(value, 'CircuitBreakerRegistry');

/**
 * Whether `value` is a {@link RateLimiter}, from this or any compatible copy of the library (a
 * marker, not `instanceof`; see {@link isCircuitBreaker}).
 */
export const isRateLimiter = (value: unknown): value is RateLimiter =>
  hasBrand(value, 'RateLimiter');

/**
 * Whether `value` is a {@link LoadShedder}, from this or any compatible copy of the library (a
 * marker, not `instanceof`; see {@link isCircuitBreaker}).
 */
export const isLoadShedder = <Req = unknown>(value: unknown): value is LoadShedder<Req> =>
  hasBrand(value, 'LoadShedder');
