import {
  ConfigError,
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
}

/** The slice of the ioredis API the store uses; `Redis` and `Cluster` both provide it. */
interface ScriptClient {
  readonly status: string;
  evalsha(sha: string, numKeys: number, ...args: (string | number)[]): Promise<unknown>;
  eval(script: string, numKeys: number, ...args: (string | number)[]): Promise<unknown>;
  del(key: string): Promise<number>;
  connect(): Promise<void>;
}

type Reply = readonly [allowed: number, remaining: number, resetMs: number, retryAfterMs: number];

const OWNER = 'RedisRateLimitStore';
const KNOWN_OPTIONS: readonly string[] = ['client', 'prefix', 'hashTag', 'failFast'];
const SCRIPT_CLIENT_METHODS = ['evalsha', 'eval', 'del', 'connect'] as const;

/**
 * A {@link RateLimitStore} in Redis, shared by every process and host that uses the same Redis.
 *
 * Each decision is one round trip: one EVALSHA of a Lua script that runs the whole algorithm
 * (fixed window, sliding window or token bucket, with blocking) atomically on the server, on
 * the server's clock, with the exact arithmetic of the memory store. Inside the script a
 * decision costs TIME and GET, plus one SET (with its expiry) when something changed. The
 * script is sent by its SHA-1; when Redis does not know it (first use, restart, SCRIPT FLUSH)
 * it is sent once with EVAL, which caches it again.
 *
 * Keys are `<prefix>{<limiter name>:<key>}` and expire when idle (at the end of the window, when
 * a bucket is full again, or when a block ends); `reset()` deletes them.
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
 * await client.connect();
 * const store = new RedisRateLimitStore({ client });
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

  private readonly client: ScriptClient;
  private readonly failFast: boolean;

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
  }

  /**
   * Applies `cost` to `key` under `rule` in one EVALSHA and returns the decision.
   *
   * @throws RedisUnavailableError (as a rejection) when `failFast` is on and the client is not
   * ready; any error of the client or the server otherwise
   */
  async consume(key: string, cost: number, rule: RateLimitRule): Promise<RateLimitDecision> {
    const client = this.client;
    if (this.failFast && client.status !== 'ready') throw this.unavailable();
    const redisKey = this.redisKey(key, rule);
    const code = ALGORITHM_CODE[rule.algorithm];
    let reply: unknown;
    try {
      reply = await client.evalsha(
        RATE_LIMIT_SCRIPT_SHA,
        1,
        redisKey,
        code,
        rule.limit,
        rule.windowMs,
        rule.burst,
        rule.blockDurationMs,
        cost,
      );
    } catch (error) {
      if (!isNoScript(error)) throw error;
      // Redis lost its script cache (restart, failover, SCRIPT FLUSH): EVAL runs the script and
      // caches it again, on the node that owns the key.
      reply = await client.eval(
        RATE_LIMIT_SCRIPT,
        1,
        redisKey,
        code,
        rule.limit,
        rule.windowMs,
        rule.burst,
        rule.blockDurationMs,
        cost,
      );
    }
    const r = reply as Reply;
    return {
      allowed: r[0] === 1,
      limit: rule.algorithm === 'token-bucket' ? rule.burst : rule.limit,
      remaining: r[1],
      resetMs: r[2],
      retryAfterMs: r[3],
    };
  }

  /**
   * Deletes what is stored for `key` under `rule`.
   *
   * @throws RedisUnavailableError (as a rejection) when `failFast` is on and the client is not
   * ready
   */
  async reset(key: string, rule: RateLimitRule): Promise<void> {
    const client = this.client;
    if (this.failFast && client.status !== 'ready') throw this.unavailable();
    await client.del(this.redisKey(key, rule));
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

function isNoScript(error: unknown): boolean {
  return error instanceof Error && error.message.startsWith('NOSCRIPT');
}

function booleanOption(path: string, value: unknown, fallback: boolean): boolean {
  if (value === undefined) return fallback;
  if (typeof value !== 'boolean') throw new ConfigError(OWNER, path, value, 'must be a boolean');
  return value;
}
