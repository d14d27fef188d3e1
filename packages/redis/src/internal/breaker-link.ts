import type {
  BreakerLink,
  ProbeClaim,
  ProbeOutcome,
  SharedBreaker,
  SharedCircuitState,
  SharedCommand,
} from '@breakwater/core';
import { OP_CLAIM, OP_COMMAND, OP_FLUSH, OP_SETTLE, OP_SYNC, STATE_CODES } from './breaker-script';

/** What a link needs from its store. */
export interface LinkHost {
  readonly available: boolean;
  /** Longest a call waits for a probe permit. */
  readonly claimTimeoutMs: number;
  /** Shortest gap between two flushes of one breaker hurried by its own counts. */
  readonly urgentGapMs: number;
  /** Runs one operation of the breaker script for `link`; rejects when Redis is unavailable. */
  run(link: BreakerLinkImpl, op: number, args: readonly (string | number)[]): Promise<unknown>;
  /** Marks `link` as holding counts to flush at the next tick. */
  markDirty(link: BreakerLinkImpl): void;
  /** Flushes `link` after `delayMs` (one timer for the whole store). */
  flushLater(link: BreakerLinkImpl, delayMs: number): void;
  /** Marks `link` as holding parked permits, released at a tick when unused. */
  markParked(link: BreakerLinkImpl): void;
  /** Reports an error of a background operation. */
  report(error: unknown): void;
}

/** Reply of the breaker script (see BREAKER_SCRIPT). */
type Reply = readonly [
  applied: number,
  generation: number,
  state: number,
  retryAfterMs: number,
  openedAgoMs: number,
  backoffLevel: number,
  closedAgoMs: number,
  reason: string,
  recheckMs: number,
];

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

/** Turns a script reply or a published message into the state a breaker follows. */
export function sharedState(
  generation: number,
  code: number,
  retryAfterMs: number,
  openedAgoMs: number,
  backoffLevel: number,
  closedAgoMs: number,
  reason: string,
): SharedCircuitState | undefined {
  const state = STATE_CODES[code];
  if (state === undefined || !Number.isFinite(generation)) return undefined;
  return {
    generation,
    state,
    retryAfterMs: Math.max(0, retryAfterMs),
    openedAgoMs: openedAgoMs < 0 ? null : openedAgoMs,
    closedAgoMs: closedAgoMs < 0 ? null : closedAgoMs,
    backoffLevel,
    reason,
  };
}

function fromReply(
  reply: unknown,
): { applied: boolean; state: SharedCircuitState; recheckMs: number } | undefined {
  if (!Array.isArray(reply) || reply.length < 9) return undefined;
  const r = reply as unknown as Reply;
  const state = sharedState(
    Number(r[1]),
    Number(r[2]),
    Number(r[3]),
    Number(r[4]),
    Number(r[5]),
    Number(r[6]),
    String(r[7]),
  );
  if (state === undefined) return undefined;
  return { applied: Number(r[0]) === 1, state, recheckMs: Number(r[8]) || 0 };
}

/**
 * One breaker's connection to a {@link RedisBreakerStore}: counts outcomes between flushes,
 * claims and settles probe permits, forwards operator actions, and feeds the breaker the shared
 * state (from script replies and published transitions) in generation order.
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
  /** The flush in flight, if any (settles, never rejects). */
  inFlight: Promise<void> | undefined = undefined;

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
    return this.host.available;
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
      this.urgent = true;
      return;
    }
    const wait = this.lastFlushAt + this.host.urgentGapMs - performance.now();
    if (wait <= 0) this.flush();
    else this.host.flushLater(this, wait);
  }

  /**
   * Sends the pending counts (dropped while Redis is unavailable: the breaker decides on its own
   * counts then). Returns false when a flush is already in flight and these counts must wait.
   */
  flush(): boolean {
    if (!this.dirty && !this.recheck) return true;
    if (this.flushing) return false;
    this.dirty = false;
    this.recheck = false;
    const args = [
      this.generation,
      this.calls,
      this.failures,
      this.slow,
      this.successes,
      this.trailing,
      this.origin,
    ];
    this.clearBatch();
    if (!this.host.available) return true;
    this.flushing = true;
    this.lastFlushAt = performance.now();
    const epoch = this.epoch;
    this.inFlight = this.host.run(this, OP_FLUSH, args).then(
      (reply) => {
        this.flushing = false;
        this.inFlight = undefined;
        const recheckMs = this.receive(reply, epoch);
        if (recheckMs > 0) {
          this.recheck = true;
          this.host.flushLater(this, recheckMs);
        }
        this.afterFlush();
      },
      (error: unknown) => {
        this.flushing = false;
        this.inFlight = undefined;
        this.host.report(error);
        this.afterFlush();
      },
    );
    return true;
  }

  mayClaim(): boolean {
    return this.claimBlockedUntil === 0 || performance.now() >= this.claimBlockedUntil;
  }

  async claimProbe(ticket: number): Promise<ProbeClaim> {
    if (!this.host.available) return 'local';
    const id = `${this.origin}.${++this.claimSeq}`;
    const epoch = this.epoch;
    this.claimsInFlight++;
    const request = this.host.run(this, OP_CLAIM, [id]);
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<undefined>((resolve) => {
      timer = setTimeout(() => resolve(undefined), this.host.claimTimeoutMs);
    });
    let reply: unknown;
    try {
      reply = await Promise.race([request, timeout]);
    } catch (error) {
      this.host.report(error);
      return 'local';
    } finally {
      clearTimeout(timer);
      this.claimsInFlight--;
    }
    if (reply === undefined) {
      // Too slow for the call path: decide locally, and give back a permit granted later.
      request.then(
        (late) => {
          const parsed = fromReply(late);
          if (parsed?.applied === true) this.release(id, parsed.state.generation);
        },
        () => {},
      );
      return 'local';
    }
    return this.claimed(reply, epoch, id, ticket);
  }

  claimAhead(): void {
    if (!this.host.available) return;
    const id = `${this.origin}.${++this.claimSeq}`;
    const epoch = this.epoch;
    this.claimsInFlight++;
    this.host.run(this, OP_CLAIM, [id]).then(
      (reply) => {
        this.claimsInFlight--;
        this.claimed(reply, epoch, id, 0);
      },
      (error: unknown) => {
        this.claimsInFlight--;
        this.host.report(error);
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
    if (!this.host.available) return false;
    const epoch = this.epoch;
    this.host
      .run(this, OP_SETTLE, [permit.generation, permit.id, OUTCOME_CODE[outcome]])
      .then((reply) => this.receive(reply, epoch), this.reportError);
    return true;
  }

  command(state: SharedCommand, openForMs: number, reason: string): void {
    if (!this.host.available) return;
    this.commandsInFlight++;
    this.host.run(this, OP_COMMAND, [COMMAND_CODE[state], Math.round(openForMs), reason]).then(
      (reply) => {
        this.commandsInFlight--;
        this.receive(reply, this.epoch);
      },
      (error: unknown) => {
        this.commandsInFlight--;
        this.host.report(error);
      },
    );
  }

  /** Reads the shared state and makes the breaker follow it (at connect and after an outage). */
  sync(): void {
    const epoch = this.epoch;
    this.host.run(this, OP_SYNC, []).then((reply) => this.receive(reply, epoch), this.reportError);
  }

  /** A transition published by any process. */
  onMessage(state: SharedCircuitState): void {
    this.apply(state, false);
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

  private readonly reportError = (error: unknown): void => this.host.report(error);

  private afterFlush(): void {
    if (this.urgent) {
      this.urgent = false;
      if (this.dirty || this.recheck) this.flushSoon();
    }
  }

  private claimed(reply: unknown, epoch: number, id: string, ticket: number): ProbeClaim {
    const parsed = fromReply(reply);
    if (parsed === undefined) return 'local';
    this.apply(parsed.state, epoch === this.epoch);
    if (!parsed.applied) {
      this.claimBlockedUntil = performance.now() + CLAIM_RETRY_MS;
      return 'refused';
    }
    const permit: Permit = { id, generation: parsed.state.generation, at: performance.now() };
    if (ticket !== 0) {
      this.bound.set(ticket, permit);
    } else if (parsed.state.generation === this.generation) {
      this.parked.push(permit);
      this.host.markParked(this);
    } else {
      this.release(id, permit.generation);
    }
    return 'granted';
  }

  private release(id: string, generation: number): void {
    if (!this.host.available) return;
    this.host.run(this, OP_SETTLE, [generation, id, OUTCOME_CODE.ignore]).catch(this.reportError);
  }

  /** Follows the state in a script reply; returns when to flush again (0: no need). */
  private receive(reply: unknown, epoch: number): number {
    const parsed = fromReply(reply);
    if (parsed === undefined) return 0;
    this.apply(parsed.state, epoch === this.epoch);
    return parsed.recheckMs;
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

  private clearBatch(): void {
    this.calls = 0;
    this.failures = 0;
    this.slow = 0;
    this.successes = 0;
    this.trailing = 0;
  }
}
