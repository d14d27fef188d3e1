import type { Clock } from '@breakwater/core';

/** What `ThrottlerStorage.increment()` resolves to (`@nestjs/throttler` 6). */
export interface ThrottlerStorageRecord {
  totalHits: number;
  /** Seconds until the window resets. */
  timeToExpire: number;
  isBlocked: boolean;
  /** Seconds until a blocked key is let through again (0 when not blocked). */
  timeToBlockExpire: number;
}

interface KeyRecord {
  /** Expiry time of each counted hit, per throttler name. */
  readonly hits: Map<string, number[]>;
  /** End of the window that started with the key's first hit (the `Reset` header). */
  expiresAt: number;
  blockExpiresAt: number;
  isBlocked: boolean;
}

/**
 * The counting rules of `@nestjs/throttler` 6's own in-memory `ThrottlerStorageService`, step
 * for step, on an injected clock and with a bounded number of keys:
 *
 * - each hit counts for `ttl` after it happened; the window reported as `timeToExpire` starts at
 *   the key's first hit and restarts when it has passed (not aligned to the clock);
 * - the hit that goes over `limit` blocks the key for `blockDuration` (the throttler passes
 *   `ttl` unless told otherwise), however short; blocked hits are not counted; the first hit
 *   after the block starts a fresh count;
 * - with `blockDuration` 0, a hit over the limit is refused until the oldest counted hit
 *   expires.
 *
 * No timer: expired hits are dropped when their key is next used, and past `maxKeys` idle keys
 * among the oldest go first, else the oldest key.
 * @internal
 */
export class ThrottlerRecords {
  private readonly records = new Map<string, KeyRecord>();

  constructor(
    private readonly clock: Clock,
    private readonly maxKeys: number,
  ) {}

  /** Counts a hit; `ttl` and `blockDuration` in milliseconds, times out in seconds. */
  increment(
    key: string,
    ttl: number,
    limit: number,
    blockDuration: number,
    name: string,
  ): ThrottlerStorageRecord {
    const now = this.clock.now();
    let record = this.records.get(key);
    if (record === undefined) {
      if (this.records.size >= this.maxKeys) this.evict(now);
      record = { hits: new Map(), expiresAt: now + ttl, blockExpiresAt: 0, isBlocked: false };
      this.records.set(key, record);
    }
    let hits = (record.hits.get(name) ?? []).filter((expiresAt) => expiresAt > now);
    record.hits.set(name, hits);
    if (record.expiresAt <= now) record.expiresAt = now + ttl;
    const timeToExpire = seconds(record.expiresAt - now);

    if (blockDuration <= 0) {
      const isBlocked = hits.length >= limit;
      if (!isBlocked) hits.push(now + ttl);
      return {
        totalHits: hits.length + (isBlocked ? 1 : 0),
        timeToExpire,
        isBlocked,
        timeToBlockExpire: isBlocked ? seconds(Math.min(...hits) - now) : 0,
      };
    }
    if (!record.isBlocked) hits.push(now + ttl);
    if (hits.length > limit && !record.isBlocked) {
      record.isBlocked = true;
      record.blockExpiresAt = now + blockDuration;
    }
    const timeToBlockExpire = seconds(record.blockExpiresAt - now);
    if (timeToBlockExpire <= 0 && record.isBlocked) {
      record.isBlocked = false;
      hits = [now + ttl];
      record.hits.set(name, hits);
    }
    return {
      totalHits: hits.length,
      timeToExpire,
      isBlocked: record.isBlocked,
      timeToBlockExpire: record.isBlocked ? timeToBlockExpire : 0,
    };
  }

  /** Keys held now. */
  get size(): number {
    return this.records.size;
  }

  clear(): void {
    this.records.clear();
  }

  /**
   * Makes room for one key: drops the idle keys among the oldest `EVICTION_SCAN` (creation
   * order), or the oldest key when none of them is idle. Bounded work per new key.
   */
  private evict(now: number): void {
    let scanned = 0;
    for (const [key, record] of this.records) {
      if (++scanned > EVICTION_SCAN) break;
      if (isIdle(record, now)) this.records.delete(key);
    }
    if (this.records.size >= this.maxKeys) this.records.delete(this.records.keys().next().value!);
  }
}

/** How many of the oldest keys a full store looks at for idle ones. */
const EVICTION_SCAN = 64;

function isIdle(record: KeyRecord, now: number): boolean {
  if (record.isBlocked && record.blockExpiresAt > now) return false;
  if (record.expiresAt > now) return false;
  for (const hits of record.hits.values()) {
    if (hits.some((expiresAt) => expiresAt > now)) return false;
  }
  return true;
}

function seconds(ms: number): number {
  return Math.ceil(ms / 1000);
}
