/**
 * Durations of one outcome of one breaker, accumulated in plain numbers on the call path and
 * handed to prom-client only when Prometheus scrapes.
 */
export class Durations {
  count = 0;
  /** Sum of the observed durations, in seconds. */
  sum = 0;
  /** Observations per bucket, not cumulative; values above the last bound are only in `count`. */
  readonly perBucket: number[];

  constructor(private readonly bounds: readonly number[]) {
    this.perBucket = bounds.map(() => 0);
  }

  observe(durationMs: number): void {
    const seconds = durationMs > 0 ? durationMs / 1000 : 0;
    this.count++;
    this.sum += seconds;
    const bounds = this.bounds;
    for (let i = 0; i < bounds.length; i++) {
      if (seconds <= (bounds[i] as number)) {
        this.perBucket[i] = (this.perBucket[i] as number) + 1;
        return;
      }
    }
  }
}
