import { ConfigError, parseDuration, type Duration } from '@breakwater/core';
import type { Cluster, Redis } from 'ioredis';
import { checkOptions, clientOption, prefixOption } from './options';

/** Options of {@link RedisBreakerStore}. */
export interface RedisBreakerStoreOptions {
  /**
   * The ioredis client (`Redis` or `Cluster`) for the store's commands. The store does not own
   * it: create it with `createRedisClient` (fail-fast settings) and close it yourself.
   */
  client: Redis | Cluster;
  /**
   * The connection that receives transitions (it enters subscriber mode). The store owns a
   * subscriber it creates, and closes it in `close()`.
   * @defaultValue `client.duplicate()`
   */
  subscriber?: Redis | Cluster;
  /**
   * Transitions travel over sharded pub/sub (`SPUBLISH`/`SSUBSCRIBE`, Redis 7+) on each
   * breaker's own channel `<prefix>{<name>}:events`, in the slot of its keys, instead of one
   * channel every node of a Cluster relays. Needs Redis 7 and, for a `Cluster`, ioredis with
   * `shardedSubscribers` (the store's own subscriber turns it on). Set it to false on a Redis 6
   * Cluster.
   * @defaultValue `true` for a Redis Cluster client whose ioredis supports sharded subscribers,
   * `false` otherwise
   */
  shardedPubSub?: boolean;
  /**
   * Prepended to every key and to the channel (`<prefix>events`). Must not contain `{` or `}`:
   * each breaker's keys carry its name as a Redis Cluster hash tag (`bw:cb:{plant-id}`; a `}` or
   * `%` in a name is percent-encoded there, so the tag is never empty or cut short).
   * @defaultValue `'bw:cb:'`
   */
  prefix?: string;
  /**
   * How often outcomes counted in CLOSED state are sent, as one batch per breaker (a breaker
   * whose own counts could open the circuit sends at once). One timer for the whole store.
   * @defaultValue 250
   */
  flushIntervalMs?: Duration;
  /**
   * A breaker's keys expire after this long without a write (an open circuit's keys live at
   * least until its probe time plus this).
   * @defaultValue 24 h
   */
  keyTtlMs?: Duration;
  /**
   * A shared probe permit whose holder never settles it (the process died) is freed after this
   * long; a breaker's `halfOpen.maxWaitMs` takes precedence when set.
   * @defaultValue 30 s
   */
  probeLeaseMs?: Duration;
  /**
   * Longest `execute()` waits for a probe permit in half-open state; past it the process
   * decides on its own permits.
   * @defaultValue 250
   */
  claimTimeoutMs?: Duration;
  /**
   * Longest a script call may take. One that fails, answers junk or takes longer makes the store
   * unavailable for that breaker, which then decides on its own counts until a probe (one at a
   * time, at each flush interval) is answered; a trip the breaker handed to the store waits a
   * quarter of it. `close()` takes at most about twice this long.
   * @defaultValue 300
   */
  commandTimeoutMs?: Duration;
  /**
   * How long a decision on cluster totals waits for every process to report: a rate rule acts
   * only once its window has collected for this long, a run of consecutive failures only once it
   * has lasted this long. 0 decides on what has arrived (one process, or tests).
   * @defaultValue `2 * flushIntervalMs`
   */
  quietPeriodMs?: Duration;
  /**
   * The time the store's decisions are taken on. By default the Redis server's clock, which every
   * host shares; give one only in tests, with a fake clock that every breaker of the store uses
   * too.
   * @defaultValue the Redis server's clock
   */
  clock?: { now(): number };
  /** Called with errors of background operations (flushes, claims, subscriptions). @defaultValue ignore */
  onError?: (error: unknown) => void;
}

/** The slice of the ioredis API the store's command connection uses. */
export interface CommandClient {
  readonly status: string;
  evalsha(sha: string, numKeys: number, ...args: (string | number)[]): Promise<unknown>;
  eval(script: string, numKeys: number, ...args: (string | number)[]): Promise<unknown>;
  on(event: string, listener: (...args: unknown[]) => void): unknown;
  off(event: string, listener: (...args: unknown[]) => void): unknown;
}

/** The slice of the ioredis API the subscriber connection uses. */
export interface SubscriberClient {
  readonly status: string;
  subscribe(channel: string): Promise<unknown>;
  unsubscribe(channel: string): Promise<unknown>;
  ssubscribe?(channel: string): Promise<unknown>;
  sunsubscribe?(channel: string): Promise<unknown>;
  on(event: string, listener: (...args: never[]) => void): unknown;
  off(event: string, listener: (...args: never[]) => void): unknown;
  connect(): Promise<unknown>;
  disconnect(): void;
}

const OWNER = 'RedisBreakerStore';
const KNOWN_OPTIONS = Object.keys({
  client: true,
  subscriber: true,
  shardedPubSub: true,
  prefix: true,
  flushIntervalMs: true,
  keyTtlMs: true,
  probeLeaseMs: true,
  claimTimeoutMs: true,
  commandTimeoutMs: true,
  quietPeriodMs: true,
  clock: true,
  onError: true,
} satisfies Record<keyof RedisBreakerStoreOptions, true>);
const COMMAND_CLIENT_METHODS = ['evalsha', 'eval', 'on', 'duplicate'] as const;
const SUBSCRIBER_METHODS = ['subscribe', 'on'] as const;

/** {@link RedisBreakerStoreOptions} checked once, defaults filled in. Frozen. */
export interface ResolvedBreakerStoreOptions {
  readonly client: CommandClient;
  /** The given subscriber, or a duplicate of the client the store owns. */
  readonly subscriber: SubscriberClient;
  readonly ownsSubscriber: boolean;
  readonly sharded: boolean;
  readonly prefix: string;
  readonly flushIntervalMs: number;
  readonly keyTtlMs: number;
  readonly probeLeaseMs: number;
  readonly claimTimeoutMs: number;
  readonly commandTimeoutMs: number;
  readonly quietPeriodMs: number;
  readonly clock: { now(): number } | undefined;
  readonly onError: ((error: unknown) => void) | undefined;
}

/**
 * Checks a store's options once. Without a `subscriber`, it duplicates the client for one (a
 * sharded one on a Cluster with sharded pub/sub), which the store then owns.
 * @throws ConfigError naming the option and value when one is invalid
 * @internal
 */
export function resolveBreakerStoreOptions(
  options: RedisBreakerStoreOptions,
): ResolvedBreakerStoreOptions {
  checkOptions(OWNER, options, KNOWN_OPTIONS);
  const client = clientOption<CommandClient>(
    OWNER,
    'client',
    options.client,
    COMMAND_CLIENT_METHODS,
  );
  const prefix = prefixOption(OWNER, options.prefix, 'bw:cb:', true);
  const flushIntervalMs = duration('flushIntervalMs', options.flushIntervalMs, 250, 1, 60_000);
  const keyTtlMs = duration('keyTtlMs', options.keyTtlMs, 86_400_000, 1_000, 2 ** 40);
  const probeLeaseMs = duration('probeLeaseMs', options.probeLeaseMs, 30_000, 1, 2 ** 40);
  const claimTimeoutMs = duration('claimTimeoutMs', options.claimTimeoutMs, 250, 1, 60_000);
  const commandTimeoutMs = duration('commandTimeoutMs', options.commandTimeoutMs, 300, 1, 60_000);
  const quietPeriodMs = duration(
    'quietPeriodMs',
    options.quietPeriodMs,
    2 * flushIntervalMs,
    0,
    600_000,
  );
  const givenClock: { now?: unknown } | undefined = options.clock;
  if (
    givenClock !== undefined &&
    (typeof givenClock !== 'object' || typeof givenClock?.now !== 'function')
  ) {
    throw new ConfigError(OWNER, 'clock', givenClock, 'must be an object with a now() method');
  }
  const clock = options.clock;
  if (options.onError !== undefined && typeof options.onError !== 'function') {
    throw new ConfigError(OWNER, 'onError', options.onError, 'must be a function');
  }
  const onError = options.onError;
  if (options.subscriber !== undefined && options.subscriber === options.client) {
    throw new ConfigError(
      OWNER,
      'subscriber',
      '<the client>',
      'must be a separate connection (a subscribed connection cannot run commands)',
    );
  }
  const given = options.client as unknown as {
    isCluster?: boolean;
    options?: object;
    duplicate(nodes?: unknown[], options?: object): Redis | Cluster;
  };
  const isCluster = given.isCluster === true;
  const clusterCanShard =
    isCluster && given.options !== undefined && 'shardedSubscribers' in given.options;
  if (options.shardedPubSub !== undefined && typeof options.shardedPubSub !== 'boolean') {
    throw new ConfigError(OWNER, 'shardedPubSub', options.shardedPubSub, 'must be a boolean');
  }
  const sharded = options.shardedPubSub ?? clusterCanShard;
  if (sharded && isCluster && !clusterCanShard) {
    throw new ConfigError(
      OWNER,
      'shardedPubSub',
      true,
      'needs an ioredis version whose Cluster has the shardedSubscribers option',
    );
  }
  const subscriber = clientOption<SubscriberClient>(
    OWNER,
    'subscriber',
    options.subscriber ??
      (isCluster && sharded
        ? given.duplicate([], { shardedSubscribers: true })
        : given.duplicate()),
    SUBSCRIBER_METHODS,
  );
  const subscriberCluster = subscriber as unknown as { isCluster?: boolean; options?: object };
  if (
    sharded &&
    subscriberCluster.isCluster === true &&
    (subscriberCluster.options as { shardedSubscribers?: unknown } | undefined)
      ?.shardedSubscribers !== true
  ) {
    throw new ConfigError(
      OWNER,
      'subscriber',
      '<a Cluster>',
      'must be created with shardedSubscribers: true for sharded pub/sub (or set shardedPubSub: false)',
    );
  }
  if (sharded && typeof subscriber.ssubscribe !== 'function') {
    throw new ConfigError(
      OWNER,
      'shardedPubSub',
      true,
      'needs a subscriber with ssubscribe() (ioredis 5.3 or later)',
    );
  }
  const ownsSubscriber = options.subscriber === undefined;
  return Object.freeze({
    client,
    subscriber,
    ownsSubscriber,
    sharded,
    prefix,
    flushIntervalMs,
    keyTtlMs,
    probeLeaseMs,
    claimTimeoutMs,
    commandTimeoutMs,
    quietPeriodMs,
    clock,
    onError,
  });
}

function duration(
  path: string,
  value: unknown,
  fallback: number,
  min: number,
  max: number,
): number {
  if (value === undefined) return fallback;
  const ms = parseDuration(value);
  if (ms === undefined || ms < min || ms > max) {
    throw new ConfigError(
      OWNER,
      path,
      value,
      `must be a duration from ${min} ms to ${max} ms (milliseconds, or a string like '250ms')`,
    );
  }
  return ms;
}
