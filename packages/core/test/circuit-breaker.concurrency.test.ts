import { describe, expect, it } from '@jest/globals';
import { CircuitBreaker } from '../src/breaker/circuit-breaker';
import { isCircuitOpenError } from '../src/errors';

/*
 * Many callers arriving at once at a half-open circuit: exactly `maxConcurrent` probes get
 * through, the others are rejected at once, and the probes decide what happens next.
 */

const CALLERS = 1_000;
const OPEN_MS = 1_000;

interface Deferred<T> {
  promise: Promise<T>;
  resolve: (value: T) => void;
  reject: (error: unknown) => void;
}

function deferred<T>(): Deferred<T> {
  let resolve!: (value: T) => void;
  let reject!: (error: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/** Resolves once every pending promise callback has run. */
const drain = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

type Settled<T> =
  | { status: 'pending' }
  | { status: 'fulfilled'; value: T }
  | { status: 'rejected'; error: unknown };

/** Follows a promise without awaiting it, so that its state can be read at any time. */
function track<T>(promise: Promise<T>): { readonly current: Settled<T>; done: Promise<void> } {
  const tracked: { current: Settled<T>; done: Promise<void> } = {
    current: { status: 'pending' },
    done: promise.then(
      (value) => {
        tracked.current = { status: 'fulfilled', value };
      },
      (error: unknown) => {
        tracked.current = { status: 'rejected', error };
      },
    ),
  };
  return tracked;
}

/** A breaker whose open time has just elapsed: the next call finds it half-open. */
function dueForProbes(maxConcurrent: number) {
  const clock = { t: 0, now: (): number => clock.t };
  const breaker = new CircuitBreaker({
    name: 'crowd',
    clock,
    failureThreshold: 1,
    openDurationMs: OPEN_MS,
    halfOpen: { maxConcurrent, successThreshold: maxConcurrent },
  });
  breaker.tryAcquire()!.failure(new Error('down'));
  expect(breaker.snapshot()).toMatchObject({ state: 'open', retryAfterMs: OPEN_MS });
  clock.t += OPEN_MS;
  return { breaker, clock };
}

describe.each([1, 5])(
  'CircuitBreaker half-open with %i probe(s) and 1,000 concurrent callers',
  (maxConcurrent) => {
    it('execute() lets exactly maxConcurrent probes through, rejects the rest at once, then closes', async () => {
      const { breaker } = dueForProbes(maxConcurrent);
      const gates: Deferred<string>[] = [];
      const calls = Array.from({ length: CALLERS }, (_, i) =>
        track(
          breaker.execute(() => {
            const gate = deferred<string>();
            gates.push(gate);
            return gate.promise.then((value) => `${value} ${i}`);
          }),
        ),
      );

      // Admission is decided when execute() is called: only the probes ever started.
      expect(gates).toHaveLength(maxConcurrent);
      expect(breaker.snapshot()).toMatchObject({
        state: 'half_open',
        halfOpenProbes: maxConcurrent,
      });

      // The others are already rejected, before any probe has settled.
      await drain();
      const rejected = calls.filter((c) => c.current.status === 'rejected');
      const pending = calls.filter((c) => c.current.status === 'pending');
      expect(rejected).toHaveLength(CALLERS - maxConcurrent);
      expect(pending).toHaveLength(maxConcurrent);
      for (const call of rejected) {
        const settled = call.current;
        if (settled.status !== 'rejected') throw new Error('unreachable');
        expect(isCircuitOpenError(settled.error)).toBe(true);
        expect(settled.error).toMatchObject({
          code: 'ECIRCUITOPEN',
          breaker: 'crowd',
          retryAfterMs: 0,
        });
      }

      // The probes succeed one by one; the circuit closes with the last one.
      for (const [n, gate] of gates.entries()) {
        expect(breaker.state).toBe('half_open');
        gate.resolve('ok');
        await pending[n]!.done;
        expect(pending[n]!.current.status).toBe('fulfilled');
      }
      expect(breaker.snapshot()).toMatchObject({
        state: 'closed',
        consecutiveFailures: 0,
        calls: 0,
        halfOpenProbes: 0,
      });

      // Closed again: everyone gets through.
      const after = await Promise.all(
        Array.from({ length: CALLERS }, (_, i) => breaker.execute(() => Promise.resolve(i))),
      );
      expect(after).toEqual(Array.from({ length: CALLERS }, (_, i) => i));
      expect(breaker.state).toBe('closed');
    });

    it('tryAcquire() from concurrent callers hands out exactly maxConcurrent permits, then closes', async () => {
      const { breaker } = dueForProbes(maxConcurrent);
      const release = deferred<void>();
      let holding = 0;
      const callers = Array.from({ length: CALLERS }, async () => {
        await Promise.resolve(); // every caller starts in its own turn
        const permit = breaker.tryAcquire();
        if (permit === undefined) return 'rejected' as const;
        holding++;
        await release.promise;
        permit.success();
        return 'probe' as const;
      });
      const tracked = callers.map(track);

      await drain();
      expect(holding).toBe(maxConcurrent);
      expect(tracked.filter((c) => c.current.status === 'pending')).toHaveLength(maxConcurrent);
      expect(breaker.snapshot()).toMatchObject({
        state: 'half_open',
        halfOpenProbes: maxConcurrent,
      });
      expect(breaker.tryAcquire()).toBeUndefined();

      release.resolve();
      const outcomes = await Promise.all(callers);
      expect(outcomes.filter((o) => o === 'probe')).toHaveLength(maxConcurrent);
      expect(outcomes.filter((o) => o === 'rejected')).toHaveLength(CALLERS - maxConcurrent);
      expect(breaker.snapshot()).toMatchObject({ state: 'closed', halfOpenProbes: 0 });
      const permit = breaker.tryAcquire();
      expect(permit).toBeDefined();
      permit!.success();
    });

    it('one failing probe reopens the circuit and the other probes settling later change nothing', async () => {
      const { breaker, clock } = dueForProbes(maxConcurrent);
      const gates: Deferred<string>[] = [];
      const calls = Array.from({ length: CALLERS }, () =>
        track(
          breaker.execute(() => {
            const gate = deferred<string>();
            gates.push(gate);
            return gate.promise;
          }),
        ),
      );
      expect(gates).toHaveLength(maxConcurrent);
      const probes = calls.filter((c) => c.current.status === 'pending');
      await drain();

      const [first, ...others] = gates;
      first!.reject(new Error('still down'));
      await drain();
      const reopened = breaker.snapshot();
      expect(reopened).toMatchObject({ state: 'open', retryAfterMs: OPEN_MS });

      for (const gate of others) gate.resolve('late');
      await Promise.all(probes.map((p) => p.done));
      expect(breaker.snapshot()).toEqual(reopened);

      clock.t += OPEN_MS;
      expect(breaker.state).toBe('half_open');
    });
  },
);

describe('CircuitBreaker closed under 1,000 concurrent callers', () => {
  it('calls admitted before the circuit opened and failing after it never extend the open time', async () => {
    const clock = { t: 0, now: (): number => clock.t };
    const breaker = new CircuitBreaker({
      name: 'crowd',
      clock,
      failureThreshold: 3,
      openDurationMs: OPEN_MS,
    });
    const gates: Deferred<never>[] = [];
    const calls = Array.from({ length: CALLERS }, () =>
      track(
        breaker.execute(() => {
          const gate = deferred<never>();
          gates.push(gate);
          return gate.promise;
        }),
      ),
    );
    expect(gates).toHaveLength(CALLERS); // closed: everyone is admitted

    for (const [n, gate] of gates.entries()) {
      clock.t = n; // outcomes arrive over time
      gate.reject(new Error('down'));
      await calls[n]!.done;
    }
    // Opened by the third failure at t=2; the 997 later failures belong to the closed circuit.
    expect(breaker.snapshot()).toMatchObject({
      state: 'open',
      openedAt: 2,
      nextAttemptAt: 2 + OPEN_MS,
    });
    clock.t = 2 + OPEN_MS;
    expect(breaker.state).toBe('half_open');
  });
});
