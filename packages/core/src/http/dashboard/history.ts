import type { CircuitBreakerRegistry } from '../../breaker/registry';
import type { CircuitBreakerSnapshot, CircuitState } from '../../breaker/circuit-breaker';
import type { RateLimiterHealth } from '../../rate-limit/rate-limiter';

/** A limiter the dashboard shows: its name, its store health and its decisions. */
export interface DashboardLimiter {
  readonly name: string;
  health(): RateLimiterHealth;
  on?(event: 'decision', listener: (event: { decision: { allowed: boolean } }) => void): () => void;
}

/** A transition as the dashboard's timeline shows it. */
export interface DashboardTransition {
  /** When, in milliseconds since the epoch. */
  at: number;
  from: CircuitState;
  to: CircuitState;
  reason: string;
}

/** One breaker in the dashboard's history document. */
export type DashboardBreaker = CircuitBreakerSnapshot & {
  critical: boolean;
  /** Per sample, oldest first: calls (successes and failures), failures, rejections. */
  series: { calls: number[]; failures: number[]; rejected: number[] };
  transitions: DashboardTransition[];
};

/** One limiter in the dashboard's history document. */
export interface DashboardLimiterView {
  name: string;
  status: RateLimiterHealth['status'];
  store: RateLimiterHealth['store'];
  /** Per sample, oldest first; empty until the dashboard is first opened. */
  series: { allowed: number[]; denied: number[] };
}

/** What `<basePath>/dashboard/history` answers. */
export interface DashboardHistoryDocument {
  /** Time between samples, in milliseconds. */
  intervalMs: number;
  /** Time the series cover when full, in milliseconds. */
  windowMs: number;
  /** When the last sample was taken (milliseconds since the epoch). */
  sampledAt: number;
  breakers: DashboardBreaker[];
  limiters: DashboardLimiterView[];
}

/** What the `sample` event of the stream carries: the newest sample of every series. */
export interface DashboardSample {
  at: number;
  /** `[calls, failures, rejected]` by breaker name. */
  breakers: Record<string, [number, number, number]>;
  /** `[allowed, denied, store]` by limiter name. */
  limiters: Record<string, [number, number, 'primary' | 'fallback']>;
}

/** The most transitions kept per breaker for the timeline. */
const MAX_TRANSITIONS = 24;
/** The most breakers with a history (about 2 KB each); others show their state only. */
export const MAX_HISTORY_BREAKERS = 1000;

/** A fixed-size ring of numbers, read oldest first. */
class Ring {
  private readonly values: Float32Array;
  private next = 0;
  private filled = 0;

  constructor(size: number) {
    this.values = new Float32Array(size);
  }

  push(value: number): void {
    this.values[this.next] = value;
    this.next = (this.next + 1) % this.values.length;
    if (this.filled < this.values.length) this.filled++;
  }

  toArray(): number[] {
    const size = this.values.length;
    const out = new Array<number>(this.filled);
    const start = (this.next - this.filled + size) % size;
    for (let i = 0; i < this.filled; i++) out[i] = this.values[(start + i) % size] as number;
    return out;
  }
}

class BreakerTrack {
  readonly calls: Ring;
  readonly failures: Ring;
  readonly rejected: Ring;
  readonly transitions: DashboardTransition[] = [];
  private last: [number, number, number] | undefined;

  constructor(size: number) {
    this.calls = new Ring(size);
    this.failures = new Ring(size);
    this.rejected = new Ring(size);
  }

  /** Records the change since the last sample; the first sample only sets the baseline. */
  sample(calls: number, failures: number, rejected: number): [number, number, number] {
    const last = this.last;
    this.last = [calls, failures, rejected];
    const delta: [number, number, number] =
      last === undefined
        ? [0, 0, 0]
        : [
            Math.max(0, calls - last[0]),
            Math.max(0, failures - last[1]),
            Math.max(0, rejected - last[2]),
          ];
    this.calls.push(delta[0]);
    this.failures.push(delta[1]);
    this.rejected.push(delta[2]);
    return delta;
  }

  transition(entry: DashboardTransition): void {
    this.transitions.push(entry);
    if (this.transitions.length > MAX_TRANSITIONS) this.transitions.shift();
  }
}

class LimiterTrack {
  allowed = 0;
  denied = 0;
  readonly allowedRing: Ring;
  readonly deniedRing: Ring;
  off: (() => void) | undefined;

  constructor(
    readonly limiter: DashboardLimiter,
    private readonly size: number,
  ) {
    this.allowedRing = new Ring(size);
    this.deniedRing = new Ring(size);
  }

  /** Starts counting decisions (an event per decision: only once the dashboard is looked at). */
  listen(): void {
    if (this.off !== undefined || typeof this.limiter.on !== 'function') return;
    this.off = this.limiter.on('decision', ({ decision }) => {
      if (decision.allowed) this.allowed++;
      else this.denied++;
    });
  }

  sample(): [number, number] {
    const delta: [number, number] = [this.allowed, this.denied];
    this.allowed = 0;
    this.denied = 0;
    if (this.off !== undefined) {
      this.allowedRing.push(delta[0]);
      this.deniedRing.push(delta[1]);
    }
    return delta;
  }
}

/**
 * The dashboard's recent past, kept in core: per breaker a bounded ring of calls, failures and
 * rejections per sample, read from `totals()` by one unref'd timer (no cost per call), and its
 * latest transitions; per limiter its decisions per sample. Sized for `windowMs` of samples.
 */
export class DashboardHistory {
  readonly size: number;
  private readonly breakers = new Map<string, BreakerTrack>();
  private readonly limiters: LimiterTrack[];
  private timer: ReturnType<typeof setInterval> | undefined;
  private offTransitions: (() => void) | undefined;
  private sampledAt = Date.now();

  constructor(
    private readonly registry: CircuitBreakerRegistry | undefined,
    limiters: readonly DashboardLimiter[],
    private readonly isCritical: (name: string) => boolean,
    readonly intervalMs: number,
    readonly windowMs: number,
  ) {
    this.size = Math.max(2, Math.round(windowMs / intervalMs));
    this.limiters = limiters.map((limiter) => new LimiterTrack(limiter, this.size));
  }

  /** Starts sampling; `onSample` receives every sample (to stream it). */
  start(onSample: (sample: DashboardSample) => void): void {
    if (this.timer !== undefined) return;
    this.offTransitions = this.registry?.on('stateChange', ({ breaker, from, to, reason }) =>
      this.track(breaker)?.transition({ at: Date.now(), from, to, reason }),
    );
    this.sample();
    this.timer = setInterval(() => onSample(this.sample()), this.intervalMs);
    this.timer.unref?.();
  }

  /** Counts limiter decisions from now on (the first view of the dashboard calls it). */
  watchLimiters(): void {
    for (const track of this.limiters) track.listen();
  }

  stop(): void {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
    this.offTransitions?.();
    this.offTransitions = undefined;
    for (const track of this.limiters) {
      track.off?.();
      track.off = undefined;
    }
  }

  /** Takes one sample of every breaker and limiter. */
  sample(): DashboardSample {
    const at = Date.now();
    this.sampledAt = at;
    const breakers: DashboardSample['breakers'] = {};
    const seen = new Set<string>();
    for (const breaker of this.registry?.list() ?? []) {
      seen.add(breaker.name);
      const track = this.track(breaker.name);
      if (track === undefined) continue;
      const t = breaker.totals();
      breakers[breaker.name] = track.sample(t.successes + t.failures, t.failures, t.rejected);
    }
    for (const name of this.breakers.keys()) if (!seen.has(name)) this.breakers.delete(name);
    const limiters: DashboardSample['limiters'] = {};
    for (const track of this.limiters) {
      const [allowed, denied] = track.sample();
      limiters[track.limiter.name] = [allowed, denied, storeOf(track.limiter)];
    }
    return { at, breakers, limiters };
  }

  /** The whole history, for the page's first load. */
  document(): DashboardHistoryDocument {
    const breakers: DashboardBreaker[] = [];
    for (const snapshot of this.registry?.snapshot() ?? []) {
      const track = this.breakers.get(snapshot.name);
      breakers.push({
        ...snapshot,
        critical: this.isCritical(snapshot.name),
        series: {
          calls: track?.calls.toArray() ?? [],
          failures: track?.failures.toArray() ?? [],
          rejected: track?.rejected.toArray() ?? [],
        },
        transitions: track === undefined ? [] : [...track.transitions],
      });
    }
    const limiters = this.limiters.map((track): DashboardLimiterView => {
      const health = safeHealth(track.limiter);
      return {
        name: track.limiter.name,
        status: health?.status ?? 'warn',
        store: health?.store ?? 'fallback',
        series: { allowed: track.allowedRing.toArray(), denied: track.deniedRing.toArray() },
      };
    });
    return {
      intervalMs: this.intervalMs,
      windowMs: this.windowMs,
      sampledAt: this.sampledAt,
      breakers,
      limiters,
    };
  }

  private track(name: string): BreakerTrack | undefined {
    let track = this.breakers.get(name);
    if (track === undefined && this.breakers.size < MAX_HISTORY_BREAKERS) {
      this.breakers.set(name, (track = new BreakerTrack(this.size)));
    }
    return track;
  }
}

function safeHealth(limiter: DashboardLimiter): RateLimiterHealth | undefined {
  try {
    return limiter.health();
  } catch {
    return undefined;
  }
}

function storeOf(limiter: DashboardLimiter): 'primary' | 'fallback' {
  return safeHealth(limiter)?.store === 'primary' ? 'primary' : 'fallback';
}
