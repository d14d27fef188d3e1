/**
 * An exponential moving average that starts as a plain mean: the first `warmup` samples are
 * averaged, then each sample moves the value by `2 / (window + 1)` of the difference
 * (Netflix concurrency-limits' ExpAvgMeasurement).
 */
export class ExpAvg {
  value = 0;
  private sum = 0;
  private count = 0;
  private readonly factor: number;

  constructor(
    window: number,
    private readonly warmup: number,
  ) {
    this.factor = 2 / (window + 1);
  }

  /** Adds a sample and returns the new average. */
  add(sample: number): number {
    if (this.count < this.warmup) {
      this.count++;
      this.sum += sample;
      this.value = this.sum / this.count;
    } else {
      this.value = this.value * (1 - this.factor) + sample * this.factor;
    }
    return this.value;
  }
}
