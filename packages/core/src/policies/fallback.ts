import { Listeners } from '../internal/listeners';
import { neverAbortedSignal } from '../internal/never-aborted';
import { checkKnownKeys, checkObject, functionOption } from '../internal/validate';

/** Options of {@link fallback}. */
export interface FallbackOptions {
  /** Whether an error is replaced by the fallback; `false` rethrows it. @defaultValue every error */
  shouldHandle?: (error: unknown) => boolean;
}

/** Events of a {@link FallbackPolicy}, for metrics and tracing (see {@link FallbackPolicy.on}). */
export interface FallbackPolicyEvents {
  /** A failure is being replaced by the fallback. */
  fallback: { readonly error: unknown };
}

const OWNER = 'fallback';

/**
 * Replaces a failure with a value.
 *
 * Unlike the other policies, its `execute` resolves to `T | R`: the call's own result or the
 * fallback's. {@link pipeline} carries `R` into the type of the composed policy. An abort by the
 * caller's own signal is rethrown, not replaced: the caller has stopped waiting.
 */
export class FallbackPolicy<R> {
  /** What this policy is, for instrumentation. */
  readonly kind = 'fallback' as const;
  private readonly handler: (error: unknown) => R | PromiseLike<R>;
  private readonly shouldHandle: ((error: unknown) => boolean) | undefined;
  private listeners: Listeners<FallbackPolicyEvents> | undefined = undefined;

  /** @throws ConfigError when an option is invalid */
  constructor(
    valueOrFn: R | ((error: unknown) => R | PromiseLike<R>),
    options: FallbackOptions = {},
  ) {
    checkObject(OWNER, 'options', options);
    checkKnownKeys(OWNER, '', options, ['shouldHandle']);
    this.shouldHandle =
      options.shouldHandle === undefined
        ? undefined
        : functionOption<(error: unknown) => boolean>(OWNER, 'shouldHandle', options.shouldHandle);
    this.handler =
      typeof valueOrFn === 'function'
        ? (valueOrFn as (error: unknown) => R | PromiseLike<R>)
        : () => valueOrFn;
  }

  /**
   * Subscribes to an event; returns the function that unsubscribes. A listener that throws never
   * affects a call.
   * @example
   * ```ts
   * policy.on('fallback', ({ error }) => log.warn({ error }, 'served the cached price'));
   * ```
   */
  on<K extends keyof FallbackPolicyEvents>(
    event: K,
    listener: (event: FallbackPolicyEvents[K]) => void,
  ): () => void {
    this.listeners ??= new Listeners<FallbackPolicyEvents>();
    return this.listeners.add(event, listener);
  }

  /**
   * Runs `fn`, returning the fallback when it fails.
   * @throws the error of `fn` when `shouldHandle` refuses it or the caller aborted
   * @throws the error of the fallback function when it fails too
   */
  async execute<T>(
    fn: (signal: AbortSignal) => PromiseLike<T> | T,
    signal?: AbortSignal,
  ): Promise<T | R> {
    try {
      return await fn(signal ?? neverAbortedSignal);
    } catch (error) {
      if (signal !== undefined && signal.aborted) throw error;
      if (this.shouldHandle !== undefined && !this.shouldHandle(error)) throw error;
      this.listeners?.emit('fallback', { error });
      return await this.handler(error);
    }
  }
}

/**
 * Creates a {@link FallbackPolicy}: a function is called with the error, any other value is
 * returned as is.
 *
 * @throws ConfigError when an option is invalid
 * @example
 * ```ts
 * const policy = fallback((error) => cache.get(key), { shouldHandle: (e) => !isConfigError(e) });
 * const price = await policy.execute((signal) => fetchPrice(key, signal));
 * ```
 */
export function fallback<R>(
  fn: (error: unknown) => R | PromiseLike<R>,
  options?: FallbackOptions,
): FallbackPolicy<R>;
export function fallback<R>(value: R, options?: FallbackOptions): FallbackPolicy<R>;
export function fallback<R>(
  valueOrFn: R | ((error: unknown) => R | PromiseLike<R>),
  options?: FallbackOptions,
): FallbackPolicy<R> {
  return new FallbackPolicy<R>(valueOrFn, options);
}
