import { checkKnownKeys, checkObject, integerOption, numberOption } from '../../internal/validate';
import { ExpAvg } from './exp-avg';
import { clamp, type LimitAlgorithm, type LimitBounds, type LimitEstimates } from './limit';

/** Options of the `gradient2` algorithm (Netflix concurrency-limits' Gradient2Limit). */
export interface Gradient2Options {
  /**
   * Share of each new estimate blended into the limit (`limit * (1 - s) + estimate * s`).
   * @defaultValue 0.2
   */
  smoothing?: number;
  /** Calls allowed to queue: added to the limit at each step, so it probes upwards. @defaultValue 4 */
  queueSize?: number;
  /** Samples the long-term latency average spans. @defaultValue 600 */
  longWindow?: number;
  /**
   * How much the latency may exceed its long-term average before the limit falls (1.5 = 50 %
   * more). @defaultValue 1.5
   */
  rttTolerance?: number;
}

export const GRADIENT2_KEYS = {
  smoothing: true,
  queueSize: true,
  longWindow: true,
  rttTolerance: true,
} as const satisfies Record<keyof Gradient2Options, true>;

/** Samples averaged plainly before the long-term average turns exponential. */
const WARMUP = 10;

/**
 * Gradient2: compares the latency of each call with a long-term exponential average of
 * latency. While the latency stays within `rttTolerance` of that average the limit grows by
 * `queueSize` (smoothed); when it inflates the limit shrinks in proportion, by at most half per
 * step. When the average is more than twice the latest latency (recovery after a long overload),
 * the average is pulled down 5 % per sample. While fewer than half the limit's calls are in
 * flight the limit does not move (the caller, not the dependency, is the bottleneck). Drops do
 * not move the limit directly: a timeout shows as latency.
 */
export class Gradient2Limit implements LimitAlgorithm {
  readonly name = 'gradient2';
  private estimated: number;
  private lastRtt = 0;
  private readonly longRtt: ExpAvg;
  private readonly smoothing: number;
  private readonly queueSize: number;
  private readonly tolerance: number;

  constructor(
    private readonly bounds: LimitBounds,
    options: Gradient2Options = {},
  ) {
    this.estimated = bounds.initialLimit;
    this.smoothing = options.smoothing ?? 0.2;
    this.queueSize = options.queueSize ?? 4;
    this.tolerance = options.rttTolerance ?? 1.5;
    this.longRtt = new ExpAvg(options.longWindow ?? 600, WARMUP);
  }

  get limit(): number {
    return Math.floor(this.estimated);
  }

  update(rttMs: number, inFlight: number): number {
    if (!(rttMs > 0)) return this.limit;
    const estimated = this.estimated;
    this.lastRtt = rttMs;
    const longRtt = this.longRtt.add(rttMs);
    // Latency back to normal after a long overload: bring the average down without waiting.
    if (longRtt / rttMs > 2) this.longRtt.value = longRtt * 0.95;
    if (inFlight < estimated / 2) return this.limit;
    const gradient = clamp((this.tolerance * longRtt) / rttMs, 0.5, 1);
    const target = estimated * gradient + this.queueSize;
    const smoothed = estimated * (1 - this.smoothing) + target * this.smoothing;
    this.estimated = clamp(smoothed, this.bounds.minLimit, this.bounds.maxLimit);
    return this.limit;
  }

  estimates(): LimitEstimates {
    return { noLoadRttMs: this.longRtt.value, lastRttMs: this.lastRtt };
  }
}

/** Validates `gradient2` options (under `path`). @internal */
export function checkGradient2(owner: string, path: string, value: unknown): Gradient2Options {
  if (value === undefined) return {};
  checkObject(owner, path, value);
  checkKnownKeys(owner, path, value, Object.keys(GRADIENT2_KEYS));
  const options: Gradient2Options = {};
  if (value.smoothing !== undefined)
    options.smoothing = numberOption(owner, `${path}.smoothing`, value.smoothing, 0, 1, true);
  if (value.queueSize !== undefined)
    options.queueSize = numberOption(owner, `${path}.queueSize`, value.queueSize, 0, 1_000_000);
  if (value.longWindow !== undefined)
    options.longWindow = integerOption(owner, `${path}.longWindow`, value.longWindow, 1, 1_000_000);
  if (value.rttTolerance !== undefined)
    options.rttTolerance = numberOption(owner, `${path}.rttTolerance`, value.rttTolerance, 1, 100);
  return options;
}
