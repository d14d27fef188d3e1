import { type Duration, durationOption } from '../time/duration';
import { TimeoutError } from '../errors';
import { Listeners } from '../internal/listeners';
import { neverAbortedSignal } from '../internal/never-aborted';
import { checkKnownKeys, checkObject } from '../internal/validate';
import type { Policy } from '../policy';
import { isThenable } from '../internal/listeners';

/** Options of {@link timeout}. */
export interface TimeoutOptions {
  /** Time limit of each call, in milliseconds or as a string like `'2s'`. Required. */
  timeoutMs: Duration;
}

/** Events of a {@link TimeoutPolicy}, for metrics and tracing (see {@link TimeoutPolicy.on}). */
export interface TimeoutPolicyEvents {
  /** A call ran past the time limit and was rejected with a `TimeoutError`. */
  timeout: { readonly timeoutMs: number };
}

const OWNER = 'timeout';

/**
 * Gives each call a time limit and its own AbortSignal.
 *
 * The signal passed to `fn` is aborted when the caller's signal aborts or when the time limit
 * passes; in the second case the call rejects at once with a {@link TimeoutError} (also the
 * signal's reason), without waiting for `fn` to notice. The timer and the listener on the
 * caller's signal live only while the call runs. A call that completes in time is not aborted
 * afterwards, so a returned stream (a `fetch` body) stays readable.
 */
export class TimeoutPolicy implements Policy {
  /** What this policy is, for instrumentation. */
  readonly kind = 'timeout' as const;
  /** The time limit of each call, in milliseconds. */
  readonly timeoutMs: number;
  private listeners: Listeners<TimeoutPolicyEvents> | undefined = undefined;

  /** @throws ConfigError when the time limit is invalid */
  constructor(timeoutMs: Duration | TimeoutOptions) {
    let value: unknown = timeoutMs;
    let path = 'timeoutMs';
    if (typeof timeoutMs === 'object' && timeoutMs !== null) {
      checkKnownKeys(OWNER, '', timeoutMs as unknown as Record<string, unknown>, ['timeoutMs']);
      value = timeoutMs.timeoutMs;
    } else if (typeof timeoutMs !== 'number' && typeof timeoutMs !== 'string') {
      checkObject(OWNER, 'options', timeoutMs);
      path = 'options';
    }
    const ms = durationOption(OWNER, path, value, { allowZero: false, timer: true });
    this.timeoutMs = ms;
  }

  /**
   * Subscribes to an event; returns the function that unsubscribes. A listener that throws never
   * affects a call; without listeners a call pays nothing for events.
   * @example
   * ```ts
   * policy.on('timeout', ({ timeoutMs }) => log.warn(`call exceeded ${timeoutMs} ms`));
   * ```
   */
  on<K extends keyof TimeoutPolicyEvents>(
    event: K,
    listener: (event: TimeoutPolicyEvents[K]) => void,
  ): () => void {
    this.listeners ??= new Listeners<TimeoutPolicyEvents>();
    return this.listeners.add(event, listener);
  }

  /**
   * Runs `fn` with a time limit.
   * @throws TimeoutError when the time limit passes first
   * @throws the caller's signal's reason when it aborts first
   */
  execute<T>(fn: (signal: AbortSignal) => PromiseLike<T> | T, signal?: AbortSignal): Promise<T> {
    const call = new TimeoutCall<T>(
      this.timeoutMs,
      signal === undefined || signal === neverAbortedSignal ? undefined : signal,
    );
    const promise = call.run(fn);
    if (this.listeners?.has('timeout') === true) this.reportTimeout(promise, call);
    return promise;
  }

  /** Emits `timeout` when this call's own time limit (not an inner one) rejects it. */
  private reportTimeout(promise: Promise<unknown>, call: { readonly timedOut: boolean }): void {
    promise.then(undefined, () => {
      if (call.timedOut) this.listeners?.emit('timeout', { timeoutMs: this.timeoutMs });
    });
  }
}

/**
 * One call with a time limit: the one timeout mechanism of Breakwater (the `timeout()` policy,
 * a breaker's `timeoutMs`, the rate-limit store guard). `run(fn)` gives `fn` the call's own
 * AbortSignal and settles with the first of: `fn`'s result, the time limit (a
 * {@link TimeoutError}, also the signal's reason), or the parent signal's abort (its reason).
 * A result that arrives later is observed and dropped, so it never becomes an unhandled
 * rejection. The call is also the abort listener on the parent signal, so it allocates no
 * closure.
 * @internal
 */
export class TimeoutCall<T> {
  private controller: AbortController | undefined = undefined;
  /** Whether the time limit passed before `fn` settled. */
  timedOut = false;
  private resolve: (value: T) => void = noop;
  private reject: (error: unknown) => void = noop;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private settled = false;

  constructor(
    private readonly timeoutMs: number,
    private readonly parent: AbortSignal | undefined,
  ) {}

  /** Runs `fn` with the time limit; an already aborted parent rejects without calling `fn`. */
  run(fn: (signal: AbortSignal) => PromiseLike<T> | T): Promise<T> {
    const parent = this.parent;
    if (parent !== undefined && parent.aborted) return Promise.reject(parent.reason);
    const controller = (this.controller = new AbortController());
    const promise = this.start();
    let value: PromiseLike<T> | T;
    try {
      value = fn(controller.signal);
    } catch (error) {
      this.fail(error);
      return promise;
    }
    this.follow(value);
    return promise;
  }

  /** Waits for `pending` with the time limit (no signal: for work that cannot be aborted). */
  race(pending: PromiseLike<T> | T): Promise<T> {
    const promise = this.start();
    this.follow(pending);
    return promise;
  }

  private start(): Promise<T> {
    const promise = new Promise<T>((resolve, reject) => {
      this.resolve = resolve;
      this.reject = reject;
    });
    this.timer = setTimeout(onTimer, this.timeoutMs, this);
    if (this.parent !== undefined) this.parent.addEventListener('abort', this);
    return promise;
  }

  private follow(value: PromiseLike<T> | T): void {
    if (isThenable<T>(value)) {
      value.then(
        (result) => this.succeed(result),
        (error: unknown) => this.fail(error),
      );
    } else {
      this.succeed(value);
    }
  }

  private succeed(value: T): void {
    if (this.settled) return;
    this.release();
    this.resolve(value);
  }

  private fail(error: unknown): void {
    if (this.settled) return;
    this.release();
    this.reject(error);
  }

  /** The time limit passed. */
  expire(): void {
    if (this.settled) return;
    this.timer = undefined;
    this.timedOut = true;
    this.release();
    const error = new TimeoutError(this.timeoutMs);
    this.controller?.abort(error);
    this.reject(error);
  }

  /** The parent signal aborted. */
  handleEvent(): void {
    if (this.settled) return;
    this.release();
    const reason: unknown = this.parent!.reason;
    this.controller?.abort(reason);
    this.reject(reason);
  }

  private release(): void {
    this.settled = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    if (this.parent !== undefined) this.parent.removeEventListener('abort', this);
  }
}

function onTimer(call: { expire(): void }): void {
  call.expire();
}

function noop(): void {}

/**
 * Creates a {@link TimeoutPolicy}.
 *
 * @param timeoutMs - the limit, in milliseconds, as a string like `'2s'`, or `{ timeoutMs }`
 * @throws ConfigError when the limit is not a positive duration
 * @example
 * ```ts
 * const policy = timeout(2_000);
 * const response = await policy.execute((signal) => fetch(url, { signal }));
 * ```
 */
export function timeout(timeoutMs: Duration | TimeoutOptions): TimeoutPolicy {
  return new TimeoutPolicy(timeoutMs);
}
