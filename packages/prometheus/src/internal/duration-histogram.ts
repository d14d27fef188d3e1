import type { Durations, Exemplar } from './durations';

/** One series of the histogram: its labels and its durations. */
export type DurationSeries = readonly [labels: Readonly<Record<string, string>>, Durations];

/** A sample of the histogram, as prom-client's registry renders it. */
interface HistogramValue {
  metricName: string;
  labels: Record<string, string | number>;
  value: number;
  exemplar?: Exemplar;
}

/**
 * A histogram whose buckets are counted by Breakwater's listeners and rendered by prom-client:
 * a metric object registered with `registry.registerMetric()` that answers `get()` in the shape
 * prom-client's own metrics do, so nothing of prom-client's internals is read or written.
 */
export class DurationHistogram {
  readonly type = 'histogram';
  readonly aggregator = 'sum';

  constructor(
    readonly name: string,
    readonly help: string,
    private readonly bounds: readonly number[],
    private readonly series: () => Iterable<DurationSeries>,
  ) {}

  get(): Promise<{
    name: string;
    help: string;
    type: 'histogram';
    aggregator: 'sum';
    values: HistogramValue[];
  }> {
    const values: HistogramValue[] = [];
    const bucket = `${this.name}_bucket`;
    for (const [labels, d] of this.series()) {
      let cumulative = 0;
      for (let i = 0; i <= this.bounds.length; i++) {
        cumulative += d.perBucket[i] as number;
        const value: HistogramValue = {
          metricName: bucket,
          labels: { ...labels, le: i < this.bounds.length ? (this.bounds[i] as number) : '+Inf' },
          value: cumulative,
        };
        const exemplar = d.exemplars?.[i];
        if (exemplar !== undefined) value.exemplar = exemplar;
        values.push(value);
      }
      values.push({ metricName: `${this.name}_sum`, labels: { ...labels }, value: d.sum });
      values.push({ metricName: `${this.name}_count`, labels: { ...labels }, value: d.count });
    }
    return Promise.resolve({
      name: this.name,
      help: this.help,
      type: this.type,
      aggregator: this.aggregator,
      values,
    });
  }

  /** Values come from the breakers, so there is nothing of prom-client's to reset. */
  reset(): void {}
}
