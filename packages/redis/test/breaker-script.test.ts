import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { SharedBreakerSettings } from '@breakwater/core';
import type { Redis } from 'ioredis';
import { createRedisClient } from '../src';
import {
  BREAKER_SCRIPT,
  BREAKER_SCRIPT_SHA,
  OP_CLAIM,
  OP_COMMAND,
  OP_FLUSH,
  OP_SETTLE,
  OP_SYNC,
} from '../src/internal/breaker-script';
import { breakerArgs, scriptArgv } from '../src/internal/breaker-settings';
import { redisUrl, skipReason, sleep, whenReady } from './helpers';

/*
 * The breaker script on its own, driven with raw EVALSHA calls: the atomic decisions every
 * process relies on.
 */

const describeRedis = redisUrl ? describe : describe.skip;
const runId = `${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;
let seq = 0;

/** The script's inputs in the terms of the test (a test circuit overrides some). */
interface Settings {
  failureThreshold: number;
  failureRate: number;
  slowRate: number;
  minimumCalls: number;
  window: 'count' | 'time';
  /** Calls of a count window, buckets of a time window. */
  size: number;
  durationMs: number;
  openMs: number;
  multiplier: number;
  maxMs: number;
  resetAfterMs: number;
  maxLevel: number;
  maxProbes: number;
  successThreshold: number;
  leaseMs: number;
  quietMs: number;
  ttlMs: number;
}

const DEFAULTS: Settings = {
  failureThreshold: 5,
  failureRate: 0,
  slowRate: 0,
  minimumCalls: 10,
  window: 'count',
  size: 100,
  durationMs: 0,
  openMs: 1_000,
  multiplier: 1,
  maxMs: 1_000,
  resetAfterMs: 0,
  maxLevel: 0,
  maxProbes: 1,
  successThreshold: 1,
  leaseMs: 30_000,
  quietMs: 0,
  ttlMs: 60_000,
};

/** The breaker settings `s` stands for, as a breaker hands them to its store. */
function sharedSettings(s: Settings): SharedBreakerSettings {
  return {
    failureThreshold: s.failureThreshold,
    failureRateThreshold: s.failureRate,
    slowCallRateThreshold: s.slowRate,
    minimumCalls: s.minimumCalls,
    window:
      s.window === 'count'
        ? { type: 'count', size: s.size }
        : { type: 'time', durationMs: s.durationMs, buckets: s.size },
    openDurationMs: s.openMs,
    backoffMultiplier: s.multiplier,
    backoffMaxMs: s.maxMs,
    backoffResetAfterMs: s.resetAfterMs,
    maxBackoffLevel: s.maxLevel,
    halfOpenMaxConcurrent: s.maxProbes,
    halfOpenSuccessThreshold: s.successThreshold,
    halfOpenMaxWaitMs: 0,
  };
}

/** [applied, generation, state, retryAfterMs, openedAgoMs, level, closedAgoMs, reason, recheckMs] */
type Reply = [number, number, number, number, number, number, number, string, number];

describeRedis(`breaker script${skipReason}`, () => {
  let client: Redis;
  let listener: Redis;
  const channel = `test:cb:${runId}:events`;
  const messages: string[] = [];

  beforeAll(async () => {
    client = createRedisClient(redisUrl!);
    listener = createRedisClient(redisUrl!);
    await Promise.all([whenReady(client), whenReady(listener)]);
    await client.script('LOAD', BREAKER_SCRIPT);
    listener.on('message', (_channel: string, message: string) => messages.push(message));
    await listener.subscribe(channel);
  });

  afterAll(() => {
    client?.disconnect();
    listener?.disconnect();
  });

  /** A circuit of its own: the keys, and a function running one operation on them. */
  function circuit(overrides: Partial<Settings> = {}) {
    const s = { ...DEFAULTS, ...overrides };
    const name = `script-${runId}-${seq++}`;
    const keys = [`test:cb:{${name}}`, `test:cb:{${name}}:probes`] as const;
    const settings = breakerArgs({
      channel,
      sharded: false,
      name,
      settings: sharedSettings(s),
      leaseMs: s.leaseMs,
      quietMs: s.quietMs,
      ttlMs: s.ttlMs,
    });
    const run = async (op: number, ...args: (string | number)[]): Promise<Reply> =>
      (await client.evalsha(
        BREAKER_SCRIPT_SHA,
        2,
        ...keys,
        ...scriptArgv(op, settings, undefined, args),
      )) as Reply;
    /** A batch: calls, failures, slow calls, successes, failures after the last success. */
    const flush = (generation: number, calls: number, failures: number, slow = 0) =>
      run(OP_FLUSH, generation, calls, failures, slow, calls - failures, failures);
    const generation = async (): Promise<number> => (await run(OP_SYNC))[1];
    return { name, keys, run, flush, generation };
  }

  const STATE = { closed: 0, open: 1, half_open: 2, forced_open: 3, disabled: 4 };

  it('creates no key to read, and a key at generation "now" on the first write', async () => {
    const c = circuit();
    expect(await c.run(OP_SYNC)).toEqual([1, 0, STATE.closed, 0, -1, 0, -1, '', 0]);
    expect(await client.exists(c.keys[0])).toBe(0);
    const reply = await c.flush(0, 3, 0);
    expect(reply[0]).toBe(1);
    const [seconds] = await client.time();
    expect(Math.abs(reply[1] - Number(seconds) * 1_000)).toBeLessThan(5_000);
    // A batch from a process that also saw no key still counts in the circuit just created.
    expect((await c.flush(0, 2, 0))[0]).toBe(1);
    expect(await client.hget(c.keys[0], 'wc')).toBe('5');
  });

  it('refuses a batch from an older generation, and opens a circuit once for two rivals', async () => {
    const c = circuit({ failureThreshold: 3 });
    await c.flush(0, 1, 0);
    const generation = await c.generation();
    const before = messages.length;
    // Two processes report failures taken in the same generation, in one round trip.
    const [a, b] = await Promise.all([c.flush(generation, 3, 3), c.flush(generation, 3, 3)]);
    expect([a[0], b[0]].sort()).toEqual([0, 1]);
    expect(a[1]).toBe(generation + 1);
    expect(b[1]).toBe(generation + 1);
    expect(a[2]).toBe(STATE.open);
    await sleep(20);
    const published = messages.slice(before).filter((m) => m.endsWith(`|${c.name}`));
    expect(published).toEqual([
      `${generation + 1}|1|1000|0|0|-1|3 consecutive failures (cluster)|${c.name}`,
    ]);
    // A late batch of the closed generation changes nothing.
    expect((await c.flush(generation, 5, 5))[0]).toBe(0);
    expect(await c.generation()).toBe(generation + 1);
  });

  it('keeps the last `size` calls of a count window, cutting the oldest batch proportionally', async () => {
    const c = circuit({ failureThreshold: 0, failureRate: 50, minimumCalls: 10, size: 10 });
    await c.flush(0, 4, 4);
    const generation = await c.generation();
    await c.flush(generation, 4, 0);
    expect(await client.hmget(c.keys[0], 'wc', 'wf')).toEqual(['8', '4']);
    // 4 more calls: 2 of the oldest 4 failures drop out.
    const reply = await c.flush(generation, 4, 0);
    expect(reply[2]).toBe(STATE.closed);
    expect(await client.hmget(c.keys[0], 'wc', 'wf')).toEqual(['10', '2']);
    // 50 % of the last 10: opens.
    const opened = await c.flush(generation, 6, 6);
    expect(opened[2]).toBe(STATE.open);
    expect(opened[7]).toBe('failure rate 60% >= 50% over 10 calls (cluster)');
  });

  it('keeps every batch younger than quietMs in a count window', async () => {
    const c = circuit({ failureThreshold: 0, failureRate: 90, size: 10, quietMs: 60_000 });
    await c.flush(0, 8, 0);
    const generation = await c.generation();
    await c.flush(generation, 8, 0);
    expect(await client.hget(c.keys[0], 'wc')).toBe('16');
  });

  it('counts a time window in buckets of server time and forgets old buckets', async () => {
    const c = circuit({
      failureThreshold: 0,
      failureRate: 50,
      minimumCalls: 4,
      window: 'time',
      size: 2,
      durationMs: 200,
    });
    await c.flush(0, 3, 1);
    const generation = await c.generation();
    expect(await client.hget(c.keys[0], 'wc')).toBe('3');
    await sleep(250);
    // The first bucket is more than a window old: only the new calls count.
    const reply = await c.flush(generation, 2, 1);
    expect(reply[2]).toBe(STATE.closed);
    expect(await client.hmget(c.keys[0], 'wc', 'wf')).toEqual(['2', '1']);
    expect((await c.flush(generation, 2, 1))[7]).toBe(
      'failure rate 50% >= 50% over 4 calls (cluster)',
    );
  });

  it('holds a decision back until every process had time to report, and says when to look again', async () => {
    const c = circuit({ failureThreshold: 3, quietMs: 300 });
    await c.flush(0, 1, 0);
    const generation = await c.generation();
    const held = await c.flush(generation, 3, 3);
    expect(held[2]).toBe(STATE.closed);
    expect(held[8]).toBeGreaterThan(200);
    expect(held[8]).toBeLessThanOrEqual(300);
    // Another process reports a success in time: the run ends, nothing to look at again.
    const healthy = await c.flush(generation, 5, 0);
    expect(healthy[8]).toBe(0);
    // A new run, unbroken for quietMs: an empty batch is enough to decide.
    await c.flush(generation, 3, 3);
    await sleep(320);
    const decided = await c.flush(generation, 0, 0);
    expect(decided[2]).toBe(STATE.open);
    expect(decided[7]).toBe('3 consecutive failures (cluster)');
  });

  it('grants exactly maxProbes permits, frees them on settle or lease end, and refuses stale settlements', async () => {
    const c = circuit({ maxProbes: 2, successThreshold: 2, leaseMs: 150, openMs: 100 });
    await c.run(OP_COMMAND, STATE.open, 0, 'opened for 0 ms');
    const claims = await Promise.all(
      Array.from({ length: 10 }, (_, i) => c.run(OP_CLAIM, `p${i}`)),
    );
    expect(claims.filter((r) => r[0] === 1)).toHaveLength(2);
    expect(claims.every((r) => r[2] === STATE.half_open)).toBe(true);
    const generation = claims[0]![1];
    const [first, second] = claims.flatMap((r, i) => (r[0] === 1 ? [`p${i}`] : []));
    expect(await client.pttl(c.keys[1])).toBeGreaterThan(0);

    // A settlement from another generation, or of an unknown permit, is refused.
    expect((await c.run(OP_SETTLE, generation - 1, first!, 0))[0]).toBe(0);
    expect((await c.run(OP_SETTLE, generation, 'nobody', 0))[0]).toBe(0);
    // One success of the two needed frees its permit without closing.
    const one = await c.run(OP_SETTLE, generation, first!, 0);
    expect(one.slice(0, 3)).toEqual([1, generation, STATE.half_open]);
    expect((await c.run(OP_CLAIM, 'p-next'))[0]).toBe(1);
    expect((await c.run(OP_CLAIM, 'p-more'))[0]).toBe(0);
    // The other holder never settles: its lease ends and frees the permit.
    await sleep(200);
    expect((await c.run(OP_CLAIM, 'p-after-lease'))[0]).toBe(1);
    expect((await c.run(OP_SETTLE, generation, second!, 0))[0]).toBe(0);
    // The second success closes the circuit.
    const closed = await c.run(OP_SETTLE, generation, 'p-after-lease', 0);
    expect(closed.slice(0, 3)).toEqual([1, generation + 1, STATE.closed]);
    expect(closed[7]).toBe('2 probe successes (cluster)');
    expect(await client.exists(c.keys[1])).toBe(0);
  });

  it('reopens on a probe failure with the next backoff step, and an operator reset clears it', async () => {
    const c = circuit({ failureThreshold: 1, openMs: 100, multiplier: 2, maxMs: 300, maxLevel: 2 });
    await c.flush(0, 1, 1);
    for (const expected of [200, 300]) {
      await sleep(110 + (expected === 300 ? 100 : 0));
      const claim = await c.run(OP_CLAIM, `probe-${expected}`);
      expect(claim[0]).toBe(1);
      const reopened = await c.run(OP_SETTLE, claim[1], `probe-${expected}`, 1);
      expect(reopened[2]).toBe(STATE.open);
      expect(reopened[3]).toBe(expected);
      expect(reopened[7]).toBe('probe failed (cluster)');
    }
    const reset = await c.run(OP_COMMAND, STATE.closed, 0, 'reset');
    expect(reset.slice(2, 8)).toEqual([STATE.closed, 0, -1, 0, -1, 'reset']);
  });

  it('applies operator actions unconditionally and publishes them', async () => {
    const c = circuit();
    const forced = await c.run(OP_COMMAND, STATE.forced_open, 0, 'forced open');
    expect(forced.slice(2, 5)).toEqual([STATE.forced_open, 0, 0]);
    const openFor = await c.run(OP_COMMAND, STATE.open, 5_000, 'opened for 5000 ms');
    expect(openFor[2]).toBe(STATE.open);
    expect(openFor[3]).toBeGreaterThan(4_900);
    const disabled = await c.run(OP_COMMAND, STATE.disabled, 0, 'disabled');
    expect(disabled[2]).toBe(STATE.disabled);
    expect(disabled[1]).toBe(forced[1] + 2);
    // A disabled circuit takes no batches.
    expect((await c.flush(disabled[1], 50, 50))[0]).toBe(0);
    await sleep(20);
    expect(messages.filter((m) => m.endsWith(`|${c.name}`)).map((m) => m.split('|')[1])).toEqual([
      '3',
      '1',
      '4',
    ]);
  });

  it('expires keys when unused, longer for an open circuit', async () => {
    const c = circuit({ failureThreshold: 1, ttlMs: 10_000, openMs: 50_000 });
    await c.flush(0, 1, 0);
    const ttl = await client.pttl(c.keys[0]);
    expect(ttl).toBeGreaterThan(9_000);
    expect(ttl).toBeLessThanOrEqual(10_000);
    await c.flush(await c.generation(), 1, 1);
    expect(await client.pttl(c.keys[0])).toBeGreaterThan(55_000);
  });
});
