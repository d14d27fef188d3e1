import { type Duration, durationOption } from '../time/duration';
import { BulkheadFullError } from '../errors';
import { Listeners } from '../internal/listeners';
import { neverAbortedSignal } from '../internal/never-aborted';
import { checkKnownKeys, checkObject, integerOption } from '../internal/validate';
import type { Policy } from '../policy';

/** Options of {@link bulkhead}. */
export interface BulkheadOptions {
  /** Calls allowed to run at once. Required. */
  maxConcurrent: number;
  /** Calls allowed to wait for a slot; 0 rejects at once when every slot is taken. @defaultValue 0 */
  maxQueue?: number;
  /**
   * Longest wait in the queue (`'5s'` also accepted); a call that waits longer is rejected with
   * a `BulkheadFullError`. @defaultValue no limit
   */
  queueTimeoutMs?: Duration;
}

/** Events of a {@link BulkheadPolicy}, for metrics and tracing (see {@link BulkheadPolicy.on}). */
export interface BulkheadPolicyEvents {
  /**
   * A call was rejected with a `BulkheadFullError`: every slot and queue place was taken
   * (`'full'`), or it waited longer than `queueTimeoutMs` (`'queueTimeout'`).
   */
  rejected: { readonly reason: 'full' | 'queueTimeout' };
}

const FULL = Object.freeze({ reason: 'full' as const });
const QUEUE_TIMEOUT = Object.freeze({ reason: 'queueTimeout' as const });
const OWNER = 'bulkhead';
const KNOWN = ['maxConcurrent', 'maxQueue', 'queueTimeoutMs'] as const;

/**
 * Limits how many calls run at once, with an optional bounded queue.
 *
 * A call that finds every slot taken and the queue full is rejected with a
 * {@link BulkheadFullError}. A queued call whose signal aborts leaves the queue at once and
 * rejects with the signal's reason; one that waits longer than `queueTimeoutMs` is rejected with
 * a `BulkheadFullError`. Queued calls start in arrival order as slots free up.
 */
export class BulkheadPolicy implements Policy {
  /** What this policy is, for instrumentation. */
  readonly kind = 'bulkhead' as const;
  /** Calls allowed to run at once. */
  readonly maxConcurrent: number;
  /** Calls allowed to wait for a slot. */
  readonly maxQueue: number;
  /** Longest wait in the queue in milliseconds, or `undefined` for none. */
  readonly queueTimeoutMs: number | undefined;
  private active = 0;
  private readonly queue: WaitQueue;
  private listeners: Listeners<BulkheadPolicyEvents> | undefined = undefined;

  /** @throws ConfigError when an option is invalid */
  constructor(options: BulkheadOptions) {
    checkObject(OWNER, 'options', options);
    checkKnownKeys(OWNER, '', options, KNOWN);
    this.maxConcurrent = integerOption(OWNER, 'maxConcurrent', options.maxConcurrent, 1);
    this.maxQueue =
      options.maxQueue === undefined ? 0 : integerOption(OWNER, 'maxQueue', options.maxQueue, 0);
    if (options.queueTimeoutMs === undefined) {
      this.queueTimeoutMs = undefined;
    } else {
      this.queueTimeoutMs = durationOption(OWNER, 'queueTimeoutMs', options.queueTimeoutMs, {
        allowZero: false,
        timer: true,
      });
    }
    this.queue = new WaitQueue(this.maxConcurrent, this.maxQueue, this.queueTimeoutMs, () =>
      this.listeners?.emit('rejected', QUEUE_TIMEOUT),
    );
  }

  /**
   * Subscribes to an event; returns the function that unsubscribes. A listener that throws never
   * affects a call.
   * @example
   * ```ts
   * policy.on('rejected', ({ reason }) => metrics.bulkheadRejected.inc({ reason }));
   * ```
   */
  on<K extends keyof BulkheadPolicyEvents>(
    event: K,
    listener: (event: BulkheadPolicyEvents[K]) => void,
  ): () => void {
    this.listeners ??= new Listeners<BulkheadPolicyEvents>();
    return this.listeners.add(event, listener);
  }

  /** Calls running now. */
  get running(): number {
    return this.active;
  }

  /** Calls waiting for a slot now. */
  get queued(): number {
    return this.queue.size;
  }

  /**
   * Runs `fn` when a slot is free.
   * @throws BulkheadFullError when no slot and no queue place is free, or the queue wait times out
   * @throws the signal's reason when the caller aborts while the call waits
   */
  execute<T>(fn: (signal: AbortSignal) => PromiseLike<T> | T, signal?: AbortSignal): Promise<T> {
    if (signal !== undefined && signal.aborted) return Promise.reject(signal.reason as Error);
    if (this.active < this.maxConcurrent) {
      this.active++;
      return this.run(fn, signal ?? neverAbortedSignal);
    }
    if (this.queue.size >= this.maxQueue) {
      this.listeners?.emit('rejected', FULL);
      return Promise.reject(fullError(this.maxConcurrent, this.maxQueue));
    }
    return new Promise<T>((resolve, reject) => {
      const waiter = new Waiter(
        this.queue,
        fn,
        signal ?? neverAbortedSignal,
        resolve as (value: unknown) => void,
        reject,
      );
      this.queue.push(waiter);
    });
  }

  private async run<T>(
    fn: (signal: AbortSignal) => PromiseLike<T> | T,
    signal: AbortSignal,
  ): Promise<T> {
    try {
      return await fn(signal);
    } finally {
      this.release();
    }
  }

  /** A running call ended: hand its slot to the first waiter. */
  private release(): void {
    const waiter = this.queue.shift();
    if (waiter === undefined) {
      this.active--;
      return;
    }
    // The slot passes to the waiter without being freed in between.
    waiter.resolve(this.run(waiter.fn, waiter.signal));
  }
}

/** Waiting calls in arrival order: a doubly linked list, so any waiter leaves in O(1). */
class WaitQueue {
  size = 0;
  private head: Waiter | undefined;
  private tail: Waiter | undefined;

  constructor(
    readonly maxConcurrent: number,
    readonly maxQueue: number,
    private readonly timeoutMs: number | undefined,
    readonly onExpired: () => void,
  ) {}

  push(waiter: Waiter): void {
    waiter.prev = this.tail;
    if (this.tail === undefined) this.head = waiter;
    else this.tail.next = waiter;
    this.tail = waiter;
    this.size++;
    waiter.listen(this.timeoutMs);
  }

  shift(): Waiter | undefined {
    const waiter = this.head;
    if (waiter !== undefined) this.remove(waiter);
    return waiter;
  }

  /** Unlinks a waiter and drops its timer and abort listener. */
  remove(waiter: Waiter): void {
    if (waiter.prev === undefined) this.head = waiter.next;
    else waiter.prev.next = waiter.next;
    if (waiter.next === undefined) this.tail = waiter.prev;
    else waiter.next.prev = waiter.prev;
    waiter.prev = undefined;
    waiter.next = undefined;
    this.size--;
    waiter.unlisten();
  }
}

/** A rejection for a full bulkhead; built without a stack, as overload makes it frequent. */
function fullError(maxConcurrent: number, maxQueue: number): BulkheadFullError {
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = 0;
  try {
    return new BulkheadFullError(maxConcurrent, maxQueue);
  } finally {
    Error.stackTraceLimit = limit;
  }
}

/** A queued call: a node of the bulkhead's queue and the abort listener of its signal. */
class Waiter {
  prev: Waiter | undefined;
  next: Waiter | undefined;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private queued = false;

  constructor(
    private readonly queue: WaitQueue,
    readonly fn: (signal: AbortSignal) => unknown,
    readonly signal: AbortSignal,
    readonly resolve: (value: unknown) => void,
    private readonly reject: (error: unknown) => void,
  ) {}

  listen(queueTimeoutMs: number | undefined): void {
    this.queued = true;
    if (queueTimeoutMs !== undefined) this.timer = setTimeout(onQueueTimeout, queueTimeoutMs, this);
    if (this.signal !== neverAbortedSignal) this.signal.addEventListener('abort', this);
  }

  unlisten(): void {
    this.queued = false;
    if (this.timer !== undefined) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    if (this.signal !== neverAbortedSignal) this.signal.removeEventListener('abort', this);
  }

  /** The caller's signal aborted while the call waited. */
  handleEvent(): void {
    if (!this.queued) return;
    this.queue.remove(this);
    this.reject(this.signal.reason);
  }

  /** The call waited longer than `queueTimeoutMs`. */
  expire(): void {
    if (!this.queued) return;
    this.timer = undefined;
    this.queue.remove(this);
    this.queue.onExpired();
    this.reject(fullError(this.queue.maxConcurrent, this.queue.maxQueue));
  }
}

function onQueueTimeout(waiter: Waiter): void {
  waiter.expire();
}

/**
 * Creates a {@link BulkheadPolicy}.
 *
 * @throws ConfigError when an option is invalid
 * @example
 * ```ts
 * const policy = bulkhead({ maxConcurrent: 10, maxQueue: 50, queueTimeoutMs: '2s' });
 * const rows = await policy.execute(() => db.query(sql));
 * ```
 */
export function bulkhead(options: BulkheadOptions): BulkheadPolicy {
  return new BulkheadPolicy(options);
}
