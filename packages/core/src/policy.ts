/**
 * The contract every Breakwater policy implements: a circuit breaker, retry, timeout, bulkhead
 * and fallback all run `fn` with one AbortSignal passed down, so they compose with
 * {@link pipeline}.
 */
export interface Policy {
  /**
   * Runs `fn` under the policy.
   * @param fn - the protected call; receives the signal it must honour
   * @param signal - the caller's signal; aborting it cancels the call
   */
  execute<T>(fn: (signal: AbortSignal) => PromiseLike<T> | T, signal?: AbortSignal): Promise<T>;
}
