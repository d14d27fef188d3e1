import type { FallbackPolicy } from './fallback';
import { neverAbortedSignal } from '../internal/never-aborted';
import { ConfigError } from '../errors';

/**
 * Anything with the `execute(fn, signal?)` contract: every {@link Policy}, a {@link CircuitBreaker},
 * a {@link FallbackPolicy} and a {@link Pipeline}.
 */
export interface PolicyLike {
  execute<T>(
    fn: (signal: AbortSignal) => PromiseLike<T> | T,
    signal?: AbortSignal,
  ): Promise<unknown>;
}

/** The values a policy may resolve to besides the call's own result (a fallback's `R`). */
export type ExtraResult<P> =
  P extends FallbackPolicy<infer R> ? R : P extends Pipeline<infer R> ? R : never;

/** The union of {@link ExtraResult} over a list of policies. */
export type ExtraResults<Ps extends readonly unknown[]> = {
  [K in keyof Ps]: ExtraResult<Ps[K]>;
}[number];

/**
 * Policies composed into one; `R` is what its fallbacks may resolve to (`never` without one,
 * in which case a pipeline is itself a {@link Policy}).
 */
export class Pipeline<R = never> {
  /** The composed policies, outermost first. */
  readonly policies: readonly PolicyLike[];
  private readonly outer: PolicyLike | undefined;
  private readonly inner: PolicyLike | undefined;
  /** Marks the extra result type; never set. */
  private readonly extra?: R;

  constructor(policies: readonly PolicyLike[]) {
    policies.forEach((policy, index) => {
      if (
        (typeof policy !== 'object' && typeof policy !== 'function') ||
        policy === null ||
        typeof (policy as { execute?: unknown }).execute !== 'function'
      ) {
        throw new ConfigError(
          'pipeline',
          `policies[${index}]`,
          policy,
          'must have an execute(fn, signal) method',
        );
      }
    });
    this.policies = Object.freeze([...policies]);
    // A pipeline of n policies is (p0, (p1, (..., pn-1))): one closure per level and call.
    this.outer = policies[0];
    this.inner =
      policies.length > 2
        ? new Pipeline(policies.slice(1))
        : policies.length === 2
          ? policies[1]
          : undefined;
  }

  /**
   * Runs `fn` through every policy, outermost first, passing one AbortSignal down: each policy
   * hands the signal it received (or, for a timeout, the call's own) to the next.
   */
  execute<T>(
    fn: (signal: AbortSignal) => PromiseLike<T> | T,
    signal?: AbortSignal,
  ): Promise<T | R> {
    const outer = this.outer;
    if (outer === undefined) {
      try {
        return Promise.resolve(fn(signal ?? neverAbortedSignal));
      } catch (error) {
        return Promise.reject(error);
      }
    }
    const inner = this.inner;
    if (inner === undefined) return outer.execute(fn, signal) as Promise<T | R>;
    return outer.execute((s) => inner.execute(fn, s), signal) as Promise<T | R>;
  }
}

/**
 * Composes policies left to right, outermost first, into one policy.
 *
 * The result type follows from the policies: `execute` resolves to the call's own type, joined
 * with the value type of any {@link fallback} in the chain.
 *
 * @throws ConfigError when an argument has no `execute` method
 * @example
 * ```ts
 * const policy = pipeline(fallback(null), retry({ maxAttempts: 3 }), breaker, timeout(2_000));
 * const user = await policy.execute((signal) => fetchUser(id, signal)); // User | null
 * ```
 */
export function pipeline<const Ps extends readonly PolicyLike[]>(
  ...policies: Ps
): Pipeline<ExtraResults<Ps>> {
  return new Pipeline<ExtraResults<Ps>>(policies);
}
