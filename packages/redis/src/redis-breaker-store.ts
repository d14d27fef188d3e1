import { randomBytes } from 'node:crypto';
import {
  TimeoutPolicy,
  type BreakerLink,
  type BreakerStore,
  type SharedBreaker,
} from '@breakwater/core';
import {
  BreakerLinkImpl,
  parseReply,
  sharedState,
  type LinkHost,
  type ScriptReply,
} from './internal/breaker-link';
import { BREAKER_SCRIPT, BREAKER_SCRIPT_SHA } from './internal/breaker-script';
import { breakerArgs, scriptArgv } from './internal/breaker-settings';
import {
  resolveBreakerStoreOptions,
  type CommandClient,
  type RedisBreakerStoreOptions,
  type SubscriberClient,
} from './internal/breaker-store-options';
import { hashTagContent } from './internal/options';

export type { RedisBreakerStoreOptions } from './internal/breaker-store-options';
import { RedisUnavailableError } from './redis-unavailable-error';

/**
 * Shared circuit-breaker state in Redis: every process and host that uses the same breaker name
 * (and the same Redis and prefix) follows one circuit.
 *
 * - CLOSED costs no round trip on the call path: outcomes are counted in the process and sent
 *   in one batch per breaker every `flushIntervalMs` (one unref'd timer per store), or at once
 *   when the breaker's own counts could open the circuit.
 * - Decisions are taken on the totals of every process, atomically, in one Lua script that
 *   carries a generation number: a batch or a probe outcome from an older generation is
 *   refused, so two processes never open or close the same circuit twice.
 * - Transitions are published on one channel (`<prefix>events`; on a Redis 7 Cluster, over
 *   sharded pub/sub on each breaker's own channel) and followed by every process within
 *   milliseconds, through one subscriber connection per store.
 * - Half-open probe permits are claimed in the script, so exactly `halfOpen.maxConcurrent`
 *   probes run across all processes. `execute()` waits for its claim (at most
 *   `claimTimeoutMs`); `tryAcquire()` stays synchronous: it returns `undefined` and claims a
 *   permit in the background, which its next call receives (a permit unused for 1 s is given
 *   back).
 * - `open()`, `openFor()`, `reset()` and `disable()` on any process apply to all.
 * - Redis unreachable, hung, refusing (OOM, ACL) or answering junk: an operation that fails or
 *   takes longer than `commandTimeoutMs` degrades that breaker, which keeps working on its own
 *   counts (it trips, probes and closes by itself) with no call waiting on Redis; one probe at a
 *   time finds Redis again, the breaker resyncs, and the shared state wins. `close()` is bounded.
 *
 * @throws ConfigError at construction when an option is invalid
 * @example
 * ```ts
 * import { CircuitBreakerRegistry } from '@breakwater/core';
 * import { RedisBreakerStore, createRedisClient } from '@breakwater/redis';
 *
 * const store = new RedisBreakerStore({ client: createRedisClient(process.env.REDIS_URL!) });
 * await store.ready().catch(() => {}); // connect before serving
 * const registry = new CircuitBreakerRegistry({ defaults: { store } });
 * const breaker = registry.get('plant-id');
 * ```
 */
export class RedisBreakerStore implements BreakerStore {
  /** State is shared: breakers default to `scope: 'shared'`. */
  readonly shared = true;
  /** The key prefix in use. */
  readonly prefix: string;
  /**
   * The channel transitions are published on; with sharded pub/sub, each breaker has its own
   * (`<prefix>{<name>}:events`, see {@link RedisBreakerStore.channelOf}).
   */
  readonly channel: string;
  /** Whether transitions travel over sharded pub/sub. */
  readonly sharded: boolean;
  /** Interval between two flushes of a breaker's counts. */
  readonly flushIntervalMs: number;

  private readonly client: CommandClient;
  private readonly subscriber: SubscriberClient;
  private readonly ownsSubscriber: boolean;
  private readonly keyTtlMs: number;
  private readonly probeLeaseMs: number;
  private readonly quietPeriodMs: number;
  private readonly commandTimeoutMs: number;
  /** Every Redis command's bound (core's one timeout mechanism). */
  private readonly commandBound: TimeoutPolicy;
  private readonly clock: { now(): number } | undefined;
  /** Every script call in flight. */
  private readonly pending = new Set<Promise<unknown>>();
  private readonly onError: ((error: unknown) => void) | undefined;
  private readonly id = randomBytes(6).toString('base64url');
  private readonly host: LinkHost;
  private readonly links = new Map<string, Set<WeakRef<BreakerLinkImpl>>>();
  private readonly forget = new FinalizationRegistry<{
    name: string;
    ref: WeakRef<BreakerLinkImpl>;
  }>(({ name, ref }) => {
    const set = this.links.get(name);
    set?.delete(ref);
    if (set?.size === 0) {
      this.links.delete(name);
      const channel = this.shardChannels.get(name);
      if (channel !== undefined) {
        this.shardChannels.delete(name);
        this.shardsSubscribed.delete(channel);
        this.subscriber.sunsubscribe?.(channel).catch(this.ignoreError);
      }
    }
  });
  private readonly dirty = new Set<BreakerLinkImpl>();
  private readonly urgent = new Set<BreakerLinkImpl>();
  private readonly parked = new Set<BreakerLinkImpl>();
  private linkSeq = 0;
  private timer: ReturnType<typeof setInterval> | undefined = undefined;
  private urgentTimer: ReturnType<typeof setTimeout> | undefined = undefined;
  private urgentDueAt = Infinity;
  private subscribed = false;
  /** Sharded mode: the channel of every breaker name in use, and those subscribed. */
  private readonly shardChannels = new Map<string, string>();
  private readonly shardsSubscribed = new Set<string>();
  private wasAvailable = false;
  private closed = false;
  private readonly onClientReady = (): void => this.checkAvailability();
  private readonly onConnectionLost = (): void => {
    this.wasAvailable = false;
  };
  private readonly onSubscriberReady = (): void => this.subscribe();
  private readonly onSubscriberLost = (): void => {
    this.subscribed = false;
    this.shardsSubscribed.clear();
    this.wasAvailable = false;
  };
  private readonly onSubscriberMessage = (channel: string, message: string): void =>
    this.onMessage(channel, message);
  private readonly ignoreError = (): void => {};

  constructor(options: RedisBreakerStoreOptions) {
    const o = resolveBreakerStoreOptions(options);
    this.client = o.client;
    this.prefix = o.prefix;
    this.channel = `${o.prefix}events`;
    this.flushIntervalMs = o.flushIntervalMs;
    this.keyTtlMs = o.keyTtlMs;
    this.probeLeaseMs = o.probeLeaseMs;
    const claimTimeoutMs = o.claimTimeoutMs;
    this.commandTimeoutMs = o.commandTimeoutMs;
    this.commandBound = new TimeoutPolicy(this.commandTimeoutMs);
    this.quietPeriodMs = o.quietPeriodMs;
    this.clock = o.clock;
    this.onError = o.onError;
    this.sharded = o.sharded;
    const subscriber = o.subscriber;
    this.subscriber = subscriber;
    this.ownsSubscriber = o.ownsSubscriber;

    // eslint-disable-next-line @typescript-eslint/no-this-alias
    const store = this;
    this.host = {
      get available() {
        return store.available;
      },
      subscribedTo: (link) =>
        !this.sharded || this.shardsSubscribed.has(this.channelOf(link.breaker.name)),
      claimBound: new TimeoutPolicy(claimTimeoutMs),
      urgentGapMs: this.flushIntervalMs / 5,
      tripWaitMs: this.commandTimeoutMs / 4,
      run: (link, op, args) => this.run(link, op, args),
      markDirty: (link) => {
        if (!this.closed) this.dirty.add(link);
      },
      flushLater: (link, delayMs) => this.flushLater(link, delayMs),
      markParked: (link) => this.parked.add(link),
      report: (error) => this.report(error),
    };

    const client = this.client;
    client.on('ready', this.onClientReady);
    client.on('close', this.onConnectionLost);
    subscriber.on(this.sharded ? 'smessage' : 'message', this.onSubscriberMessage);
    subscriber.on('ready', this.onSubscriberReady);
    subscriber.on('close', this.onSubscriberLost);
    if (this.ownsSubscriber) {
      // The store's own connection: ioredis must not print its errors, and a copy of a
      // `lazyConnect` client connects now (it never sends a command that would connect it).
      subscriber.on('error', this.ignoreError);
      if (subscriber.status === 'wait') subscriber.connect().catch(this.ignoreError);
    }
    if (subscriber.status === 'ready') this.subscribe();
  }

  /** Whether Redis is reachable on both connections (commands and transitions). */
  get available(): boolean {
    return !this.closed && this.subscribed && this.client.status === 'ready';
  }

  /**
   * Resolves once the store is available (both connections ready, transitions subscribed);
   * rejects with {@link RedisUnavailableError} after `timeoutMs`. Await it at startup, before
   * serving, so the first calls already share state (breakers work on their own state until then).
   *
   * @param timeoutMs - longest wait @defaultValue 5000
   * @throws RedisUnavailableError (as a rejection) when the store is not available in time
   */
  async ready(timeoutMs = 5_000): Promise<void> {
    const deadline = performance.now() + timeoutMs;
    const subscriber = this.subscriber;
    if (subscriber.status === 'wait') subscriber.connect().catch(this.ignoreError);
    while (!this.available) {
      if (this.closed || performance.now() >= deadline) {
        throw RedisUnavailableError.create(this.closed ? 'end' : this.client.status);
      }
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  }

  /**
   * Connects a breaker (called by `CircuitBreaker` in shared scope). The store holds breakers
   * weakly: a breaker nobody references is forgotten.
   */
  connect(breaker: SharedBreaker): BreakerLink {
    const name = breaker.name;
    const settings = breaker.settings;
    const tag = `${this.prefix}{${hashTagContent(name)}}`;
    const channel = this.channelOf(name);
    const args = breakerArgs({
      channel,
      sharded: this.sharded,
      name,
      settings,
      leaseMs: settings.halfOpenMaxWaitMs > 0 ? settings.halfOpenMaxWaitMs : this.probeLeaseMs,
      quietMs: this.quietPeriodMs,
      ttlMs: this.keyTtlMs,
    });
    const link = new BreakerLinkImpl(
      this.host,
      breaker,
      [tag, `${tag}:probes`],
      args,
      `${this.id}.${++this.linkSeq}`,
    );
    const ref = new WeakRef(link);
    let set = this.links.get(name);
    if (set === undefined) {
      this.links.set(name, (set = new Set()));
      if (this.sharded) {
        this.shardChannels.set(name, channel);
        if (this.subscribed) this.subscribeShard(name, channel);
      }
    }
    set.add(ref);
    this.forget.register(link, { name, ref });
    if (!this.closed && this.timer === undefined) {
      this.timer = setInterval(() => this.tick(), this.flushIntervalMs);
      this.timer.unref();
    }
    if (this.available) link.sync();
    return link;
  }

  /**
   * Sends every breaker's pending counts now, and resolves once every operation in flight
   * (flushes, probe claims and settlements, operator actions, resyncs) has been answered or has
   * failed. Never rejects.
   */
  async flush(): Promise<void> {
    for (let round = 0; round < 100 && !this.closed; round++) {
      if (this.available) {
        for (const link of this.dirty) if (link.flush()) this.dirty.delete(link);
      }
      if (this.pending.size === 0 && (this.dirty.size === 0 || !this.available)) return;
      await Promise.allSettled([...this.pending]);
    }
  }

  /**
   * Sends pending counts, then stops: the flush timer ends, the store unsubscribes and closes
   * the subscriber it created. Breakers keep working on their own state afterwards. The command
   * client is yours to close. Resolves within about twice `commandTimeoutMs`, whatever Redis
   * does (a frozen server is given up on).
   */
  async close(): Promise<void> {
    if (this.closed) return;
    if (this.available) {
      for (const link of this.dirty) link.flush();
    }
    // Every script call settles within commandTimeoutMs (answered, failed or given up on).
    const pending = [...this.pending];
    this.closed = true;
    clearInterval(this.timer);
    clearTimeout(this.urgentTimer);
    this.timer = undefined;
    this.urgentTimer = undefined;
    this.dirty.clear();
    this.urgent.clear();
    this.parked.clear();
    await Promise.allSettled(pending);
    const client = this.client;
    client.off('ready', this.onClientReady);
    client.off('close', this.onConnectionLost);
    const subscriber = this.subscriber;
    subscriber.off(this.sharded ? 'smessage' : 'message', this.onSubscriberMessage);
    subscriber.off('ready', this.onSubscriberReady);
    subscriber.off('close', this.onSubscriberLost);
    this.subscribed = false;
    if (this.ownsSubscriber) {
      subscriber.disconnect();
    } else if (subscriber.status === 'ready') {
      // A frozen server never answers: give up after the bound.
      const channels = this.sharded ? [...this.shardChannels.values()] : [this.channel];
      const unsubscribe = (channel: string): Promise<unknown> =>
        (this.sharded ? subscriber.sunsubscribe!(channel) : subscriber.unsubscribe(channel)).catch(
          this.ignoreError,
        );
      await this.commandBound
        .execute(() => Promise.all(channels.map(unsubscribe)))
        .catch(this.ignoreError);
    }
  }

  /**
   * The channel the transitions of the breaker called `name` are published on: its own
   * (`<prefix>{<name>}:events`, in the slot of its keys) with sharded pub/sub, the store's
   * `channel` otherwise.
   */
  channelOf(name: string): string {
    return this.sharded ? `${this.prefix}{${hashTagContent(name)}}:events` : this.channel;
  }

  /**
   * The keys of the breaker called `name`: its state hash and its probe permits, in one Cluster
   * slot (`bw:cb:{plant-id}`, `bw:cb:{plant-id}:probes`).
   */
  redisKeys(name: string): [state: string, permits: string] {
    const tag = `${this.prefix}{${hashTagContent(name)}}`;
    return [tag, `${tag}:probes`];
  }

  private run(
    link: BreakerLinkImpl,
    op: number,
    args: readonly (string | number)[],
  ): Promise<ScriptReply> {
    const client = this.client;
    if (client.status !== 'ready') {
      return Promise.reject(RedisUnavailableError.create(client.status));
    }
    const [state, permits] = link.keys;
    const argv = scriptArgv(op, link.settingsArgs, this.clock?.now(), args);
    const request = client
      .evalsha(BREAKER_SCRIPT_SHA, 2, state, permits, ...argv)
      .catch((error: unknown) => {
        if (!(error instanceof Error && error.message.startsWith('NOSCRIPT'))) throw error;
        // Redis lost its script cache (restart, failover, SCRIPT FLUSH): EVAL caches it again.
        return client.eval(BREAKER_SCRIPT, 2, state, permits, ...argv);
      });
    link.outstanding++;
    const answered = (): void => {
      link.outstanding--;
    };
    request.then(answered, answered);
    const bounded = this.commandBound.execute(() => request.then(parseReply));
    const pending = this.pending;
    pending.add(bounded);
    const done = (): void => {
      pending.delete(bounded);
    };
    bounded.then(done, done);
    return bounded;
  }

  private tick(): void {
    this.checkAvailability();
    if (this.available) {
      for (const set of this.links.values()) {
        for (const ref of set) ref.deref()?.probe();
      }
    }
    for (const link of this.dirty) {
      if (link.flush()) this.dirty.delete(link);
    }
    if (this.parked.size > 0) {
      const now = performance.now();
      for (const link of this.parked) {
        if (!link.expireParked(now)) this.parked.delete(link);
      }
    }
  }

  /** Flushes `link` in `delayMs`; one timer serves every link (set for the earliest). */
  private flushLater(link: BreakerLinkImpl, delayMs: number): void {
    if (this.closed) return;
    this.urgent.add(link);
    const dueAt = performance.now() + delayMs;
    if (dueAt >= this.urgentDueAt) return;
    clearTimeout(this.urgentTimer);
    this.urgentDueAt = dueAt;
    this.urgentTimer = setTimeout(() => {
      this.urgentTimer = undefined;
      this.urgentDueAt = Infinity;
      const links = [...this.urgent];
      this.urgent.clear();
      for (const urgent of links) {
        // A link whose flush is in flight sends again as soon as it returns.
        if (urgent.flush()) this.dirty.delete(urgent);
        else urgent.flushSoon();
      }
    }, Math.ceil(delayMs));
    this.urgentTimer.unref();
  }

  private subscribe(): void {
    if (this.closed) return;
    if (this.sharded) {
      // Each breaker's channel lives in its own slot: one SSUBSCRIBE per name.
      this.subscribed = true;
      for (const [name, channel] of this.shardChannels) this.subscribeShard(name, channel);
      this.checkAvailability();
      return;
    }
    this.subscriber.subscribe(this.channel).then(
      () => {
        this.subscribed = true;
        this.checkAvailability();
      },
      (error: unknown) => this.report(error),
    );
  }

  /** Subscribes to one breaker's channel, then resyncs its breakers (they may have missed some). */
  private subscribeShard(name: string, channel: string): void {
    this.commandBound
      .execute(() => this.subscriber.ssubscribe!(channel))
      .then(
        () => {
          if (this.closed || this.shardChannels.get(name) !== channel) return;
          this.shardsSubscribed.add(channel);
          if (this.available) for (const ref of this.links.get(name) ?? []) ref.deref()?.sync();
        },
        (error: unknown) => this.report(error),
      );
  }

  /** On the way back from an outage (or at start), every breaker resyncs. */
  private checkAvailability(): void {
    const available = this.available;
    if (available && !this.wasAvailable) {
      this.wasAvailable = true;
      for (const set of this.links.values()) {
        for (const ref of set) ref.deref()?.sync();
      }
    } else if (!available && this.wasAvailable) {
      this.wasAvailable = false;
      for (const set of this.links.values()) {
        for (const ref of set) ref.deref()?.breaker.reconsider();
      }
    }
  }

  private onMessage(channel: string, message: string): void {
    if (!this.sharded && channel !== this.channel) return;
    // generation|state|retryAfterMs|openedAgoMs|backoffLevel|closedAgoMs|reason|name
    const fields: string[] = [];
    let start = 0;
    for (let i = 0; i < 7; i++) {
      const end = message.indexOf('|', start);
      if (end < 0) return;
      fields.push(message.slice(start, end));
      start = end + 1;
    }
    const name = message.slice(start);
    const set = this.links.get(name);
    if (set === undefined || (this.sharded && this.shardChannels.get(name) !== channel)) return;
    const state = sharedState(
      Number(fields[0]),
      Number(fields[1]),
      Number(fields[2]),
      Number(fields[3]),
      Number(fields[4]),
      Number(fields[5]),
      fields[6]!,
    );
    if (state === undefined) return;
    for (const ref of set) ref.deref()?.onMessage(state);
  }

  private report(error: unknown): void {
    if (this.onError === undefined) return;
    try {
      this.onError(error);
    } catch {
      // A failing error handler must not break the store.
    }
  }
}
