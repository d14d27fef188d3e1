import {
  TimeoutError,
  type BreakerLink,
  type TimeoutPolicy,
  type ProbeClaim,
  type ProbeOutcome,
  type SharedBreaker,
  type SharedCircuitState,
  type SharedCommand,
} from '@breakwater/core';
import { RedisReplyError } from '../redis-reply-error';
import { OP_CLAIM, OP_COMMAND, OP_FLUSH, OP_SETTLE, OP_SYNC, STATE_CODES } from './breaker-script';

/** What a link needs from its store. */
export interface LinkHost {
  /** Whether both connections are up (the link adds its own health: see `degraded`). */
  readonly available: boolean;
  /** Whether the transitions of `link`'s breaker reach this store (its channel is subscribed). */
  subscribedTo(link: BreakerLinkImpl): boolean;
  /** Longest a call waits for a probe permit. */
  /** The bound of a probe claim on the call path (core's one timeout mechanism). */
  readonly claimBound: TimeoutPolicy;
  /** Shortest gap between two flushes of one breaker hurried by its own counts. */
  readonly urgentGapMs: number;
  /** Longest a trip handed to the store waits for its answer before the link degrades. */
  readonly tripWaitMs: number;
  /**
   * Runs one operation of the breaker script for `link` and checks its reply; rejects when Redis
   * is unavailable, fails, answers junk or does not answer within the store's bound.
   */
  run(link: BreakerLinkImpl, op: number, args: readonly (string | number)[]): Promise<ScriptReply>;
  /** Marks `link` as holding counts to flush at the next tick. */
  markDirty(link: BreakerLinkImpl): void;
  /** Flushes `link` after `delayMs` (one timer for the whole store). */
  flushLater(link: BreakerLinkImpl, delayMs: number): void;
  /** Marks `link` as holding parked permits, released at a tick when unused. */
  markParked(link: BreakerLinkImpl): void;
  /** Reports an error of a background operation. */
  report(error: unknown): void;
}

/** A checked reply of the breaker script (see BREAKER_SCRIPT). */
export interface ScriptReply {
  readonly applied: boolean;
  readonly state: SharedCircuitState;
  /** When to flush again for a decision held back by the quiet period (0: no need). */
  readonly recheckMs: number;
}

interface Permit {
  readonly id: string;
  readonly generation: number;
  readonly at: number;
}

/** After a refused claim, the breaker rejects half-open calls without asking for this long. */
const CLAIM_RETRY_MS = 20;
/** A permit claimed ahead for `tryAcquire()` and not used within this long is given back. */
export const PARKED_PERMIT_MS = 1_000;

const OUTCOME_CODE: Readonly<Record<ProbeOutcome, number>> = { success: 0, failure: 1, ignore: 2 };
const COMMAND_CODE: Readonly<Record<SharedCommand, number>> = {
  closed: 0,
  open: 1,
  forced_open: 3,
  disabled: 4,
};

const MAX_REASON_LENGTH = 1_000;
const MAX_LEVEL = 1_000;

const isTime = (value: number): boolean => Number.isSafeInteger(value) && value >= 0;
const isTimeOrNone = (value: number): boolean => Number.isSafeInteger(value) && value >= -1;

/**
 * Turns the fields of a script reply or a published message into the state a breaker follows,
 * or `undefined` when any of them is out of range (the reply is then junk, never a decision).
 */
export function sharedState(
  generation: number,
  code: number,
  retryAfterMs: number,
  openedAgoMs: number,
  backoffLevel: number,
  closedAgoMs: number,
  reason: unknown,
): SharedCircuitState | undefined {
  const state = Number.isInteger(code) ? STATE_CODES[code] : undefined;
  if (
    state === undefined ||
    !isTime(generation) ||
    !isTime(retryAfterMs) ||
    !isTimeOrNone(openedAgoMs) ||
    !isTimeOrNone(closedAgoMs) ||
    !Number.isInteger(backoffLevel) ||
    backoffLevel < 0 ||
    backoffLevel > MAX_LEVEL ||
    typeof reason !== 'string' ||
    reason.length > MAX_REASON_LENGTH
  ) {
    return undefined;
  }
  return {
    generation,
    state,
    retryAfterMs,
    openedAgoMs: openedAgoMs < 0 ? null : openedAgoMs,
    closedAgoMs: closedAgoMs < 0 ? null : closedAgoMs,
    backoffLevel,
    reason,
  };
}

/**
 * Checks a script reply: `[applied 0|1, generation, state code, retryAfterMs, openedAgoMs,
 * backoffLevel, closedAgoMs, reason, recheckMs]`, each in its range.
 * @throws RedisReplyError when the reply is anything else
 */
export function parseReply(reply: unknown): ScriptReply {
  if (Array.isArray(reply) && reply.length === 9) {
    const r = reply as unknown[];
    const applied = r[0];
    const recheckMs = r[8];
    const state =
      (applied === 0 || applied === 1) && typeof recheckMs === 'number' && isTime(recheckMs)
        ? sharedState(
            r[1] as number,
            r[2] as number,
            r[3] as number,
            r[4] as number,
            r[5] as number,
            r[6] as number,
            r[7],
          )
        : undefined;
    if (state !== undefined)
      return { applied: applied === 1, state, recheckMs: recheckMs as number };
  }
  throw RedisReplyError.create('the breaker script', reply);
}

/**
 * One breaker's connection to a {@link RedisBreakerStore}: counts outcomes between flushes,
 * claims and settles probe permits, forwards operator actions, and feeds the breaker the shared
 * state (from script replies and published transitions) in generation order.
 *
 * Degraded mode: an operation that fails, answers junk or does not answer within the store's
 * bound makes the link unavailable (`degraded`): its breaker then decides on its own counts
 * (which hold every call, flushed or not), admits and settles probes by itself, and sends
 * nothing more but one probe at a time (an empty flush, which writes like any flush) once the
 * operations still in flight have settled. The first good answer to a probe or a resync ends
 * the degraded mode, and the breaker follows the shared state again.
 */
export class BreakerLinkImpl implements BreakerLink {
  /** `[state key, permits key]`, sharing one Cluster hash tag. */
  readonly keys: readonly [string, string];
  /** ARGV[2..] of the script: channel, name and the breaker's settings (BREAKER_SETTINGS). */
  readonly settingsArgs: readonly (string | number)[];
  /** Identifies this breaker instance in the store (for the cluster-wide consecutive rule). */
  readonly origin: string;
  /** The shared generation this breaker follows (0: none known). */
  generation = 0;
  /** Whether counts are waiting for a flush. */
  dirty = false;
  /** Whether an operation failed or timed out since the last good probe or resync. */
  degraded = false;
  /** Requests sent and not answered yet (those given up on after the bound included). */
  outstanding = 0;

  private calls = 0;
  private failures = 0;
  private slow = 0;
  private successes = 0;
  private trailing = 0;
  private flushing = false;
  private urgent = false;
  /** A decision waits for every process to report: flush again (even empty) when it may act. */
  private recheck = false;
  private lastFlushAt = -Infinity;
  /** Grows whenever the followed generation changes: a reply sent before may be outdated. */
  private epoch = 0;
  private commandsInFlight = 0;
  private claimsInFlight = 0;
  private claimSeq = 0;
  private claimBlockedUntil = 0;
  private parked: Permit[] = [];
  private readonly bound = new Map<number, Permit>();

  constructor(
    private readonly host: LinkHost,
    readonly breaker: SharedBreaker,
    keys: readonly [string, string],
    settingsArgs: readonly (string | number)[],
    origin: string,
  ) {
    this.keys = keys;
    this.settingsArgs = settingsArgs;
    this.origin = origin;
  }

  get available(): boolean {
    return !this.degraded && this.host.available && this.host.subscribedTo(this);
  }

  get claiming(): number {
    return this.claimsInFlight + this.parked.length;
  }

  record(failure: boolean, slow: boolean): void {
    this.calls++;
    if (failure) {
      this.failures++;
      this.trailing++;
    } else {
      this.successes++;
      this.trailing = 0;
    }
    if (slow) this.slow++;
    if (!this.dirty) {
      this.dirty = true;
      this.host.markDirty(this);
    }
  }

  flushSoon(): void {
    if (this.flushing) {
      // The breaker's own counts say trip and the store has not answered: past `tripWaitMs` the
      // store is too slow to decide, and the breaker decides alone from its next outcome.
      const waited = performance.now() - this.lastFlushAt;
      if (waited >= this.host.tripWaitMs) this.fail(new TimeoutError(this.host.tripWaitMs));
      else this.urgent = true;
      return;
    }
    const wait = this.lastFlushAt + this.host.urgentGapMs - performance.now();
    if (wait <= 0) this.flush();
    else this.host.flushLater(this, wait);
  }

  /**
   * Sends the pending counts (dropped while the link is unavailable: the breaker decides on its
   * own counts then). Returns false when a flush is already in flight and these counts must wait.
   */
  flush(): boolean {
    if (!this.dirty && !this.recheck) return true;
    if (this.flushing) return false;
    this.dirty = false;
    this.recheck = false;
    const args = this.batch();
    this.clearBatch();
    if (!this.available) return true;
    this.flushing = true;
    this.lastFlushAt = performance.now();
    const epoch = this.epoch;
    this.send(OP_FLUSH, args).then(
      (reply) => {
        this.flushing = false;
        const recheckMs = this.receive(reply, epoch);
        if (recheckMs > 0) {
          this.recheck = true;
          this.host.flushLater(this, recheckMs);
        }
        this.afterFlush();
      },
      () => {
        this.flushing = false;
        this.afterFlush();
      },
    );
    return true;
  }

  /**
   * While degraded: asks whether the store answers again, with an empty flush (it writes, so a
   * server refusing writes stays unavailable), unless a request is still unanswered.
   */
  probe(): void {
    if (!this.degraded || this.outstanding > 0 || !this.host.available) return;
    const epoch = this.epoch;
    this.host.run(this, OP_FLUSH, [this.generation, 0, 0, 0, 0, 0, this.origin]).then(
      (reply) => this.recover(reply, epoch),
      (error: unknown) => this.host.report(error),
    );
  }

  mayClaim(): boolean {
    return this.claimBlockedUntil === 0 || performance.now() >= this.claimBlockedUntil;
  }

  async claimProbe(ticket: number): Promise<ProbeClaim> {
    if (!this.available) return 'local';
    const id = `${this.origin}.${++this.claimSeq}`;
    const epoch = this.epoch;
    this.claimsInFlight++;
    const request = this.send(OP_CLAIM, [id]);
    let reply: ScriptReply;
    try {
      reply = await this.host.claimBound.execute(() => request);
    } catch {
      // Failed, or too slow for the call path: decide locally, and give back a permit granted
      // later.
      request.then(
        (late) => {
          if (late.applied) this.release(id, late.state.generation);
        },
        () => {},
      );
      return 'local';
    } finally {
      this.claimsInFlight--;
    }
    return this.claimed(reply, epoch, id, ticket);
  }

  claimAhead(): void {
    if (!this.available) return;
    const id = `${this.origin}.${++this.claimSeq}`;
    const epoch = this.epoch;
    this.claimsInFlight++;
    this.send(OP_CLAIM, [id]).then(
      (reply) => {
        this.claimsInFlight--;
        this.claimed(reply, epoch, id, 0);
      },
      () => {
        this.claimsInFlight--;
      },
    );
  }

  takeParked(ticket: number): boolean {
    const permit = this.parked.pop();
    if (permit === undefined) return false;
    this.bound.set(ticket, permit);
    return true;
  }

  settleProbe(ticket: number, outcome: ProbeOutcome): boolean {
    const permit = this.bound.get(ticket);
    if (permit === undefined) return false;
    this.bound.delete(ticket);
    if (!this.available) return false;
    const epoch = this.epoch;
    this.send(OP_SETTLE, [permit.generation, permit.id, OUTCOME_CODE[outcome]]).then(
      (reply) => this.receive(reply, epoch),
      ignore,
    );
    return true;
  }

  command(state: SharedCommand, openForMs: number, reason: string): void {
    if (!this.available) return;
    this.commandsInFlight++;
    this.send(OP_COMMAND, [COMMAND_CODE[state], Math.round(openForMs), reason]).then(
      (reply) => {
        this.commandsInFlight--;
        this.receive(reply, this.epoch);
      },
      () => {
        this.commandsInFlight--;
      },
    );
  }

  /** Reads the shared state and makes the breaker follow it (at connect and after an outage). */
  sync(): void {
    const epoch = this.epoch;
    this.host.run(this, OP_SYNC, []).then(
      (reply) => this.recover(reply, epoch),
      (error: unknown) => this.fail(error),
    );
  }

  /** A transition published by any process. */
  onMessage(state: SharedCircuitState): void {
    if (!this.degraded) this.apply(state, false);
  }

  /** Gives back parked permits older than `PARKED_PERMIT_MS`; returns whether some remain. */
  expireParked(now: number): boolean {
    const parked = this.parked;
    if (parked.length === 0) return false;
    const keep: Permit[] = [];
    for (const permit of parked) {
      if (now - permit.at >= PARKED_PERMIT_MS) this.release(permit.id, permit.generation);
      else keep.push(permit);
    }
    this.parked = keep;
    return keep.length > 0;
  }

  /** Runs one operation; a failure makes the link unavailable until a probe succeeds. */
  private send(op: number, args: readonly (string | number)[]): Promise<ScriptReply> {
    const request = this.host.run(this, op, args);
    request.catch((error: unknown) => this.fail(error));
    return request;
  }

  private fail(error: unknown): void {
    this.host.report(error);
    if (this.degraded) return;
    this.degraded = true;
    // Parked permits cannot be given back now; their leases free them in the store.
    this.parked = [];
    this.bound.clear();
    // A trip the breaker left to the store is its own to take now.
    this.breaker.reconsider();
  }

  /** A good answer to a probe or a resync: the link is available again, the shared state rules. */
  private recover(reply: ScriptReply, epoch: number): void {
    this.degraded = false;
    this.apply(reply.state, epoch === this.epoch);
  }

  private afterFlush(): void {
    if (this.urgent) {
      this.urgent = false;
      if (this.dirty || this.recheck) this.flushSoon();
    }
  }

  private claimed(reply: ScriptReply, epoch: number, id: string, ticket: number): ProbeClaim {
    this.apply(reply.state, epoch === this.epoch);
    if (!reply.applied) {
      this.claimBlockedUntil = performance.now() + CLAIM_RETRY_MS;
      return 'refused';
    }
    const permit: Permit = { id, generation: reply.state.generation, at: performance.now() };
    if (ticket !== 0) {
      this.bound.set(ticket, permit);
    } else if (reply.state.generation === this.generation) {
      this.parked.push(permit);
      this.host.markParked(this);
    } else {
      this.release(id, permit.generation);
    }
    return 'granted';
  }

  private release(id: string, generation: number): void {
    if (!this.available) return;
    this.send(OP_SETTLE, [generation, id, OUTCOME_CODE.ignore]).catch(ignore);
  }

  /** Follows the state in a script reply; returns when to flush again (0: no need). */
  private receive(reply: ScriptReply, epoch: number): number {
    if (this.degraded) return 0;
    this.apply(reply.state, epoch === this.epoch);
    return reply.recheckMs;
  }

  /**
   * Makes the breaker follow `state` unless it is older than what it follows. `authoritative`:
   * nothing was applied since the request was sent, so the server's answer wins even over a
   * newer-looking generation (the key expired or the server lost it).
   */
  private apply(state: SharedCircuitState, authoritative: boolean): void {
    const generation = state.generation;
    // An operator action in flight is newer than any answer to a request sent before it.
    if (generation <= this.generation && (!authoritative || this.commandsInFlight > 0)) return;
    if (generation !== this.generation) {
      // Counts and parked permits belong to the generation they were taken in (counts taken
      // while no circuit existed still count in the one just created).
      if (this.generation !== 0) this.clearBatch();
      this.generation = generation;
      this.epoch++;
      for (const permit of this.parked) this.release(permit.id, permit.generation);
      this.parked = [];
    }
    this.breaker.follow(state);
  }

  /** The flush arguments: generation, calls, failures, slow, successes, trailing failures, origin. */
  private batch(): (string | number)[] {
    return [
      this.generation,
      this.calls,
      this.failures,
      this.slow,
      this.successes,
      this.trailing,
      this.origin,
    ];
  }

  private clearBatch(): void {
    this.calls = 0;
    this.failures = 0;
    this.slow = 0;
    this.successes = 0;
    this.trailing = 0;
  }
}

function ignore(): void {}
