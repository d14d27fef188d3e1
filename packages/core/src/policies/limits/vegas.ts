import { checkKnownKeys, checkObject, integerOption, numberOption } from '../../internal/validate';
import { clamp, type LimitAlgorithm, type LimitBounds, type LimitEstimates } from './limit';

/** Options of the `vegas` algorithm (Netflix concurrency-limits' VegasLimit). */
export interface VegasOptions {
  /**
   * Below this estimated queue the limit grows by `log10(limit)`.
   * @defaultValue `3 * log10(limit)` (at least 3)
   */
  alpha?: number;
  /**
   * Above this estimated queue the limit falls by `log10(limit)`.
   * @defaultValue `6 * log10(limit)` (at least 6)
   */
  beta?: number;
  /** Share of each new estimate blended into the limit. @defaultValue 1 (none) */
  smoothing?: number;
  /**
   * The no-load latency is measured afresh about every `probeMultiplier * limit` samples (with
   * jitter), so it follows a dependency that became slower for good. @defaultValue 30
   */
  probeMultiplier?: number;
}

export const VEGAS_KEYS = {
  alpha: true,
  beta: true,
  smoothing: true,
  probeMultiplier: true,
} as const satisfies Record<keyof VegasOptions, true>;

/** `max(1, floor(log10(n)))`, Netflix's Log10RootIntFunction. */
export function log10Root(n: number): number {
  return n < 10 ? 1 : Math.floor(Math.log10(n));
}

/**
 * Vegas (after TCP Vegas): keeps the lowest latency seen as the no-load latency and estimates the
 * queue as `ceil(limit * (1 - noLoad / rtt))`. A queue at most `log10(limit)` grows the limit by
 * `beta`; below `alpha` by `log10(limit)`; above `beta` it falls by `log10(limit)`; in between it
 * holds. A dropped call (failure, timeout) always lowers it by `log10(limit)`. A sample under
 * the no-load latency becomes the new no-load latency and moves nothing else; every
 * `probeMultiplier * limit * jitter(0.5..1)` samples the no-load latency is reset to the current
 * one. While fewer than half the limit's calls are in flight the limit does not grow.
 */
export class VegasLimit implements LimitAlgorithm {
  readonly name = 'vegas';
  private estimated: number;
  private noLoadRtt = 0;
  private lastRtt = 0;
  private probeCount = 0;
  private probeJitter: number;
  private readonly smoothing: number;
  private readonly probeMultiplier: number;

  constructor(
    private readonly bounds: LimitBounds,
    private readonly options: VegasOptions = {},
    private readonly random: () => number = Math.random,
  ) {
    this.estimated = bounds.initialLimit;
    this.smoothing = options.smoothing ?? 1;
    this.probeMultiplier = options.probeMultiplier ?? 30;
    this.probeJitter = this.jitter();
  }

  get limit(): number {
    return Math.floor(this.estimated);
  }

  update(rttMs: number, inFlight: number, dropped: boolean): number {
    if (!(rttMs > 0)) return this.limit;
    this.lastRtt = rttMs;
    this.probeCount++;
    if (this.probeJitter * this.probeMultiplier * this.estimated <= this.probeCount) {
      this.probeJitter = this.jitter();
      this.probeCount = 0;
      this.noLoadRtt = rttMs;
      return this.limit;
    }
    if (this.noLoadRtt === 0 || rttMs < this.noLoadRtt) {
      this.noLoadRtt = rttMs;
      return this.limit;
    }
    const estimated = this.estimated;
    const whole = Math.floor(estimated);
    const step = log10Root(whole);
    let next: number;
    if (dropped) {
      next = estimated - step;
    } else if (inFlight * 2 < estimated) {
      return this.limit;
    } else {
      const queue = Math.ceil(estimated * (1 - this.noLoadRtt / rttMs));
      const alpha = this.options.alpha ?? 3 * step;
      const beta = this.options.beta ?? 6 * step;
      if (queue <= step) next = estimated + beta;
      else if (queue < alpha) next = estimated + step;
      else if (queue > beta) next = estimated - step;
      else return this.limit;
    }
    next = clamp(next, this.bounds.minLimit, this.bounds.maxLimit);
    this.estimated = (1 - this.smoothing) * estimated + this.smoothing * next;
    return this.limit;
  }

  estimates(): LimitEstimates {
    return { noLoadRttMs: this.noLoadRtt, lastRttMs: this.lastRtt };
  }

  private jitter(): number {
    return 0.5 + this.random() * 0.5;
  }
}

/** Validates `vegas` options (under `path`). @internal */
export function checkVegas(owner: string, path: string, value: unknown): VegasOptions {
  if (value === undefined) return {};
  checkObject(owner, path, value);
  checkKnownKeys(owner, path, value, Object.keys(VEGAS_KEYS));
  const options: VegasOptions = {};
  if (value.alpha !== undefined)
    options.alpha = numberOption(owner, `${path}.alpha`, value.alpha, 0, 1_000_000);
  if (value.beta !== undefined)
    options.beta = numberOption(owner, `${path}.beta`, value.beta, 0, 1_000_000);
  if (options.alpha !== undefined && options.beta !== undefined && options.beta < options.alpha)
    numberOption(owner, `${path}.beta`, options.beta, options.alpha, 1_000_000);
  if (value.smoothing !== undefined)
    options.smoothing = numberOption(owner, `${path}.smoothing`, value.smoothing, 0, 1, true);
  if (value.probeMultiplier !== undefined)
    options.probeMultiplier = integerOption(
      owner,
      `${path}.probeMultiplier`,
      value.probeMultiplier,
      1,
      1_000_000,
    );
  return options;
}
