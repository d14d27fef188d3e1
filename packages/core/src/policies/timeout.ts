import { type Duration, durationOption } from '../time/duration';
import { TimeoutError } from '../errors';
import { Listeners } from '../internal/listeners';
import { neverAbortedSignal } from '../internal/never-aborted';
import { checkKnownKeys, checkObject } from '../internal/validate';
import type { Policy } from '../policy';

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
    if (signal !== undefined && signal.aborted) return Promise.reject(signal.reason as Error);
    const call = new TimeoutCall<T>(
      this.timeoutMs,
      signal === undefined || signal === neverAbortedSignal ? undefined : signal,
    );
    const promise = new Promise<T>((resolve, reject) => {
      call.resolve = resolve;
      call.reject = reject;
    });
    call.start();
    let value: PromiseLike<T> | T;
    try {
      value = fn(call.controller.signal);
    } catch (error) {
      call.fail(error);
      return promise;
    }
    if (isThenable(value)) {
      value.then(
        (result) => call.succeed(result),
        (error: unknown) => call.fail(error),
      );
    } else {
      call.succeed(value);
    }
    if (this.listeners?.has('timeout') === true)
      this.reportTimeout(promise, call.controller.signal);
    return promise;
  }

  /** Emits `timeout` when this call's own time limit (not an inner one) rejects it. */
  private reportTimeout(promise: Promise<unknown>, signal: AbortSignal): void {
    promise.then(undefined, (error: unknown) => {
      if (signal.aborted && signal.reason === error && error instanceof TimeoutError) {
        this.listeners?.emit('timeout', { timeoutMs: this.timeoutMs });
      }
    });
  }
}

/** The state of one running call; it is also the abort listener on the caller's signal. */
class TimeoutCall<T> {
  readonly controller = new AbortController();
  resolve: (value: T) => void = noop;
  reject: (error: unknown) => void = noop;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private settled = false;

  constructor(
    private readonly timeoutMs: number,
    private readonly parent: AbortSignal | undefined,
  ) {}

  start(): void {
    this.timer = setTimeout(onTimer, this.timeoutMs, this);
    if (this.parent !== undefined) this.parent.addEventListener('abort', this);
  }

  succeed(value: T): void {
    if (this.settled) return;
    this.release();
    this.resolve(value);
  }

  fail(error: unknown): void {
    if (this.settled) return;
    this.release();
    this.reject(error);
  }

  /** The time limit passed. */
  expire(): void {
    if (this.settled) return;
    this.timer = undefined;
    this.release();
    const error = new TimeoutError(this.timeoutMs);
    this.controller.abort(error);
    this.reject(error);
  }

  /** The caller's signal aborted. */
  handleEvent(): void {
    if (this.settled) return;
    this.release();
    const reason: unknown = this.parent!.reason;
    this.controller.abort(reason);
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

function isThenable<T>(value: PromiseLike<T> | T): value is PromiseLike<T> {
  return (
    (typeof value === 'object' || typeof value === 'function') &&
    value !== null &&
    typeof (value as { then?: unknown }).then === 'function'
  );
}

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
