import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { constant } from './backoff';
import { isConfigError } from '../errors';
import { retry } from './retry';
import { RetryBudget } from './retry-budget';

class FakeClock {
  t = 5_000_000;
  now = (): number => this.t;
}

function configPath(fn: () => unknown): string {
  try {
    fn();
  } catch (error) {
    if (isConfigError(error)) return error.path;
    throw error;
  }
  throw new Error('expected a ConfigError');
}

function spend(budget: RetryBudget): number {
  let n = 0;
  while (budget.tryRetry()) n++;
  return n;
}

describe('RetryBudget', () => {
  it('allows ratio × first attempts retries', () => {
    const budget = new RetryBudget({ ratio: 0.2, minPerSecond: 0, clock: new FakeClock() });
    expect(budget.tryRetry()).toBe(false);
    for (let i = 0; i < 4; i++) budget.recordRequest();
    expect(budget.tryRetry()).toBe(false);
    budget.recordRequest();
    expect(budget.available).toBe(1);
    expect(budget.tryRetry()).toBe(true);
    expect(budget.tryRetry()).toBe(false);
    for (let i = 0; i < 1_000; i++) budget.recordRequest();
    expect(spend(budget)).toBe(200);
  });

  it('credits minPerSecond for each second of the window that has started', () => {
    const clock = new FakeClock();
    const budget = new RetryBudget({ ratio: 0, minPerSecond: 10, windowMs: '10s', clock });
    expect(spend(budget)).toBe(10);
    clock.t += 999;
    expect(budget.tryRetry()).toBe(false);
    clock.t += 1;
    expect(spend(budget)).toBe(10);
    clock.t += 60_000;
    // A long quiet spell: at most one window's worth of floor is available.
    expect(budget.available).toBe(100);
  });

  it('forgets first attempts and retries that left the window', () => {
    const clock = new FakeClock();
    const budget = new RetryBudget({ ratio: 1, minPerSecond: 0, windowMs: 1_000, clock });
    for (let i = 0; i < 10; i++) budget.recordRequest();
    expect(spend(budget)).toBe(10);
    clock.t += 500;
    for (let i = 0; i < 4; i++) budget.recordRequest();
    expect(spend(budget)).toBe(4);
    clock.t += 500; // the first 10 calls and their 10 retries leave together
    expect(budget.available).toBe(0);
    clock.t += 500; // the last 4 calls and their retries leave
    for (let i = 0; i < 3; i++) budget.recordRequest();
    expect(budget.available).toBe(3);
  });

  it('survives a clock that goes back', () => {
    const clock = new FakeClock();
    const budget = new RetryBudget({ ratio: 1, minPerSecond: 0, clock });
    budget.recordRequest();
    clock.t -= 60_000;
    budget.recordRequest();
    expect(spend(budget)).toBe(2);
  });

  it('keeps retries under ratio × calls + floor × seconds under a 100 % failure load', async () => {
    const clock = new FakeClock();
    const ratio = 0.2;
    const minPerSecond = 10;
    const budget = new RetryBudget({ ratio, minPerSecond, windowMs: 10_000, clock });
    const policy = retry({ maxAttempts: 5, backoff: constant(0), budget });
    let attempts = 0;
    const fail = async (): Promise<never> => {
      attempts++;
      throw new Error('down');
    };
    const calls = 3_000;
    const seconds = 30;
    for (let i = 0; i < calls; i++) {
      clock.t = 5_000_000 + Math.floor((i * seconds * 1_000) / calls);
      await policy.execute(fail).catch(() => undefined);
    }
    const retries = attempts - calls;
    expect(retries).toBeLessThanOrEqual(ratio * calls + minPerSecond * seconds);
    // The budget is what stops the retries: without it there would be 4 per call.
    expect(retries).toBeGreaterThan(ratio * calls);
  });

  it('never lets retries exceed ratio × calls + floor × seconds started (property)', () => {
    fc.assert(
      fc.property(
        fc.double({ min: 0, max: 2, noNaN: true }),
        fc.integer({ min: 0, max: 50 }),
        fc.integer({ min: 10, max: 20_000 }),
        fc.array(
          fc.record({
            gapMs: fc.integer({ min: 0, max: 3_000 }),
            calls: fc.integer({ min: 0, max: 20 }),
            retries: fc.integer({ min: 0, max: 40 }),
          }),
          { maxLength: 60 },
        ),
        (ratio, minPerSecond, windowMs, steps) => {
          const clock = new FakeClock();
          const start = clock.t;
          const budget = new RetryBudget({ ratio, minPerSecond, windowMs, clock });
          const bucketMs = windowMs / 10;
          let calls = 0;
          let retries = 0;
          for (const step of steps) {
            clock.t += step.gapMs;
            for (let i = 0; i < step.calls; i++) budget.recordRequest();
            calls += step.calls;
            for (let i = 0; i < step.retries; i++) if (budget.tryRetry()) retries++;
            const bucketsStarted = Math.floor((clock.t - start) / bucketMs) + 1;
            const floor = (minPerSecond * bucketMs * bucketsStarted) / 1_000;
            expect(retries).toBeLessThanOrEqual(ratio * calls + floor + 1e-6);
          }
        },
      ),
    );
  });

  it('can be shared by several retry policies', async () => {
    const budget = new RetryBudget({
      ratio: 0,
      minPerSecond: 2,
      windowMs: 10_000,
      clock: new FakeClock(),
    });
    const a = retry({ maxAttempts: 10, backoff: constant(0), budget });
    const b = retry({ maxAttempts: 10, backoff: constant(0), budget });
    let attempts = 0;
    const fail = async (): Promise<never> => {
      attempts++;
      throw new Error('down');
    };
    await a.execute(fail).catch(() => undefined);
    await b.execute(fail).catch(() => undefined);
    expect(attempts).toBe(2 + 2); // two calls, two retries between them
  });

  it('rejects bad options naming the option', () => {
    expect(configPath(() => new RetryBudget({ ratio: -0.1 }))).toBe('ratio');
    expect(configPath(() => new RetryBudget({ ratio: Number.NaN }))).toBe('ratio');
    expect(configPath(() => new RetryBudget({ minPerSecond: -1 }))).toBe('minPerSecond');
    expect(configPath(() => new RetryBudget({ windowMs: 0 }))).toBe('windowMs');
    expect(configPath(() => new RetryBudget({ windowMs: 5 }))).toBe('windowMs');
    expect(configPath(() => new RetryBudget({ clock: Date.now as never }))).toBe('clock');
    expect(configPath(() => new RetryBudget({ ration: 1 } as never))).toBe('ration');
  });

  it('exposes its settings', () => {
    const budget = new RetryBudget({ windowMs: '1m' });
    expect([budget.ratio, budget.minPerSecond, budget.windowMs]).toEqual([0.2, 10, 60_000]);
  });
});
