import { type Duration, durationOption } from '../time/duration';
import type { Clock } from '../time/clock';
import { ConfigError } from '../errors';
import { Listeners } from '../internal/listeners';
import { type Logger, log, loggerOption } from '../internal/log';
import {
  checkClock,
  checkKnownKeys,
  checkObject,
  functionOption,
  integerOption,
  nestedOption,
  numberOption,
  stringOption,
} from '../internal/validate';
import {
  AdaptiveConcurrencyPolicy,
  type AdaptiveConcurrencyOptions,
  type ConcurrencyPermit,
} from '../policies/adaptive-concurrency';
import type { LimitAlgorithmName } from '../policies/limits/limit';
import { problemResponse, retryAfterSeconds, type HttpResponse } from './http-response';
import { processPressure, type PressureMonitor, type PressureReading } from './process-pressure';
import { brand } from '../brand';

/**
 * How important a request is. Under overload `low` requests are shed first (from half the
 * limit), then `normal` ones (from 90 %), `critical` ones last (at the limit); while a process
 * threshold is exceeded only `critical` requests are admitted.
 */
export type LoadShedPriority = 'critical' | 'normal' | 'low';

/** Why a request was shed. */
export type LoadShedReason = 'limit' | 'eventLoopDelay' | 'eventLoopUtilization' | 'heap';

/** The adaptive limit of a load shedder: the policy's options without name, clock and hooks. */
export type LoadShedLimitOptions = Omit<
  AdaptiveConcurrencyOptions,
  'name' | 'clock' | 'isFailure' | 'onListenerError'
>;

/** Options of {@link LoadShedder} and of every adapter's `loadShed()` middleware. */
export interface LoadShedOptions<Req = unknown> {
  /** Identifier in responses, events, logs, metrics and health. @defaultValue `'http'` */
  name?: string;
  /**
   * The adaptive limit on requests in flight, learned from their latency (see
   * `adaptiveConcurrency`), or `false` for thresholds only.
   * @defaultValue `{ algorithm: 'vegas', initialLimit: 20, minLimit: 1, maxLimit: 1000, vegas: { smoothing: 0.5 } }`
   * (`maxLimit` 1000 and, for Vegas without `vegas` options, `smoothing` 0.5 also apply when
   * only some options are given)
   */
  limit?: LoadShedLimitOptions | false;
  /** Shed non-critical requests while the mean event-loop delay exceeds this. @defaultValue off */
  maxEventLoopDelayMs?: number;
  /** Shed non-critical requests while event-loop utilisation (0 to 1) exceeds this. @defaultValue off */
  maxEventLoopUtilization?: number;
  /** Shed non-critical requests while the V8 heap in use exceeds this many bytes. @defaultValue off */
  maxHeapUsedBytes?: number;
  /** Shed non-critical requests while the heap in use exceeds this share of its limit (0 to 1). @defaultValue off */
  maxHeapUsedRatio?: number;
  /** How often the process sampler reads the thresholds' values (`'1s'` also accepted). @defaultValue 500 */
  sampleIntervalMs?: Duration;
  /**
   * The priority of a request. A hook that throws gives `'normal'`.
   * @defaultValue every request `'normal'`
   */
  priority?: (req: Req) => LoadShedPriority;
  /**
   * Paths never shed (nor counted): each matches itself and everything below it.
   * @defaultValue `['/health', '/metrics']`
   */
  exemptPaths?: readonly string[];
  /** The `Retry-After` of a shed request (whole seconds, at least 1). @defaultValue 1000 */
  retryAfterMs?: Duration;
  /** Where a line is logged when shedding starts and when it stops. @defaultValue none */
  logger?: Logger;
  /** Time source in milliseconds, for tests. @defaultValue `performance.now()` */
  clock?: Clock;
  /** Where the process thresholds are read, for tests. @defaultValue the process sampler */
  monitor?: PressureMonitor;
  /** Called when an event listener throws. @defaultValue none */
  onListenerError?: (error: unknown, event: string) => void;
}

/** Events of {@link LoadShedder}. */
export interface LoadShedEvents {
  /** A request was shed. */
  rejected: { limit: number; inFlight: number; reason: LoadShedReason };
  /** The adaptive limit moved. */
  limitChanged: { from: number; to: number };
}

/** What {@link LoadShedder.snapshot} returns: plain JSON. */
export interface LoadShedSnapshot {
  name: string;
  /** The adaptive limit (`null` when the limit is off). */
  limit: number | null;
  /** Requests admitted and not finished. */
  inFlight: number;
  /** Requests shed since creation. */
  rejected: number;
  /** Whether requests have been shed within the last second. */
  shedding: boolean;
  /** The exceeded threshold, if any. */
  pressure: Exclude<LoadShedReason, 'limit'> | null;
  algorithm: LimitAlgorithmName | null;
  /** A moving average of request latency, in milliseconds (0 while unknown). */
  rttMs: number;
  /** The latency the algorithm takes as "no queueing", in milliseconds. */
  noLoadRttMs: number;
  /** The last process reading (`null` without thresholds). */
  process: PressureReading | null;
}

/** An admitted request: call `finish(status)` when the response is sent, or `abort()`. */
export interface LoadShedPermit {
  /** The response was sent: below 500 is a sample, 503/504 a drop, another 5xx ignored. */
  finish(status: number): void;
  /** The client went away, or the request ended without a response: ignored. */
  abort(): void;
}

const OWNER = 'loadShed';
const KNOWN = {
  name: true,
  limit: true,
  maxEventLoopDelayMs: true,
  maxEventLoopUtilization: true,
  maxHeapUsedBytes: true,
  maxHeapUsedRatio: true,
  sampleIntervalMs: true,
  priority: true,
  exemptPaths: true,
  retryAfterMs: true,
  logger: true,
  clock: true,
  monitor: true,
  onListenerError: true,
} as const satisfies Record<keyof LoadShedOptions, true>;
const SHARE: Record<LoadShedPriority, number> = { critical: 1, normal: 0.9, low: 0.5 };
/** Shedding counts as stopped once no request has been shed for this long. */
const QUIET_MS = 1_000;
const performanceClock: Clock = { now: () => performance.now() };

/** The permit of an exempt request: counts nothing. */
const EXEMPT: LoadShedPermit = { finish: () => undefined, abort: () => undefined };

/**
 * The framework-free part of `loadShed()`: decides for each request whether to serve it or to
 * answer at once with 503, `Retry-After` and problem+json, before any handler runs.
 *
 * It holds an adaptive limit on requests in flight (learned from their latency) and, when
 * thresholds are set, reads event-loop delay, event-loop utilisation and heap from one unref'd
 * sampler per process; no timer per request. Health and metrics paths are never shed.
 *
 * @throws ConfigError when an option is invalid
 */
export class LoadShedder<Req = unknown> {
  /** Identifier in responses, events, logs and metrics. */
  readonly name: string;
  private readonly policy: AdaptiveConcurrencyPolicy | undefined;
  private readonly listeners: Listeners<LoadShedEvents>;
  private readonly priority: ((req: Req) => LoadShedPriority) | undefined;
  private readonly exempt: readonly string[];
  private readonly logger: Logger | undefined;
  private readonly clock: Clock;
  private readonly responses: Record<LoadShedReason, HttpResponse>;
  private readonly monitor: PressureMonitor | undefined;
  private readonly thresholds: Thresholds;
  private unsubscribe: (() => void) | undefined;
  private pressure: Exclude<LoadShedReason, 'limit'> | undefined;
  private active = 0;
  private rejections = 0;
  private shedSince = -1;
  private shedAtStart = 0;
  private lastShedAt = 0;

  constructor(options: LoadShedOptions<Req> = {}) {
    checkObject(OWNER, 'options', options);
    checkKnownKeys(OWNER, '', options, Object.keys(KNOWN));
    this.name = options.name === undefined ? 'http' : stringOption(OWNER, 'name', options.name);
    this.clock = options.clock === undefined ? performanceClock : checkClock(OWNER, options.clock);
    const onListenerError =
      options.onListenerError === undefined
        ? undefined
        : functionOption<(error: unknown, event: string) => void>(
            OWNER,
            'onListenerError',
            options.onListenerError,
          );
    this.listeners = new Listeners(onListenerError);
    if (options.limit === false) {
      this.policy = undefined;
    } else {
      const limit = options.limit ?? {};
      checkObject(OWNER, 'limit', limit);
      this.policy = nestedOption(
        OWNER,
        'limit',
        () =>
          new AdaptiveConcurrencyPolicy({
            maxLimit: 1_000,
            // Half of each step: Vegas's probes of the no-load latency overshoot less.
            ...((limit.algorithm ?? 'vegas') === 'vegas' && limit.vegas === undefined
              ? { vegas: { smoothing: 0.5 } }
              : {}),
            ...limit,
            name: this.name,
            clock: this.clock,
            ...(onListenerError === undefined ? {} : { onListenerError }),
          }),
      );
    }
    this.priority =
      options.priority === undefined
        ? undefined
        : functionOption<(req: Req) => LoadShedPriority>(OWNER, 'priority', options.priority);
    this.exempt = exemptOption(options.exemptPaths);
    this.logger = options.logger === undefined ? undefined : loggerOption(OWNER, options.logger);
    const retryAfterMs =
      options.retryAfterMs === undefined
        ? 1_000
        : durationOption(OWNER, 'retryAfterMs', options.retryAfterMs, { allowZero: false });
    this.responses = {
      limit: loadShedResponse(this.name, retryAfterMs, 'limit'),
      eventLoopDelay: loadShedResponse(this.name, retryAfterMs, 'eventLoopDelay'),
      eventLoopUtilization: loadShedResponse(this.name, retryAfterMs, 'eventLoopUtilization'),
      heap: loadShedResponse(this.name, retryAfterMs, 'heap'),
    };
    this.thresholds = thresholdOptions(options);
    const intervalMs =
      options.sampleIntervalMs === undefined
        ? 500
        : durationOption(OWNER, 'sampleIntervalMs', options.sampleIntervalMs, {
            min: 10,
            timer: true,
          });
    const monitor =
      options.monitor === undefined ? processPressure : monitorOption(options.monitor);
    const watched = Object.values(this.thresholds).some((value) => value !== undefined);
    this.monitor = watched ? monitor : undefined;
    this.unsubscribe = this.monitor?.subscribe(intervalMs, (reading) => this.read(reading));
  }

  /** The adaptive limit now (`Infinity` when the limit is off). */
  get limit(): number {
    return this.policy === undefined ? Infinity : this.policy.limit;
  }

  /** Requests admitted and not finished. */
  get inFlight(): number {
    return this.active;
  }

  /**
   * Decides for one request: a permit to settle when the response is sent, or the 503 response to
   * write at once. Never throws.
   * @param req - the framework's request, passed to the `priority` hook
   * @param path - the request path without query, for `exemptPaths`
   * @param priority - the route's own priority (a decorator's), instead of the `priority` hook
   */
  admit(req: Req, path: string, priority?: LoadShedPriority): LoadShedPermit | HttpResponse {
    if (this.exempt.length > 0 && this.isExempt(path)) return EXEMPT;
    priority ??= this.priorityOf(req);
    const limit = this.limit;
    let reason: LoadShedReason | undefined;
    if (this.pressure !== undefined && priority !== 'critical') reason = this.pressure;
    else if (this.active >= Math.ceil(limit * SHARE[priority])) reason = 'limit';
    if (reason !== undefined) return this.shed(reason, limit);
    if (this.shedSince >= 0) this.checkQuiet();
    const permit = this.policy?.tryAcquire();
    this.active++;
    return new Permit(this, permit);
  }

  /** Listens to an event; returns the function that stops listening. */
  on<K extends keyof LoadShedEvents>(
    event: K,
    listener: (payload: LoadShedEvents[K]) => void,
  ): () => void {
    if (event === 'limitChanged') {
      if (this.policy === undefined) return () => undefined;
      return this.policy.on(
        'limitChanged',
        listener as (e: LoadShedEvents['limitChanged']) => void,
      );
    }
    return this.listeners.add(event, listener);
  }

  /** The limit, requests in flight, rejections and process readings, as plain JSON. */
  snapshot(): LoadShedSnapshot {
    if (this.shedSince >= 0) this.checkQuiet();
    const policy = this.policy?.snapshot();
    return {
      name: this.name,
      limit: policy === undefined ? null : policy.limit,
      inFlight: this.active,
      rejected: this.rejections,
      shedding: this.shedSince >= 0,
      pressure: this.pressure ?? null,
      algorithm: policy === undefined ? null : policy.algorithm,
      rttMs: policy === undefined ? 0 : policy.rttMs,
      noLoadRttMs: policy === undefined ? 0 : policy.noLoadRttMs,
      process: this.monitor === undefined ? null : { ...this.monitor.current },
    };
  }

  /** Stops reading the process sampler (the sampler stops when nobody reads it). */
  close(): void {
    this.unsubscribe?.();
    this.unsubscribe = undefined;
  }

  /** A permit ended. @internal */
  release(): void {
    this.active--;
  }

  private isExempt(path: string): boolean {
    for (const prefix of this.exempt) {
      if (path === prefix || (path.startsWith(prefix) && path.charCodeAt(prefix.length) === 47))
        return true;
    }
    return false;
  }

  private priorityOf(req: Req): LoadShedPriority {
    if (this.priority === undefined) return 'normal';
    try {
      const priority = this.priority(req);
      return priority === 'critical' || priority === 'low' ? priority : 'normal';
    } catch {
      return 'normal';
    }
  }

  private shed(reason: LoadShedReason, limit: number): HttpResponse {
    this.rejections++;
    const now = this.clock.now();
    this.lastShedAt = now;
    if (this.shedSince < 0) {
      this.shedSince = now;
      this.shedAtStart = this.rejections - 1;
      if (this.logger !== undefined) {
        const bound = limit === Infinity ? '' : `limit ${limit}, `;
        log(
          this.logger,
          'warn',
          `[LOADSHED] ${this.name} shedding started (${bound}${this.active} in flight, ${reason})`,
        );
      }
    }
    if (this.listeners.has('rejected')) {
      this.listeners.emit('rejected', { limit, inFlight: this.active, reason });
    }
    return this.responses[reason];
  }

  private checkQuiet(): void {
    const now = this.clock.now();
    if (now - this.lastShedAt < QUIET_MS) return;
    const shed = this.rejections - this.shedAtStart;
    const seconds = ((this.lastShedAt - this.shedSince) / 1000).toFixed(1);
    this.shedSince = -1;
    if (this.logger !== undefined) {
      log(
        this.logger,
        'info',
        `[LOADSHED] ${this.name} shedding stopped (${shed} requests shed over ${seconds} s)`,
      );
    }
  }

  private read(reading: PressureReading): void {
    const t = this.thresholds;
    this.pressure =
      t.eventLoopDelayMs !== undefined && reading.eventLoopDelayMs > t.eventLoopDelayMs
        ? 'eventLoopDelay'
        : t.eventLoopUtilization !== undefined &&
            reading.eventLoopUtilization > t.eventLoopUtilization
          ? 'eventLoopUtilization'
          : (t.heapUsedBytes !== undefined && reading.heapUsedBytes > t.heapUsedBytes) ||
              (t.heapUsedRatio !== undefined && reading.heapUsedRatio > t.heapUsedRatio)
            ? 'heap'
            : undefined;
    if (this.shedSince >= 0) this.checkQuiet();
  }
}
brand(LoadShedder, 'LoadShedder');

/** A request admitted by a {@link LoadShedder}; settles once. */
class Permit implements LoadShedPermit {
  private open = true;

  constructor(
    private readonly shedder: LoadShedder<never>,
    private readonly permit: ConcurrencyPermit | undefined,
  ) {}

  finish(status: number): void {
    if (!this.open) return;
    this.open = false;
    this.shedder.release();
    if (this.permit === undefined) return;
    if (status < 500) this.permit.success();
    else if (status === 503 || status === 504) this.permit.dropped();
    else this.permit.ignore();
  }

  abort(): void {
    if (!this.open) return;
    this.open = false;
    this.shedder.release();
    this.permit?.ignore();
  }
}

interface Thresholds {
  eventLoopDelayMs: number | undefined;
  eventLoopUtilization: number | undefined;
  heapUsedBytes: number | undefined;
  heapUsedRatio: number | undefined;
}

function thresholdOptions(options: LoadShedOptions<never>): Thresholds {
  const optional = (key: keyof LoadShedOptions, min: number, max: number): number | undefined =>
    options[key] === undefined ? undefined : numberOption(OWNER, key, options[key], min, max, true);
  return {
    eventLoopDelayMs: optional('maxEventLoopDelayMs', 0, 3_600_000),
    eventLoopUtilization: optional('maxEventLoopUtilization', 0, 1),
    heapUsedBytes:
      options.maxHeapUsedBytes === undefined
        ? undefined
        : integerOption(OWNER, 'maxHeapUsedBytes', options.maxHeapUsedBytes, 1),
    heapUsedRatio: optional('maxHeapUsedRatio', 0, 1),
  };
}

function monitorOption(value: unknown): PressureMonitor {
  const monitor = value as Partial<PressureMonitor> | null;
  if (typeof monitor?.subscribe !== 'function' || typeof monitor.current !== 'object')
    throw new ConfigError(OWNER, 'monitor', value, 'must have subscribe() and current');
  return value as PressureMonitor;
}

function exemptOption(value: unknown): readonly string[] {
  if (value === undefined) return ['/health', '/metrics'];
  if (!Array.isArray(value) || value.length > 100)
    throw new ConfigError(OWNER, 'exemptPaths', value, 'must be an array of at most 100 paths');
  return Object.freeze(
    value.map((path: unknown, index) => {
      const text = stringOption(OWNER, `exemptPaths[${index}]`, path, 1_000);
      if (!text.startsWith('/'))
        throw new ConfigError(OWNER, `exemptPaths[${index}]`, path, 'must start with "/"');
      return text.endsWith('/') && text.length > 1 ? text.slice(0, -1) : text;
    }),
  );
}

/**
 * The 503 answer for a request shed under overload: `Retry-After` in whole seconds and an
 * `application/problem+json` body naming the shedder and the reason.
 */
export function loadShedResponse(
  name: string,
  retryAfterMs: number,
  reason: LoadShedReason,
): HttpResponse {
  const seconds = retryAfterSeconds(retryAfterMs);
  return problemResponse(
    503,
    'Service Unavailable',
    'The server is overloaded; retry later',
    { loadShedder: name, reason, retryAfter: seconds },
    { 'retry-after': String(seconds) },
  );
}
