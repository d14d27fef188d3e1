import { systemClock, type Clock } from '../time/clock';
import { durationOption, type Duration } from '../time/duration';
import { applyRateLimit, refundRateLimit, type RateState } from './algorithms';
import { checkClock, checkKnownKeys, checkObject, integerOption } from '../internal/validate';
import type { RateLimitDecision, RateLimitRule, RateLimitStore } from './rate-limit-store';
import { brand } from '../brand';

/** Options of {@link MemoryRateLimitStore}. */
export interface MemoryRateLimitStoreOptions {
  /**
   * Most keys kept at once, over all rules. At the bound, expired keys are dropped first, then
   * the least recently used key.
   * @defaultValue 10 000
   */
  maxKeys?: number;
  /**
   * How often one background sweep drops expired keys (the timer is unref'd, started with the
   * first key and stopped when the store is empty or closed). `0` turns the sweep off: expired
   * keys are then only dropped when their slot is needed.
   * @defaultValue 60 000
   */
  sweepIntervalMs?: Duration;
  /** Time source. @defaultValue `systemClock` */
  clock?: Clock;
}

const OWNER = 'MemoryRateLimitStore';
const KNOWN_OPTIONS = ['maxKeys', 'sweepIntervalMs', 'clock'] as const;
/** Oldest entries checked for expiry before the least recently used live key is evicted. */
const EXPIRY_SCAN = 16;

/** A key's state plus its place in the recency list (oldest after the sentinel). */
class Entry implements RateState {
  time = 0;
  value = 0;
  previous = 0;
  blockedUntil = 0;
  expiresAt = 0;
  prev: Entry = this;
  next: Entry = this;

  constructor(
    public key: string,
    public bucket: Map<string, Entry>,
  ) {}
}

/**
 * A bounded in-process {@link RateLimitStore}: runs every algorithm synchronously in memory.
 *
 * Keys are namespaced by rule name. Memory is bounded by `maxKeys`; expired keys go first, then
 * the least recently used. At most one unref'd sweep timer runs, never a timer per key. The store
 * is `local`: a limiter calls it without a breaker or a timeout.
 *
 * The store trusts its caller ({@link RateLimiter}) to pass an integer `cost >= 0` and a valid
 * rule.
 *
 * @throws ConfigError at construction when an option is invalid
 * @example
 * ```ts
 * const store = new MemoryRateLimitStore({ maxKeys: 50_000 });
 * const limiter = new RateLimiter({ name: 'api', rate: '100/m', store });
 * ```
 */
export class MemoryRateLimitStore implements RateLimitStore {
  /** A memory store cannot fail remotely. */
  readonly local = true;
  /** The bound on stored keys. */
  readonly maxKeys: number;

  private readonly clock: Clock;
  private readonly sweepIntervalMs: number;
  private readonly buckets = new Map<string, Map<string, Entry>>();
  private readonly list = new Entry('', new Map());
  /** The record a decision on a new key runs on; it becomes the key's entry when kept. */
  private scratch: Entry;
  private readonly sweeper: () => void;
  private lastRule: RateLimitRule | undefined;
  private lastBucket: Map<string, Entry> = new Map();
  private count = 0;
  private timer: ReturnType<typeof setInterval> | undefined;
  private closed = false;

  constructor(options: MemoryRateLimitStoreOptions = {}) {
    checkObject(OWNER, 'options', options);
    checkKnownKeys(OWNER, '', options, KNOWN_OPTIONS);
    this.maxKeys =
      options.maxKeys === undefined ? 10_000 : integerOption(OWNER, 'maxKeys', options.maxKeys, 1);
    this.sweepIntervalMs =
      options.sweepIntervalMs === undefined
        ? 60_000
        : durationOption(OWNER, 'sweepIntervalMs', options.sweepIntervalMs, { timer: true });
    this.clock = options.clock === undefined ? systemClock : checkClock(OWNER, options.clock);
    this.sweeper = () => this.sweep();
    this.scratch = new Entry('', this.list.bucket);
  }

  /** Number of keys stored now (expired keys not yet dropped included). */
  get size(): number {
    return this.count;
  }

  /** Applies `cost` to `key` under `rule`; see {@link consumeSync}. */
  consume(key: string, cost: number, rule: RateLimitRule): Promise<RateLimitDecision> {
    return Promise.resolve(this.consumeSync(key, cost, rule));
  }

  /** Applies `cost` to `key` under `rule` and returns the decision synchronously. */
  consumeSync(key: string, cost: number, rule: RateLimitRule): RateLimitDecision {
    const bucket = rule === this.lastRule ? this.lastBucket : this.bucketOf(rule);
    const now = Math.floor(this.clock.now());
    const entry = bucket.get(key);
    if (entry !== undefined) {
      const decision = applyRateLimit(entry, rule, cost, now);
      if (entry.expiresAt <= now) this.remove(entry);
      else this.touch(entry);
      return decision;
    }
    const fresh = this.scratch;
    fresh.expiresAt = 0;
    const decision = applyRateLimit(fresh, rule, cost, now);
    if (fresh.expiresAt > now) {
      this.scratch = new Entry('', this.list.bucket);
      this.insert(key, bucket, fresh, now);
    }
    return decision;
  }

  /** Gives back `cost` units of an earlier allowed decision on `key`; see {@link refundSync}. */
  refund(key: string, cost: number, rule: RateLimitRule): Promise<void> {
    this.refundSync(key, cost, rule);
    return Promise.resolve();
  }

  /**
   * Gives back `cost` units synchronously: the current window's count never drops below zero, a
   * token bucket never rises above its burst, and a key the store no longer holds is left alone.
   */
  refundSync(key: string, cost: number, rule: RateLimitRule): void {
    const entry = this.buckets.get(rule.name)?.get(key);
    if (entry === undefined) return;
    const now = Math.floor(this.clock.now());
    refundRateLimit(entry, rule, cost, now);
    if (entry.expiresAt <= now) this.remove(entry);
  }

  /** Forgets `key` under `rule`. */
  reset(key: string, rule: RateLimitRule): Promise<void> {
    const entry = this.buckets.get(rule.name)?.get(key);
    if (entry !== undefined) this.remove(entry);
    return Promise.resolve();
  }

  /** Drops every key (the store stays usable). */
  clear(): void {
    this.buckets.clear();
    this.lastRule = undefined;
    this.lastBucket = new Map();
    this.list.next = this.list.prev = this.list;
    this.count = 0;
    this.stopTimer();
  }

  /** Stops the sweep timer; the store still answers, without a background sweep. */
  close(): void {
    this.closed = true;
    this.stopTimer();
  }

  private bucketOf(rule: RateLimitRule): Map<string, Entry> {
    let bucket = this.buckets.get(rule.name);
    if (bucket === undefined) {
      bucket = new Map();
      this.buckets.set(rule.name, bucket);
    }
    this.lastRule = rule;
    this.lastBucket = bucket;
    return bucket;
  }

  private insert(key: string, bucket: Map<string, Entry>, entry: Entry, now: number): void {
    if (this.count >= this.maxKeys) this.evict(now);
    entry.key = key;
    entry.bucket = bucket;
    const list = this.list;
    const newest = list.prev;
    entry.prev = newest;
    entry.next = list;
    newest.next = entry;
    list.prev = entry;
    bucket.set(key, entry);
    this.count++;
    if (this.timer === undefined && this.sweepIntervalMs > 0 && !this.closed) this.startTimer();
  }

  /** Moves `entry` to the newest end of the recency list. */
  private touch(entry: Entry): void {
    const list = this.list;
    const newest = list.prev;
    if (newest === entry) return;
    entry.prev.next = entry.next;
    entry.next.prev = entry.prev;
    entry.prev = newest;
    entry.next = list;
    newest.next = entry;
    list.prev = entry;
  }

  private remove(entry: Entry): void {
    entry.prev.next = entry.next;
    entry.next.prev = entry.prev;
    entry.prev = entry.next = entry;
    entry.bucket.delete(entry.key);
    this.count--;
  }

  /** Frees at least one slot: expired keys among the oldest first, else the least recently used. */
  private evict(now: number): void {
    const list = this.list;
    let entry = list.next;
    let freed = false;
    for (let checked = 0; checked < EXPIRY_SCAN && entry !== list; checked++) {
      const next = entry.next;
      if (entry.expiresAt <= now) {
        this.remove(entry);
        freed = true;
      }
      entry = next;
    }
    if (!freed && list.next !== list) this.remove(list.next);
  }

  private sweep(): void {
    const now = Math.floor(this.clock.now());
    const list = this.list;
    let entry = list.next;
    while (entry !== list) {
      const next = entry.next;
      if (entry.expiresAt <= now) this.remove(entry);
      entry = next;
    }
    if (this.count === 0) this.stopTimer();
  }

  private startTimer(): void {
    const timer = setInterval(this.sweeper, this.sweepIntervalMs);
    if (typeof timer === 'object' && typeof timer.unref === 'function') timer.unref();
    this.timer = timer;
  }

  private stopTimer(): void {
    if (this.timer !== undefined) {
      clearInterval(this.timer);
      this.timer = undefined;
    }
  }
}
brand(MemoryRateLimitStore, 'MemoryRateLimitStore');
