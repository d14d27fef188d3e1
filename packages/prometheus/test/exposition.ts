import type { Registry } from 'prom-client';

/** Samples of a text exposition, keyed by `name{label="value",...}` with labels sorted. */
export type Samples = Map<string, number>;

const LINE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/;
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)",?/gy;

/** Parses the Prometheus text format (0.0.4) into samples; throws on a line it cannot read. */
export function parseExposition(text: string): Samples {
  const samples: Samples = new Map();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const match = LINE.exec(line);
    if (match === null) throw new Error(`unreadable exposition line: ${line}`);
    const [, name, rawLabels = '', rawValue] = match;
    const labels: Record<string, string> = {};
    LABEL.lastIndex = 0;
    let consumed = 0;
    for (let m = LABEL.exec(rawLabels); m !== null; m = LABEL.exec(rawLabels)) {
      labels[m[1]!] = m[2]!.replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
      consumed = LABEL.lastIndex;
    }
    if (consumed !== rawLabels.length) throw new Error(`unreadable labels: ${line}`);
    const value = rawValue === '+Inf' ? Infinity : rawValue === 'Nan' ? NaN : Number(rawValue);
    const key = sampleKey(name!, labels);
    if (samples.has(key)) throw new Error(`duplicate sample: ${key}`);
    samples.set(key, value);
  }
  return samples;
}

/** The key of a sample in {@link Samples}. */
export function sampleKey(name: string, labels: Record<string, string | number> = {}): string {
  const parts = Object.keys(labels)
    .sort()
    .map((key) => `${key}=${JSON.stringify(String(labels[key]))}`);
  return `${name}{${parts.join(',')}}`;
}

/** Scrapes a registry and parses the result. */
export async function scrape(register: Registry): Promise<Samples> {
  return parseExposition(await register.metrics());
}

/** The samples of one metric family (histograms: pass the `_bucket`/`_sum`/`_count` name). */
export function family(samples: Samples, name: string): Record<string, number> {
  const result: Record<string, number> = {};
  for (const [key, value] of samples) {
    if (key.startsWith(`${name}{`)) result[key] = value;
  }
  return result;
}
