import { hasBrand, isBranded } from '../brand';
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
 * Checks the breaker registry a metrics exporter follows (for the metrics packages): a
 * registry of this or any compatible copy of the library, recognised by its marker.
 * @throws ConfigError at `registry` when it is not a CircuitBreakerRegistry
 */
export function checkBreakerRegistry(owner: string, registry: unknown): CircuitBreakerRegistry {
  if (!isBranded(owner, 'registry', registry, 'CircuitBreakerRegistry')) {
    throw new ConfigError(owner, 'registry', registry, 'must be a CircuitBreakerRegistry');
  }
  return registry;
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
    if (!isBranded(owner, `limiters[${i}]`, limiter, 'RateLimiter')) {
      throw new ConfigError(owner, `limiters[${i}]`, limiter, 'must be a RateLimiter');
    }
    if (seen.has(limiter.name)) {
      throw new ConfigError(
        owner,
        `limiters[${i}].name`,
        limiter.name,
        'must be unique among the limiters (it names their series)',
      );
    }
    seen.add(limiter.name);
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

/**
 * A policy the metrics packages can report: anything with `on(event, listener)` returning an
 * unsubscribe function. Core's policies say what they are in `kind`; any other object is taken
 * for a load shedder or concurrency limiter (`rejected` and `limitChanged` events, and an
 * optional `snapshot()` with numeric `limit` and `inFlight`).
 */
export interface InstrumentablePolicy {
  /** `'retry'`, `'fallback'`, `'bulkhead'` or `'timeout'` for core's policies. */
  readonly kind?: string;
  /** Subscribes to an event; returns the function that unsubscribes. */
  on(event: never, listener: never): unknown;
  /** The current limit and calls in flight of a load shedder, read at collection time. */
  snapshot?(): unknown;
}

/** What a policy is, as far as metrics go. */
export type InstrumentedPolicyKind = 'retry' | 'fallback' | 'bulkhead' | 'timeout' | 'load_shed';

/** A policy event's payload, as the metrics packages read it. */
export type PolicyEventPayload = Readonly<Record<string, unknown>>;

const CORE_KINDS = new Set<string>(['retry', 'fallback', 'bulkhead', 'timeout']);
const MAX_POLICY_NAME_LENGTH = 200;

/** Core's policies by their `kind`; any other object is a load shedder. */
export function instrumentedPolicyKind(policy: InstrumentablePolicy): InstrumentedPolicyKind {
  const kind = policy.kind;
  return typeof kind === 'string' && CORE_KINDS.has(kind)
    ? (kind as InstrumentedPolicyKind)
    : 'load_shed';
}

/**
 * Checks a `policies` option: an object mapping names (1 to 200 characters) to policies.
 * @throws ConfigError at `policies` or `policies.<name>`
 */
export function policiesOption(owner: string, value: unknown): [string, InstrumentablePolicy][] {
  if (value === undefined) return [];
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new ConfigError(
      owner,
      'policies',
      value,
      'must be an object mapping a name to a policy (retry, fallback, bulkhead, timeout or load shedder)',
    );
  }
  const entries = Object.entries(value as Record<string, unknown>);
  for (const [name, policy] of entries) {
    if (name.length === 0 || name.length > MAX_POLICY_NAME_LENGTH) {
      throw new ConfigError(
        owner,
        'policies',
        name,
        `must have names of 1 to ${MAX_POLICY_NAME_LENGTH} characters`,
      );
    }
    if (
      typeof policy !== 'object' ||
      policy === null ||
      typeof (policy as { on?: unknown }).on !== 'function'
    ) {
      throw new ConfigError(
        owner,
        `policies.${name}`,
        policy,
        'must be a policy with an on(event, listener) method',
      );
    }
    // Breakers and limiters have `on` too, but their series come from the registry and `limiters`.
    if (hasBrand(policy, 'CircuitBreaker') || hasBrand(policy, 'RateLimiter')) {
      throw new ConfigError(
        owner,
        `policies.${name}`,
        hasBrand(policy, 'RateLimiter') ? 'a RateLimiter' : 'a CircuitBreaker',
        'must be a retry, fallback, bulkhead, timeout or load shedder (breakers are reported ' +
          'through the registry, rate limiters through limiters)',
      );
    }
  }
  return entries as [string, InstrumentablePolicy][];
}

type Listen = (event: string, listener: (payload: PolicyEventPayload) => void) => unknown;

/**
 * Subscribes `listeners` (by event name) through the policy's own `on`; returns the function
 * that unsubscribes them all. An `optional` event the policy refuses is skipped.
 * @throws ConfigError at `policies.<name>` when the policy refuses a required event (nothing is
 * left subscribed)
 */
export function listenToPolicy(
  owner: string,
  name: string,
  policy: InstrumentablePolicy,
  listeners: Readonly<Record<string, (payload: PolicyEventPayload) => void>>,
  optional: readonly string[] = [],
): () => void {
  const offs: (() => void)[] = [];
  const offAll = (): void => {
    for (const off of offs) off();
  };
  for (const [event, listener] of Object.entries(listeners)) {
    let off: unknown;
    try {
      off = (policy.on as unknown as Listen).call(policy, event, listener);
    } catch (error) {
      if (optional.includes(event)) continue;
      offAll();
      throw new ConfigError(
        owner,
        `policies.${name}`,
        policy,
        `must accept on('${event}', listener) (${String(error)})`,
      );
    }
    if (typeof off === 'function') offs.push(off as () => void);
  }
  return offAll;
}

/**
 * The limit and calls in flight of a load shedder's `snapshot()`, each `undefined` when absent,
 * not a finite number, or when the snapshot throws.
 */
export function loadShedGauges(policy: InstrumentablePolicy): {
  limit: number | undefined;
  inFlight: number | undefined;
} {
  let limit: number | undefined;
  let inFlight: number | undefined;
  if (typeof policy.snapshot === 'function') {
    try {
      const snapshot = policy.snapshot() as { limit?: unknown; inFlight?: unknown } | null;
      if (typeof snapshot?.limit === 'number' && Number.isFinite(snapshot.limit)) {
        limit = snapshot.limit;
      }
      if (typeof snapshot?.inFlight === 'number' && Number.isFinite(snapshot.inFlight)) {
        inFlight = snapshot.inFlight;
      }
    } catch {
      // A failing snapshot leaves the gauges out of this collection.
    }
  }
  return { limit, inFlight };
}
