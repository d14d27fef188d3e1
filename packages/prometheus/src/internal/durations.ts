/** An exemplar of one histogram bucket: the labels (a trace id) of its latest observation. */
export interface Exemplar {
  labelSet: Readonly<Record<string, string>>;
  /** The observed value, in seconds. */
  value: number;
  /** When it was observed, in seconds since the epoch. */
  timestamp: number;
}

/** Longest label set of an exemplar, names and values together (OpenMetrics). */
const MAX_EXEMPLAR_RUNES = 128;

/**
 * Durations of one outcome of one breaker, accumulated in plain numbers on the call path and
 * handed to prom-client only when Prometheus scrapes.
 */
export class Durations {
  count = 0;
  /** Sum of the observed durations, in seconds. */
  sum = 0;
  /** Observations per bucket, not cumulative; the last entry counts those above every bound. */
  readonly perBucket: number[];
  /** The latest exemplar per bucket (the last for +Inf), when exemplars are on. */
  exemplars: (Exemplar | undefined)[] | undefined;

  constructor(private readonly bounds: readonly number[]) {
    this.perBucket = new Array<number>(bounds.length + 1).fill(0);
  }

  /** Records one duration; returns the index of its bucket. */
  observe(durationMs: number): number {
    const seconds = durationMs > 0 ? durationMs / 1000 : 0;
    this.count++;
    this.sum += seconds;
    const bounds = this.bounds;
    let i = 0;
    while (i < bounds.length && seconds > (bounds[i] as number)) i++;
    this.perBucket[i] = (this.perBucket[i] as number) + 1;
    return i;
  }

  /** Keeps `labelSet` as the exemplar of bucket `index` when it is a valid exemplar label set. */
  exemplify(index: number, durationMs: number, labelSet: unknown): void {
    if (!isExemplarLabelSet(labelSet)) return;
    const exemplars = (this.exemplars ??= new Array<Exemplar | undefined>(this.perBucket.length));
    exemplars[index] = {
      labelSet,
      value: durationMs > 0 ? durationMs / 1000 : 0,
      timestamp: Date.now() / 1000,
    };
  }
}

function isExemplarLabelSet(value: unknown): value is Readonly<Record<string, string>> {
  if (typeof value !== 'object' || value === null) return false;
  let runes = 0;
  let labels = 0;
  for (const [name, labelValue] of Object.entries(value as Record<string, unknown>)) {
    if (typeof labelValue !== 'string' || !/^[a-zA-Z_][a-zA-Z0-9_]*$/.test(name)) return false;
    runes += name.length + labelValue.length;
    labels++;
  }
  return labels > 0 && runes <= MAX_EXEMPLAR_RUNES;
}
