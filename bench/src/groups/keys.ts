/** 1,024 client keys (addresses), cycled through by the rate-limit cases. */
export const KEYS: readonly string[] = Array.from(
  { length: 1024 },
  (_, i) => `10.0.${i >> 8}.${i & 255}`,
);

/** A function returning the next key of the cycle; each case gets its own cursor. */
export function keyCycle(): () => string {
  let i = 0;
  return () => KEYS[(i = (i + 1) & 1023)]!;
}

/** High enough that every call of a run is allowed: the cases measure the allowed path. */
export const LIMIT = 1_000_000;
