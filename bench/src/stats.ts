/** Median of a non-empty list. */
export function median(values: readonly number[]): number {
  if (values.length === 0) throw new Error('median of an empty list');
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** Median absolute deviation, in percent of the median (0 for a single value). */
export function spreadPct(values: readonly number[]): number {
  const m = median(values);
  if (m === 0) return 0;
  return (median(values.map((v) => Math.abs(v - m))) / m) * 100;
}
