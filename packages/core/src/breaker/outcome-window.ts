/** Outcome flags stored per call: every recorded call has CALL; FAILURE and SLOW are added. */
export const CALL = 1;
export const FAILURE = 2;
export const SLOW = 4;

/**
 * Counts calls, failures and slow calls over the last N calls or the last T milliseconds.
 * Every operation is O(1) (the time window is O(1) amortised: each bucket is cleared once per lap).
 */
export interface OutcomeWindow {
  readonly calls: number;
  readonly failures: number;
  readonly slowCalls: number;
  /** Adds one outcome (a combination of the flags above). */
  record(flags: number, now: number): void;
  /** Drops what has aged out by `now` (a no-op for a count window). */
  refresh(now: number): void;
  clear(): void;
}

/** The last `size` calls, in a ring of one byte per call, allocated on first use. */
export class CountWindow implements OutcomeWindow {
  calls = 0;
  failures = 0;
  slowCalls = 0;
  private ring: Uint8Array | undefined = undefined;
  private position = 0;

  constructor(private readonly size: number) {}

  record(flags: number): void {
    const ring = (this.ring ??= new Uint8Array(this.size));
    const position = this.position;
    const old = ring[position]!;
    if (old !== 0) {
      this.calls--;
      if ((old & FAILURE) !== 0) this.failures--;
      if ((old & SLOW) !== 0) this.slowCalls--;
    }
    ring[position] = flags;
    this.calls++;
    if ((flags & FAILURE) !== 0) this.failures++;
    if ((flags & SLOW) !== 0) this.slowCalls++;
    this.position = position + 1 === this.size ? 0 : position + 1;
  }

  /** Adds `n` outcomes with the same flags (what `n` calls to `record` would do). */
  recordRepeated(flags: number, n: number): void {
    if (n < this.size) {
      for (let i = 0; i < n; i++) this.record(flags);
      return;
    }
    const ring = (this.ring ??= new Uint8Array(this.size));
    ring.fill(flags);
    this.position = 0;
    this.calls = this.size;
    this.failures = (flags & FAILURE) !== 0 ? this.size : 0;
    this.slowCalls = (flags & SLOW) !== 0 ? this.size : 0;
  }

  refresh(): void {}

  clear(): void {
    this.ring?.fill(0);
    this.position = 0;
    this.calls = 0;
    this.failures = 0;
    this.slowCalls = 0;
  }
}

/**
 * The last `durationMs`, in `buckets` buckets of `durationMs / buckets` each. A sample is
 * forgotten once its bucket is more than `buckets - 1` buckets old, however long the idle gap.
 */
export class TimeWindow implements OutcomeWindow {
  calls = 0;
  failures = 0;
  slowCalls = 0;
  private counts: Uint32Array | undefined = undefined; // [calls, failures, slow] per bucket
  private head = -Infinity; // index of the newest bucket
  private readonly bucketMs: number;

  constructor(
    durationMs: number,
    private readonly buckets: number,
  ) {
    this.bucketMs = durationMs / buckets;
  }

  record(flags: number, now: number): void {
    this.refresh(now);
    const counts = (this.counts ??= new Uint32Array(this.buckets * 3));
    const base = this.slot(this.head) * 3;
    counts[base]!++;
    this.calls++;
    if ((flags & FAILURE) !== 0) {
      counts[base + 1]!++;
      this.failures++;
    }
    if ((flags & SLOW) !== 0) {
      counts[base + 2]!++;
      this.slowCalls++;
    }
  }

  refresh(now: number): void {
    const index = Math.floor(now / this.bucketMs);
    const head = this.head;
    if (index <= head) return; // same bucket, or a clock that stepped back: keep the newest
    this.head = index;
    const counts = this.counts;
    if (counts === undefined || this.calls === 0) return;
    if (index - head >= this.buckets) {
      this.clear();
      this.head = index;
      return;
    }
    for (let i = head + 1; i <= index; i++) {
      const base = this.slot(i) * 3;
      this.calls -= counts[base]!;
      this.failures -= counts[base + 1]!;
      this.slowCalls -= counts[base + 2]!;
      counts[base] = 0;
      counts[base + 1] = 0;
      counts[base + 2] = 0;
    }
  }

  clear(): void {
    this.counts?.fill(0);
    this.calls = 0;
    this.failures = 0;
    this.slowCalls = 0;
  }

  private slot(index: number): number {
    const slot = index % this.buckets;
    return slot < 0 ? slot + this.buckets : slot;
  }
}
