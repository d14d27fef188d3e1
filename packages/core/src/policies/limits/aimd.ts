import { type Duration, durationOption } from '../../time/duration';
import { ConfigError } from '../../errors';
import { checkKnownKeys, checkObject } from '../../internal/validate';
import { clamp, type LimitAlgorithm, type LimitBounds, type LimitEstimates } from './limit';

/** Options of the `aimd` algorithm (Netflix concurrency-limits' AIMDLimit). */
export interface AimdOptions {
  /** The limit is multiplied by this after a drop (from 0.5 up to, not including, 1). @defaultValue 0.9 */
  backoffRatio?: number;
  /** A call slower than this counts as a drop (`'2s'` also accepted). @defaultValue 5000 */
  timeoutMs?: Duration;
}

export const AIMD_KEYS = {
  backoffRatio: true,
  timeoutMs: true,
} as const satisfies Record<keyof AimdOptions, true>;

/**
 * AIMD (additive increase, multiplicative decrease, as TCP Reno): a call that is dropped or
 * slower than `timeoutMs` multiplies the limit by `backoffRatio` (rounded down); any other call
 * adds 1 while at least half the limit is in flight.
 */
export class AimdLimit implements LimitAlgorithm {
  readonly name = 'aimd';
  private current: number;
  private lastRtt = 0;
  private readonly backoffRatio: number;
  private readonly timeoutMs: number;

  constructor(
    private readonly bounds: LimitBounds,
    options: { backoffRatio?: number; timeoutMs?: number } = {},
  ) {
    this.current = bounds.initialLimit;
    this.backoffRatio = options.backoffRatio ?? 0.9;
    this.timeoutMs = options.timeoutMs ?? 5_000;
  }

  get limit(): number {
    return this.current;
  }

  update(rttMs: number, inFlight: number, dropped: boolean): number {
    this.lastRtt = rttMs;
    let next = this.current;
    if (dropped || rttMs > this.timeoutMs) next = Math.floor(next * this.backoffRatio);
    else if (inFlight * 2 >= next) next = next + 1;
    this.current = clamp(next, this.bounds.minLimit, this.bounds.maxLimit);
    return this.current;
  }

  estimates(): LimitEstimates {
    return { noLoadRttMs: 0, lastRttMs: this.lastRtt };
  }
}

/** Validates `aimd` options (under `path`). @internal */
export function checkAimd(
  owner: string,
  path: string,
  value: unknown,
): { backoffRatio?: number; timeoutMs?: number } {
  if (value === undefined) return {};
  checkObject(owner, path, value);
  checkKnownKeys(owner, path, value, Object.keys(AIMD_KEYS));
  const options: { backoffRatio?: number; timeoutMs?: number } = {};
  const ratio = value.backoffRatio;
  if (ratio !== undefined) {
    if (typeof ratio !== 'number' || !(ratio >= 0.5 && ratio < 1)) {
      throw new ConfigError(
        owner,
        `${path}.backoffRatio`,
        ratio,
        'must be a number from 0.5 to below 1',
      );
    }
    options.backoffRatio = ratio;
  }
  if (value.timeoutMs !== undefined)
    options.timeoutMs = durationOption(owner, `${path}.timeoutMs`, value.timeoutMs, {
      allowZero: false,
    });
  return options;
}
