import { describe, expect, it, jest } from '@jest/globals';
import {
  MemoryBreakerStore,
  type BreakerLink,
  type BreakerStore,
  type ProbeClaim,
  type ProbeOutcome,
  type SharedBreaker,
  type SharedCircuitState,
  type SharedCommand,
} from './breaker-store';
import { CircuitBreaker, type CircuitBreakerOptions } from './circuit-breaker';
import { isCircuitOpenError } from '../errors';
import { FakeClock, boom, ok, make, failTimes, configError } from '../../test/breaker-helpers';

/** A shared store that records what breakers ask of it and answers as a test tells it to. */
class FakeLink implements BreakerLink {
  available = true;
  claiming = 0;
  records: Array<[failure: boolean, slow: boolean]> = [];
  flushes = 0;
  claims: number[] = [];
  ahead = 0;
  parked: number[] = [];
  settled: Array<[ticket: number, outcome: ProbeOutcome]> = [];
  commands: Array<[SharedCommand, number, string]> = [];
  blocked = false;
  answer: ProbeClaim = 'granted';
  private granted = new Set<number>();

  constructor(readonly breaker: SharedBreaker) {}

  record(failure: boolean, slow: boolean): void {
    this.records.push([failure, slow]);
  }
  flushSoon(): void {
    this.flushes++;
  }
  mayClaim(): boolean {
    return !this.blocked;
  }
  claimProbe(ticket: number): Promise<ProbeClaim> {
    this.claims.push(ticket);
    this.claiming++;
    return Promise.resolve().then(() => {
      this.claiming--;
      if (this.answer === 'granted') this.granted.add(ticket);
      return this.answer;
    });
  }
  claimAhead(): void {
    this.ahead++;
  }
  takeParked(ticket: number): boolean {
    if (this.parked.length === 0) return false;
    this.parked.pop();
    this.granted.add(ticket);
    return true;
  }
  settleProbe(ticket: number, outcome: ProbeOutcome): boolean {
    if (!this.granted.delete(ticket)) return false;
    this.settled.push([ticket, outcome]);
    return true;
  }
  command(state: SharedCommand, openForMs: number, reason: string): void {
    this.commands.push([state, openForMs, reason]);
  }
  /** The shared circuit changed (as a published transition would say). */
  follow(state: Partial<SharedCircuitState> & Pick<SharedCircuitState, 'state'>): void {
    this.breaker.follow({
      generation: 1,
      retryAfterMs: 0,
      openedAgoMs: null,
      closedAgoMs: null,
      backoffLevel: 0,
      reason: 'elsewhere (cluster)',
      ...state,
    });
  }
}

class FakeStore implements BreakerStore {
  readonly shared = true;
  links: FakeLink[] = [];
  connect(breaker: SharedBreaker): FakeLink {
    const link = new FakeLink(breaker);
    this.links.push(link);
    return link;
  }
}

function shared(options: Partial<CircuitBreakerOptions> = {}, clock = new FakeClock()) {
  const store = new FakeStore();
  const breaker = new CircuitBreaker({ name: 'shared', clock, store, ...options });
  const link = store.links[0]!;
  return { breaker, clock, store, link };
}

describe('CircuitBreaker with a breaker store', () => {
  it('applies its own rules at once when the store goes away after it left a trip to it', async () => {
    const { breaker, link } = shared({ failureThreshold: 2 });
    await failTimes(breaker, 2);
    expect(breaker.state).toBe('closed'); // the store decides on the cluster's totals
    link.available = false;
    link.breaker.reconsider();
    expect(breaker.state).toBe('open');
  });

  it('does nothing on reconsider while the store is available or when no rule is met', async () => {
    const { breaker, link } = shared({
      failureThreshold: 3,
      failureRateThreshold: 50,
      minimumCalls: 4,
    });
    await failTimes(breaker, 2);
    link.breaker.reconsider();
    expect(breaker.state).toBe('closed');
    link.available = false;
    link.breaker.reconsider();
    expect(breaker.state).toBe('closed');
    await breaker.execute(ok);
    await failTimes(breaker, 1);
    expect(breaker.state).toBe('open'); // 3 of 4 failed: the rate rule, decided locally
  });

  it.each([
    [{ store: {} }, 'store'],
    [{ store: { shared: true } }, 'store'],
    [{ store: new MemoryBreakerStore(), scope: 'global' }, 'scope'],
    [{ store: new MemoryBreakerStore(), scope: 'shared' }, 'scope'],
    [{ scope: 'shared' }, 'scope'],
  ])('rejects %j naming %s', (options, path) => {
    const error = configError(
      () => new CircuitBreaker({ name: 'x', ...options } as unknown as CircuitBreakerOptions),
    );
    expect(error.path).toBe(path);
  });

  it('the memory store (the default) adds nothing to a breaker', async () => {
    const store = new MemoryBreakerStore();
    expect(store.shared).toBe(false);
    expect(store.connect()).toBeUndefined();
    const { breaker } = make({ store, failureThreshold: 2 });
    expect((breaker as unknown as { link: unknown }).link).toBeUndefined();
    await failTimes(breaker, 2);
    expect(breaker.state).toBe('open');
  });

  it('connects once in shared scope with the resolved settings, never in local scope', () => {
    const { store, link } = shared({
      failureThreshold: false,
      failureRateThreshold: 50,
      window: { type: 'time', durationMs: '30s', buckets: 6 },
      openDurationMs: '10s',
      backoff: { multiplier: 2, maxMs: '40s' },
      halfOpen: { maxConcurrent: 3, successThreshold: 2, maxWaitMs: 500 },
    });
    expect(store.links).toHaveLength(1);
    expect(link.breaker.name).toBe('shared');
    expect(link.breaker.settings).toEqual({
      failureThreshold: 0,
      failureRateThreshold: 50,
      slowCallRateThreshold: 0,
      minimumCalls: 10,
      window: { type: 'time', durationMs: 30_000, buckets: 6 },
      openDurationMs: 10_000,
      backoffMultiplier: 2,
      backoffMaxMs: 40_000,
      backoffResetAfterMs: 0,
      maxBackoffLevel: 2,
      halfOpenMaxConcurrent: 3,
      halfOpenSuccessThreshold: 2,
      halfOpenMaxWaitMs: 500,
    });
    const local = new FakeStore();
    new CircuitBreaker({ name: 'x', store: local, scope: 'local' });
    expect(local.links).toHaveLength(0);
  });

  it('reports closed outcomes to the store and lets the shared circuit decide', async () => {
    const { breaker, link } = shared({ failureThreshold: 2 });
    await breaker.execute(ok);
    await failTimes(breaker, 3);
    await breaker.execute(() => Promise.reject(boom), undefined).catch(() => undefined);
    expect(link.records).toEqual([
      [false, false],
      [true, false],
      [true, false],
      [true, false],
      [true, false],
    ]);
    // The local counts could open the circuit: they hurry to the store instead.
    expect(breaker.state).toBe('closed');
    expect(link.flushes).toBe(3);
    link.follow({ state: 'open', retryAfterMs: 5_000, openedAgoMs: 10, reason: 'x (cluster)' });
    expect(breaker.state).toBe('open');
    expect(breaker.retryAfterMs).toBe(5_000);
    expect(breaker.snapshot().openedAt).toBe(breaker.snapshot().nextAttemptAt! - 5_010);
  });

  it('trips on its own counts while the store is unreachable', async () => {
    const { breaker, link } = shared({ failureThreshold: 2 });
    link.available = false;
    await failTimes(breaker, 2);
    expect(breaker.state).toBe('open');
    expect(link.flushes).toBe(0);
  });

  it('follows the shared state, emitting stateChange only when the state changes', () => {
    const { breaker, link, clock } = shared();
    const changes: string[] = [];
    breaker.on('stateChange', ({ from, to, reason }) => changes.push(`${from}>${to}: ${reason}`));
    link.follow({ state: 'closed', generation: 2 });
    link.follow({ state: 'forced_open', generation: 3, openedAgoMs: 0, reason: 'forced open' });
    link.follow({ state: 'forced_open', generation: 3, openedAgoMs: 0 });
    link.follow({ state: 'open', generation: 4, retryAfterMs: 100, backoffLevel: 0 });
    clock.advance(100);
    expect(breaker.state).toBe('half_open');
    // The shared circuit is "open and due": the same as a local half-open.
    link.follow({ state: 'open', generation: 4, retryAfterMs: 0 });
    link.follow({
      state: 'closed',
      generation: 5,
      closedAgoMs: 0,
      reason: '1 probe success (cluster)',
    });
    expect(changes).toEqual([
      'closed>forced_open: forced open',
      'forced_open>open: elsewhere (cluster)',
      'open>half_open: open time elapsed',
      'half_open>closed: 1 probe success (cluster)',
    ]);
  });

  it('execute() waits for a shared probe permit and settles through the store', async () => {
    const { breaker, link } = shared({ halfOpen: { maxConcurrent: 2 } });
    link.follow({ state: 'open', retryAfterMs: 0 });
    const fn = jest.fn(ok);
    await expect(breaker.execute(fn)).resolves.toBe('ok');
    expect(fn).toHaveBeenCalledTimes(1);
    expect(link.claims).toHaveLength(1);
    expect(link.settled).toEqual([[link.claims[0], 'success']]);
    // The store decides: a probe success alone does not close the circuit here.
    expect(breaker.state).toBe('half_open');

    link.answer = 'refused';
    const refused = await breaker.execute(fn).catch((e: unknown) => e);
    expect(isCircuitOpenError(refused)).toBe(true);
    expect(fn).toHaveBeenCalledTimes(1);
  });

  it('never claims more permits than halfOpen.maxConcurrent from one process', async () => {
    const { breaker, link } = shared({ halfOpen: { maxConcurrent: 2 } });
    link.follow({ state: 'open', retryAfterMs: 0 });
    const calls = Array.from({ length: 10 }, () =>
      breaker.execute(() => new Promise<string>(() => {})).catch((e: unknown) => e),
    );
    const rejected = await Promise.race([
      Promise.all(calls.slice(2)),
      new Promise((r) => setTimeout(r, 100)),
    ]);
    expect(link.claims).toHaveLength(2);
    expect((rejected as unknown[]).every(isCircuitOpenError)).toBe(true);
    expect(breaker.snapshot().halfOpenProbes).toBe(2);
  });

  it('a probe answered locally (store too slow) follows the local rules once the store is gone', async () => {
    const { breaker, link } = shared();
    link.follow({ state: 'open', retryAfterMs: 0 });
    link.answer = 'local';
    link.available = true;
    const running = breaker.execute(ok);
    link.available = false;
    await expect(running).resolves.toBe('ok');
    expect(link.settled).toEqual([]);
    expect(breaker.state).toBe('closed');
  });

  it('tryAcquire() claims ahead and returns undefined, then hands out the parked permit', () => {
    const { breaker, link } = shared();
    link.follow({ state: 'open', retryAfterMs: 0 });
    const rejected: number[] = [];
    breaker.on('rejected', ({ retryAfterMs }) => rejected.push(retryAfterMs));
    expect(breaker.tryAcquire()).toBeUndefined();
    expect(link.ahead).toBe(1);
    expect(rejected).toEqual([0]);
    link.parked.push(1);
    const permit = breaker.tryAcquire();
    expect(permit).toBeDefined();
    permit!.failure(boom);
    expect(link.settled).toHaveLength(1);
    expect(link.settled[0]![1]).toBe('failure');
    // Right after a refusal the breaker does not ask again.
    link.blocked = true;
    expect(breaker.tryAcquire()).toBeUndefined();
    expect(link.ahead).toBe(1);
  });

  it('sends operator actions to the store after applying them locally', () => {
    const { breaker, link } = shared();
    breaker.open();
    expect(breaker.state).toBe('forced_open');
    breaker.openFor(1_500);
    breaker.disable();
    breaker.reset();
    expect(link.commands).toEqual([
      ['forced_open', 0, 'forced open'],
      ['open', 1_500, 'opened for 1500 ms'],
      ['disabled', 0, 'disabled'],
      ['closed', 0, 'reset'],
    ]);
  });
});
