import {
  ConfigError,
  TimeoutPolicy,
  parseDuration,
  type Duration,
  type RateLimitDecision,
  type RateLimitRule,
  type RateLimitStore,
} from '@breakwater/core';
import type { Cluster, Redis } from 'ioredis';
import {
  ALGORITHM_CODE,
  RATE_LIMIT_SCRIPT,
  RATE_LIMIT_SCRIPT_SHA,
} from './internal/rate-limit-script';
import { checkOptions, clientOption, hashTagContent, prefixOption } from './internal/options';
import { RedisReplyError } from './redis-reply-error';
import { RedisUnavailableError } from './redis-unavailable-error';

/** Options of {@link RedisRateLimitStore}. */
export interface RedisRateLimitStoreOptions {
  /**
   * The ioredis client (`Redis` or `Cluster`) the store sends its commands through. The store
   * does not own it: create it with {@link createRedisClient} (or with
   * {@link failFastRedisOptions}) and close it yourself.
   */
  client: Redis | Cluster;
  /**
   * Prepended to every key the store writes. With `hashTag`, it must not contain `{` or `}`.
   * @defaultValue `'bw:rl:'`
   */
  prefix?: string;
  /**
   * Wrap `<limiter name>:<key>` in a Redis Cluster hash tag (`bw:rl:{api:1.2.3.4}`; a `}` or `%`
   * in it is percent-encoded), so every key of one decision lives in one slot.
   * @defaultValue `true`
   */
  hashTag?: boolean;
  /**
   * Reject a call at once with {@link RedisUnavailableError} when the client's status is not
   * `'ready'`, instead of handing the command to ioredis (whose offline queue would hold it until
   * the connection is back). A client created with `lazyConnect` that has not connected yet is
   * told to connect. Turn it off only for a client that already fails fast.
   * @defaultValue `true`
   */
  failFast?: boolean;
  /**
   * Until the client has been ready once (the application is starting), a call waits up to this
   * long for the first connection instead of failing at once; after that, a lost connection
   * fails at once. The limiter's `storeTimeoutMs` also bounds the wait: connect before serving
   * (`await store.ready()`). 0 never waits.
   * @defaultValue 1000
   */
  readyTimeoutMs?: Duration;
}

/** The slice of the ioredis API the store uses; `Redis` and `Cluster` both provide it. */
interface ScriptClient {
  readonly status: string;
  evalsha(sha: string, numKeys: number, ...args: (string | number)[]): Promise<unknown>;
  eval(script: string, numKeys: number, ...args: (string | number)[]): Promise<unknown>;
  del(key: string): Promise<number>;
  connect(): Promise<void>;
  once?(event: string, listener: () => void): unknown;
  off?(event: string, listener: () => void): unknown;
}

/** A decision waiting for the end of its tick. */
interface Queued {
  readonly key: string;
  readonly rule: RateLimitRule;
  /** Negative: a refund. */
  readonly cost: number;
  readonly resolve: (decision: RateLimitDecision) => void;
  readonly reject: (error: unknown) => void;
}

/** Most decisions in one script call. */
const MAX_BATCH = 128;

const OWNER = 'RedisRateLimitStore';
const KNOWN_OPTIONS: readonly string[] = [
  'client',
  'prefix',
  'hashTag',
  'failFast',
  'readyTimeoutMs',
];
const SCRIPT_CLIENT_METHODS = ['evalsha', 'eval', 'del', 'connect'] as const;

/**
 * A {@link RateLimitStore} in Redis, shared by every process and host that uses the same Redis.
 *
 * Each decision is one round trip: one EVALSHA of a Lua script that runs the whole algorithm
 * (fixed window, sliding window or token bucket, with blocking) atomically on the server, on
 * the server's clock, with the exact arithmetic of the memory store. Decisions asked for in the
 * same tick share one EVALSHA and one TIME (on a single server; a Cluster spreads keys over
 * slots, so there each decision has its own); each decision costs a GET, plus one SET (with its
 * expiry) when something changed. The
 * script is sent by its SHA-1; when Redis does not know it (first use, restart, SCRIPT FLUSH)
 * it is sent once with EVAL, which caches it again.
 *
 * Keys are `<prefix>{<limiter name>:<key>}` and expire when idle (at the end of the window, when
 * a bucket is full again, or when a block ends); `reset()` deletes them.
 *
 * Every reply is checked: anything but a well-formed decision rejects with
 * {@link RedisReplyError}, a store failure like any other, never a decision.
 *
 * Redis being down is a store failure, raised at once: the store never lets a call wait in
 * ioredis' offline queue (see `failFast`), so a limiter's breaker, `storeTimeoutMs` and
 * `onStoreFailure` decide what happens. The store trusts its caller (a `RateLimiter`) to pass an
 * integer `cost >= 0` and a valid rule.
 *
 * @throws ConfigError at construction when an option is invalid
 * @example
 * ```ts
 * import { RateLimiter } from '@breakwater/core';
 * import { RedisRateLimitStore, createRedisClient } from '@breakwater/redis';
 *
 * const client = createRedisClient('redis://localhost:6379', { lazyConnect: true });
 * const store = new RedisRateLimitStore({ client });
 * await store.ready(); // connect before serving
 * const limiter = new RateLimiter({ name: 'api', rate: '100/m', store });
 * const decision = await limiter.consume('user:42');
 * ```
 */
export class RedisRateLimitStore implements RateLimitStore {
  /** State is remote: a limiter guards calls with its store breaker and timeout. */
  readonly local = false;
  /** The key prefix in use. */
  readonly prefix: string;
  /** Whether keys carry a Cluster hash tag. */
  readonly hashTag: boolean;

  /** How long a call waits for the client's first connection. */
  readonly readyTimeoutMs: number;

  private readonly client: ScriptClient;
  private readonly failFast: boolean;
  /** Whether decisions of one tick share a script call (not on a Cluster). */
  private readonly coalesce: boolean;
  /** Decisions asked for in this tick after its first, sent together at its end. */
  private queue: Queued[] = [];
  /** Whether a decision went in this tick (the next ones wait for its end). */
  private tickOpen = false;
  /** Whether the client has been ready once. */
  private wasReady: boolean;
  /** Settles at the client's first `ready` (only while it has never been ready). */
  private firstReady: Promise<void> | undefined = undefined;

  constructor(options: RedisRateLimitStoreOptions) {
    checkOptions(OWNER, options, KNOWN_OPTIONS);
    this.client = clientOption<ScriptClient>(
      OWNER,
      'client',
      options.client,
      SCRIPT_CLIENT_METHODS,
    );
    this.hashTag = booleanOption('hashTag', options.hashTag, true);
    this.failFast = booleanOption('failFast', options.failFast, true);
    this.prefix = prefixOption(OWNER, options.prefix, 'bw:rl:', this.hashTag);
    this.readyTimeoutMs = readyTimeoutOption(options.readyTimeoutMs);
    this.wasReady = this.client.status === 'ready';
    this.coalesce = (options.client as { isCluster?: unknown }).isCluster !== true;
  }

  /**
   * Resolves once the client is ready (connecting a `lazyConnect` client); rejects with
   * {@link RedisUnavailableError} when it is not ready within `timeoutMs`. Await it at startup,
   * before serving, so the first requests find Redis connected.
   *
   * A `RateLimiter` awaits it (with the default bound) before its first store call, outside its
   * store timeout, so a store still connecting does not trip the limiter's breaker.
   *
   * @param timeoutMs - longest wait @defaultValue the store's `readyTimeoutMs`
   * @throws RedisUnavailableError (as a rejection) when the client is not ready in time
   */
  async ready(timeoutMs = this.readyTimeoutMs): Promise<void> {
    if (this.client.status !== 'ready' && !(await this.waitReady(timeoutMs))) {
      throw this.unavailable();
    }
  }

  /**
   * Applies `cost` to `key` under `rule` and returns the decision. Decisions asked for in the
   * same tick travel in one EVALSHA (one per decision on a Cluster, whose keys live in different
   * slots) and are taken in the order they were asked for.
   *
   * @throws RedisUnavailableError (as a rejection) when `failFast` is on and the client is not
   * ready (after up to `readyTimeoutMs` while it has never been ready)
   * @throws RedisReplyError (as a rejection) when the reply is not a decision; any error of the
   * client or the server otherwise
   */
  consume(key: string, cost: number, rule: RateLimitRule): Promise<RateLimitDecision> {
    if (this.failFast && this.client.status !== 'ready') {
      return this.whenStarted().then(() => this.enqueue(key, cost, rule));
    }
    return this.enqueue(key, cost, rule);
  }

  /**
   * Gives back `cost` units an earlier allowed `consume(key, cost, rule)` took: a window's count
   * never drops below zero, a token bucket never rises above its burst, and a key Redis no longer
   * holds is left alone. Travels with the decisions of its tick.
   *
   * @throws RedisUnavailableError (as a rejection) when `failFast` is on and the client is not
   * ready
   * @throws RedisReplyError (as a rejection) when the reply is malformed
   */
  async refund(key: string, cost: number, rule: RateLimitRule): Promise<void> {
    if (!(cost > 0)) return;
    if (this.failFast && this.client.status !== 'ready') await this.whenStarted();
    await this.enqueue(key, -cost, rule);
  }

  /**
   * The first decision of a tick goes at once (a lone decision waits for nothing); the ones
   * asked for after it in the same tick wait for its end and go together.
   */
  private enqueue(key: string, cost: number, rule: RateLimitRule): Promise<RateLimitDecision> {
    return new Promise<RateLimitDecision>((resolve, reject) => {
      const item: Queued = { key: this.redisKey(key, rule), rule, cost, resolve, reject };
      if (this.coalesce && this.tickOpen) {
        this.queue.push(item);
        return;
      }
      if (this.coalesce) {
        this.tickOpen = true;
        queueMicrotask(this.drain);
      }
      this.sendOne(item);
    });
  }

  /** Sends the decisions that came after the first of the tick: one batch (in chunks). */
  private readonly drain = (): void => {
    this.tickOpen = false;
    const queue = this.queue;
    if (queue.length === 0) return;
    this.queue = [];
    for (let i = 0; i < queue.length; i += MAX_BATCH) this.send(queue.slice(i, i + MAX_BATCH));
  };

  /** One decision in its own script call: no arrays built, the reply read in place. */
  private sendOne(item: Queued): void {
    const client = this.client;
    const { key, rule, cost } = item;
    const code = ALGORITHM_CODE[rule.algorithm];
    const { limit, windowMs, burst, blockDurationMs } = rule;
    const settle = (reply: unknown): void => {
      if (Array.isArray(reply) && reply.length === 4) settleAt(item, reply, 0);
      else item.reject(RedisReplyError.create('a rate-limit decision', reply));
    };
    client
      .evalsha(RATE_LIMIT_SCRIPT_SHA, 1, key, code, limit, windowMs, burst, blockDurationMs, cost)
      .then(settle, (error: unknown) => {
        if (!isNoScript(error)) return item.reject(error);
        // Redis lost its script cache (restart, failover, SCRIPT FLUSH): EVAL runs the script
        // and caches it again, on the node that owns the key.
        client
          .eval(RATE_LIMIT_SCRIPT, 1, key, code, limit, windowMs, burst, blockDurationMs, cost)
          .then(settle, item.reject);
      });
  }

  private send(batch: readonly Queued[]): void {
    if (batch.length === 1) return this.sendOne(batch[0]!);
    const client = this.client;
    const args: (string | number)[] = [];
    for (const { key } of batch) args.push(key);
    for (const { rule, cost } of batch) {
      args.push(
        ALGORITHM_CODE[rule.algorithm],
        rule.limit,
        rule.windowMs,
        rule.burst,
        rule.blockDurationMs,
        cost,
      );
    }
    const n = batch.length;
    const settle = (reply: unknown): void => {
      if (!Array.isArray(reply) || reply.length !== 4 * n) {
        const error = RedisReplyError.create('a batch of rate-limit decisions', reply);
        for (const item of batch) item.reject(error);
        return;
      }
      for (let i = 0; i < n; i++) settleAt(batch[i]!, reply, 4 * i);
    };
    const fail = (error: unknown): void => {
      for (const item of batch) item.reject(error);
    };
    client.evalsha(RATE_LIMIT_SCRIPT_SHA, n, ...args).then(settle, (error: unknown) => {
      if (!isNoScript(error)) return fail(error);
      client.eval(RATE_LIMIT_SCRIPT, n, ...args).then(settle, fail);
    });
  }

  /**
   * Deletes what is stored for `key` under `rule`.
   *
   * @throws RedisUnavailableError (as a rejection) when `failFast` is on and the client is not
   * ready
   */
  async reset(key: string, rule: RateLimitRule): Promise<void> {
    const client = this.client;
    if (this.failFast && client.status !== 'ready') await this.whenStarted();
    await client.del(this.redisKey(key, rule));
  }

  /**
   * A call found the client not ready: while it has never been ready (starting up), waits for
   * it up to `readyTimeoutMs`; throws {@link RedisUnavailableError} when it is still not ready.
   */
  private async whenStarted(): Promise<void> {
    if (this.wasReady || this.readyTimeoutMs === 0) throw this.unavailable();
    if (!(await this.waitReady(this.readyTimeoutMs))) throw this.unavailable();
  }

  /** Waits up to `timeoutMs` for the client to be ready; returns whether it is. */
  private async waitReady(timeoutMs: number): Promise<boolean> {
    const client = this.client;
    if (client.status === 'ready') return true;
    if (client.once === undefined || client.off === undefined) return false;
    if (client.status === 'wait') client.connect().catch(ignore);
    if (this.firstReady === undefined) {
      const once = client.once.bind(client);
      this.firstReady = new Promise<void>((resolve) => {
        once('ready', () => {
          this.wasReady = true;
          this.firstReady = undefined;
          resolve();
        });
      });
    }
    const firstReady = this.firstReady;
    // Not ready within the bound: the caller decides without the store.
    if (Number.isFinite(timeoutMs) && timeoutMs >= 1) {
      const bound = new TimeoutPolicy(Math.min(timeoutMs, 2_147_483_647));
      await bound.execute(() => firstReady).catch(() => undefined);
    }
    if (client.status === 'ready') this.wasReady = true;
    return client.status === 'ready';
  }

  /**
   * The error for a call refused while the client is not ready. A client created with
   * `lazyConnect` connects on its first command; since the store sends none, it starts the
   * connection itself.
   */
  private unavailable(): RedisUnavailableError {
    const status = this.client.status;
    if (status === 'wait') this.client.connect().catch(ignore);
    return RedisUnavailableError.create(status);
  }

  /**
   * The Redis key that holds the state of `key` under `rule`, e.g. `bw:rl:{api:user:42}` (in the
   * hash tag, a `}` or `%` is percent-encoded, so the tag always holds the whole name and key).
   */
  redisKey(key: string, rule: RateLimitRule): string {
    return this.hashTag
      ? `${this.prefix}{${hashTagContent(`${rule.name}:${key}`)}}`
      : `${this.prefix}${rule.name}:${key}`;
  }
}

function ignore(): void {}

const isCount = (value: unknown): value is number =>
  typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;

/**
 * Settles `item` with the decision at `offset` of a script reply, checked:
 * `[allowed 0|1, remaining, resetMs, retryAfterMs]`, whole numbers >= 0, `remaining` at most the
 * limit, no wait when allowed; anything else rejects it with {@link RedisReplyError}.
 */
function settleAt(item: Queued, reply: readonly unknown[], offset: number): void {
  const rule = item.rule;
  const limit = rule.algorithm === 'token-bucket' ? rule.burst : rule.limit;
  const allowed = reply[offset];
  const remaining = reply[offset + 1];
  const resetMs = reply[offset + 2];
  const retryAfterMs = reply[offset + 3];
  if (
    (allowed === 0 || allowed === 1) &&
    isCount(remaining) &&
    remaining <= limit &&
    isCount(resetMs) &&
    isCount(retryAfterMs) &&
    (allowed === 0 || retryAfterMs === 0)
  ) {
    item.resolve({ allowed: allowed === 1, limit, remaining, resetMs, retryAfterMs });
  } else {
    item.reject(RedisReplyError.create('a rate-limit decision', reply.slice(offset, offset + 4)));
  }
}

function isNoScript(error: unknown): boolean {
  return error instanceof Error && error.message.startsWith('NOSCRIPT');
}

function readyTimeoutOption(value: unknown): number {
  if (value === undefined) return 1_000;
  const ms = parseDuration(value);
  if (ms === undefined || ms < 0 || ms > 60_000) {
    throw new ConfigError(
      OWNER,
      'readyTimeoutMs',
      value,
      'must be a duration from 0 to 60000 ms (milliseconds, or a string like "1s")',
    );
  }
  return ms;
}

function booleanOption(path: string, value: unknown, fallback: boolean): boolean {
  if (value === undefined) return fallback;
  if (typeof value !== 'boolean') throw new ConfigError(OWNER, path, value, 'must be a boolean');
  return value;
}
