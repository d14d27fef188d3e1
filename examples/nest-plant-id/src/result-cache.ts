import { createHash } from 'node:crypto';
import type { Clock } from '@breakwater/core';

interface Entry<T> {
  value: T;
  expiresAt: number;
}

/**
 * A small in-memory cache of identification answers keyed by the image's SHA-256: the same photo
 * uploaded again costs no quota and works while both providers are down. Bounded: past
 * `maxEntries` the oldest entry goes. Time comes from the injected clock.
 */
export class ResultCache<T> {
  private readonly entries = new Map<string, Entry<T>>();
  private hitCount = 0;

  constructor(
    private readonly clock: Clock,
    private readonly ttlMs: number,
    private readonly maxEntries: number,
  ) {}

  /** The cache key of an image: its SHA-256, hex. */
  static keyOf(image: Buffer): string {
    return createHash('sha256').update(image).digest('hex');
  }

  /** The fresh entry under `key`, if any. */
  get(key: string): T | undefined {
    const entry = this.entries.get(key);
    if (entry === undefined) return undefined;
    if (entry.expiresAt <= this.clock.now()) {
      this.entries.delete(key);
      return undefined;
    }
    this.hitCount += 1;
    return entry.value;
  }

  /** Keeps `value` under `key` for the cache's time to live. */
  set(key: string, value: T): void {
    this.entries.delete(key);
    if (this.entries.size >= this.maxEntries) {
      const oldest = this.entries.keys().next();
      if (oldest.done !== true) this.entries.delete(oldest.value);
    }
    this.entries.set(key, { value, expiresAt: this.clock.now() + this.ttlMs });
  }

  /** Entries held (some may have expired and not been swept yet). */
  get size(): number {
    return this.entries.size;
  }

  /** Answers served from the cache so far. */
  get hits(): number {
    return this.hitCount;
  }
}
