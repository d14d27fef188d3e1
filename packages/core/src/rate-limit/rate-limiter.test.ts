import { afterEach, beforeEach, describe, expect, it, jest } from '@jest/globals';
import { CircuitBreaker } from '../breaker/circuit-breaker';
import { ConfigError, RateLimitError, isCircuitOpenError, isRateLimitError } from '../errors';
import { FailoverRateLimitStore } from './failover-rate-limit-store';
import { MemoryRateLimitStore } from './memory-rate-limit-store';
import type { RateLimitDecision, RateLimitRule, RateLimitStore } from './rate-limit-store';
import { RateLimiter, type RateLimiterOptions } from './rate-limiter';

type Mode = 'ok' | 'reject' | 'hang' | 'late-reject' | 'throw' | 'garbage';

/** A remote-looking store whose behaviour the test switches. */
class FakeStore implements RateLimitStore {
  mode: Mode = 'ok';
  calls = 0;
  resets = 0;
  readonly rules = new Set<RateLimitRule>();
  /** Rejections of 'late-reject' calls, and whether a handler was attached before they fired. */
  readonly late: { handled: boolean }[] = [];
  readonly inner = new MemoryRateLimitStore({ sweepIntervalMs: 0 });

  consume(key: string, cost: number, rule: RateLimitRule): Promise<RateLimitDecision> {
    this.calls++;
    this.rules.add(rule);
    switch (this.mode) {
      case 'ok':
        return this.inner.consume(key, cost, rule);
      case 'reject':
        return Promise.reject(new Error('store down'));
      case 'hang':
        return new Promise<RateLimitDecision>(() => {});
      case 'late-reject':
        return this.lateRejection();
      case 'throw':
        throw new Error('sync failure');
      case 'garbage':
        return Promise.resolve(undefined as unknown as RateLimitDecision);
    }
  }

  reset(key: string, rule: RateLimitRule): Promise<void> {
    this.resets++;
    if (this.mode !== 'ok') return Promise.reject(new Error('store down'));
    return this.inner.reset(key, rule);
  }

  private lateRejection(): Promise<RateLimitDecision> {
    const record = { handled: false };
    this.late.push(record);
    const promise = new Promise<RateLimitDecision>((_, reject) => {
      setTimeout(() => reject(new Error('late failure')), 500);
    });
    const then = promise.then.bind(promise);
    promise.then = ((onFulfilled?: unknown, onRejected?: unknown) => {
      if (typeof onRejected === 'function') record.handled = true;
      return then(onFulfilled as never, onRejected as never);
    }) as typeof promise.then;
    return promise;
  }
}

function configError(options: unknown): ConfigError {
  try {
    new RateLimiter(options as RateLimiterOptions);
  } catch (error) {
    if (error instanceof ConfigError) return error;
    throw error;
  }
  throw new Error('expected a ConfigError');
}

afterEach(() => {
  jest.useRealTimers();
});

describe('RateLimiter options', () => {
  const base = { name: 'api', rate: '10/s' };
  it.each([
    [{ rate: '10/s' }, 'name', undefined],
    [{ ...base, name: '' }, 'name', ''],
    [{ ...base, algorithm: 'leaky-bucket' }, 'algorithm', 'leaky-bucket'],
    [{ ...base, rate: '10 per second' }, 'rate', '10 per second'],
    [{ name: 'api' }, 'rate', undefined],
    [{ ...base, limit: 5 }, 'limit', 5],
    [{ name: 'api', limit: 0, window: '1s' }, 'limit', 0],
    [{ name: 'api', limit: 2.5, window: '1s' }, 'limit', 2.5],
    [{ name: 'api', limit: 5, window: 'soon' }, 'window', 'soon'],
    [{ name: 'api', limit: 5, window: 0 }, 'window', 0],
    [{ name: 'api', limit: 5 }, 'window', undefined],
    [{ ...base, burst: 20 }, 'burst', 20],
    [{ ...base, algorithm: 'token-bucket', burst: 0 }, 'burst', 0],
    [{ ...base, blockDurationMs: -1 }, 'blockDurationMs', -1],
    [{ ...base, store: {} }, 'store', {}],
    [{ ...base, onStoreFailure: 'ignore' }, 'onStoreFailure', 'ignore'],
    [
      { ...base, onStoreFailure: 'deny', fallbackStore: new MemoryRateLimitStore() },
      'fallbackStore',
      'a store',
    ],
    [{ ...base, fallbackStore: { consume: 1 } }, 'fallbackStore', { consume: 1 }],
    [{ ...base, storeTimeoutMs: 0 }, 'storeTimeoutMs', 0],
    [{ ...base, storeTimeoutMs: 'fast' }, 'storeTimeoutMs', 'fast'],
    [{ ...base, breaker: { failureThreshold: 0 } }, 'breaker.failureThreshold', 0],
    [{ ...base, breaker: { openDurationMs: -5 } }, 'breaker.openDurationMs', -5],
    [{ ...base, breaker: { timeoutMs: 50 } }, 'breaker.timeoutMs', 50],
    [{ ...base, breaker: 'strict' }, 'breaker', 'strict'],
    [{ ...base, clock: 5 }, 'clock', 5],
    [{ ...base, limt: 5 }, 'limt', 5],
    [{ name: 'api', algorithm: 'sliding-window', limit: 2 ** 30, window: '1d' }, 'limit', 2 ** 30],
  ])('rejects %j naming %s', (options, path, value) => {
    const error = configError(options);
    expect(error.path).toBe(path);
    expect(error.value).toEqual(value);
    expect(error.message).toContain(`RateLimiter: option "${path}"`);
  });

  it('takes a rate and durations typed as plain strings (read from the environment)', async () => {
    const env: Record<string, string | undefined> = { RATE: '2/m', BLOCK: '90s' };
    // No cast: `string` is assignable to the Rate and Duration options.
    const rate: string = env.RATE ?? '100/m';
    const blockDurationMs: string = env.BLOCK ?? '1m';
    const limiter = new RateLimiter({ name: 'env', rate, blockDurationMs });
    await limiter.consume('k');
    await limiter.consume('k');
    expect(await limiter.consume('k')).toMatchObject({ allowed: false, retryAfterMs: 90_000 });
    const wrong: string = env.MISSING ?? 'two per minute';
    const error = configError({ name: 'env', rate: wrong });
    expect([error.path, error.value]).toEqual(['rate', 'two per minute']);
  });
  it('builds one frozen rule and passes that same object to the store on every call', async () => {
    const store = new FakeStore();
    const limiter = new RateLimiter({
      name: 'api',
      algorithm: 'token-bucket',
      limit: 10,
      window: '1m',
      burst: 15,
      blockDurationMs: '5s',
      store,
    });
    expect(limiter.rule).toEqual({
      name: 'api',
      algorithm: 'token-bucket',
      limit: 10,
      windowMs: 60_000,
      burst: 15,
      blockDurationMs: 5_000,
    });
    expect(Object.isFrozen(limiter.rule)).toBe(true);
    await limiter.consume('a');
    await limiter.consume('b', 3);
    expect([...store.rules]).toEqual([limiter.rule]);
    expect([...store.rules][0]).toBe(limiter.rule);
  });

  it('defaults: fixed window, burst = limit, no block, memory store, fallback policy', () => {
    const limiter = new RateLimiter({ name: 'api', rate: { limit: 3, window: '1h' } });
    expect(limiter.rule).toEqual({
      name: 'api',
      algorithm: 'fixed-window',
      limit: 3,
      windowMs: 3_600_000,
      burst: 3,
      blockDurationMs: 0,
    });
    expect(limiter.store).toBeInstanceOf(MemoryRateLimitStore);
    expect(limiter.onStoreFailure).toBe('fallback');
    expect(limiter.breaker).toBeUndefined();
  });
});

describe('RateLimiter on a local store', () => {
  it('consumes, checks and reports health without a breaker', async () => {
    let now = 0;
    const limiter = new RateLimiter({ name: 'api', rate: '2/s', clock: { now: () => now } });
    await expect(limiter.consume('k')).resolves.toMatchObject({ allowed: true, remaining: 1 });
    await expect(limiter.check('k')).resolves.toMatchObject({ allowed: true, remaining: 0 });
    const error = await limiter.check('k').catch((e: unknown) => e);
    expect(isRateLimitError(error)).toBe(true);
    expect(error).toMatchObject({ retryAfterMs: 1_000, limit: 2, remaining: 0 });
    expect((error as RateLimitError).message).toContain('"api"');
    now = 1_000;
    await expect(limiter.consume('k', 2)).resolves.toMatchObject({ allowed: true });
    expect(limiter.health()).toEqual({
      name: 'api',
      status: 'pass',
      store: 'primary',
      breaker: 'closed',
      onStoreFailure: 'fallback',
      local: true,
    });
    await limiter.reset('k');
    await expect(limiter.consume('k', 0)).resolves.toMatchObject({ remaining: 2 });
    await limiter.close();
  });

  it.each([[-1], [1.5], [Number.NaN], [Infinity], ['1']])('rejects cost %p', async (cost) => {
    const limiter = new RateLimiter({ name: 'api', rate: '2/s' });
    await expect(limiter.consume('k', cost as number)).rejects.toThrow(/cost must be an integer/);
  });

  it('rejects a key that is not a string', async () => {
    const limiter = new RateLimiter({ name: 'api', rate: '2/s' });
    await expect(limiter.consume(42 as unknown as string)).rejects.toThrow(TypeError);
  });

  it('is a Policy: execute runs fn while calls fit and throws RateLimitError after', async () => {
    const limiter = new RateLimiter({ name: 'api', rate: '2/h' });
    const signals: AbortSignal[] = [];
    const fn = (signal: AbortSignal): string => {
      signals.push(signal);
      return 'done';
    };
    const controller = new AbortController();
    await expect(limiter.execute(fn, controller.signal)).resolves.toBe('done');
    expect(signals[0]).toBe(controller.signal);
    await expect(limiter.execute(fn)).resolves.toBe('done');
    await expect(limiter.execute(fn)).rejects.toBeInstanceOf(RateLimitError);
    expect(signals).toHaveLength(2);
    controller.abort(new Error('gone'));
    await expect(limiter.execute(fn, controller.signal)).rejects.toThrow('gone');
  });
});

describe('RateLimiter backend protection', () => {
  let store: FakeStore;
  beforeEach(() => {
    jest.useFakeTimers({ now: 1_000_000 });
    store = new FakeStore();
  });

  const limiterWith = (options: Partial<RateLimiterOptions> = {}): RateLimiter =>
    new RateLimiter({ name: 'api', rate: '5/h', store, ...options });

  it('answers from the fallback store when the primary rejects, then stops calling it', async () => {
    const limiter = limiterWith();
    const failures: unknown[] = [];
    const entered: unknown[] = [];
    limiter.on('storeFailure', ({ error }) => failures.push(error));
    limiter.on('fallbackEntered', (e) => entered.push(e));
    store.mode = 'reject';
    for (let i = 1; i <= 5; i++) {
      await expect(limiter.consume('k')).resolves.toMatchObject({
        allowed: true,
        remaining: 5 - i,
      });
    }
    await expect(limiter.consume('k')).resolves.toMatchObject({ allowed: false });
    // Three failures open the circuit; after that the primary is not called at all.
    expect(store.calls).toBe(3);
    expect(failures).toHaveLength(3);
    expect(entered).toEqual([{ policy: 'fallback', error: failures[0] }]);
    expect(limiter.breaker?.state).toBe('open');
    expect(limiter.health()).toMatchObject({
      status: 'warn',
      store: 'fallback',
      breaker: 'open',
    });
  });

  it('answers from the fallback within storeTimeoutMs when the primary hangs', async () => {
    const fallbackStore = new MemoryRateLimitStore({ sweepIntervalMs: 0 });
    const limiter = limiterWith({ storeTimeoutMs: 100, fallbackStore });
    store.mode = 'hang';
    let decision: RateLimitDecision | undefined;
    void limiter.consume('k').then((d) => (decision = d));
    await jest.advanceTimersByTimeAsync(99);
    expect(decision).toBeUndefined();
    await jest.advanceTimersByTimeAsync(1);
    expect(decision).toMatchObject({ allowed: true, remaining: 4 });
    expect(jest.getTimerCount()).toBe(0);
  });

  it('clears the timeout timer when the store answers', async () => {
    const limiter = limiterWith();
    await limiter.consume('k');
    expect(jest.getTimerCount()).toBe(0);
  });

  it('a store that rejects after the timeout never causes an unhandled rejection', async () => {
    // Jest fails a test on any unhandled rejection; the handler check below makes it explicit.
    const limiter = limiterWith({ storeTimeoutMs: 100 });
    store.mode = 'late-reject';
    const decisions = [limiter.consume('a'), limiter.consume('b')];
    await jest.advanceTimersByTimeAsync(100);
    await expect(Promise.all(decisions)).resolves.toMatchObject([
      { allowed: true },
      { allowed: true },
    ]);
    await jest.advanceTimersByTimeAsync(1_000);
    expect(store.late).toEqual([{ handled: true }, { handled: true }]);
    jest.useRealTimers();
    await new Promise((resolve) => setTimeout(resolve, 10));
  });

  it('a store that throws synchronously or answers garbage counts as a failure', async () => {
    const limiter = limiterWith();
    store.mode = 'throw';
    await expect(limiter.consume('k')).resolves.toMatchObject({ allowed: true, remaining: 4 });
    store.mode = 'garbage';
    await expect(limiter.consume('k')).resolves.toMatchObject({ allowed: true, remaining: 3 });
    expect(limiter.health().status).toBe('warn');
  });

  it('returns to the primary once a probe succeeds', async () => {
    const limiter = limiterWith();
    const left: unknown[] = [];
    limiter.on('fallbackLeft', (e) => left.push(e));
    store.mode = 'reject';
    for (let i = 0; i < 4; i++) await limiter.consume('k');
    expect(store.calls).toBe(3);
    store.mode = 'ok';
    await jest.advanceTimersByTimeAsync(4_999);
    await limiter.consume('k');
    expect(store.calls).toBe(3);
    await jest.advanceTimersByTimeAsync(1);
    await expect(limiter.consume('k')).resolves.toMatchObject({ allowed: true, remaining: 4 });
    expect(store.calls).toBe(4);
    expect(limiter.breaker?.state).toBe('closed');
    expect(left).toEqual([{ policy: 'fallback' }]);
    expect(limiter.health()).toMatchObject({ status: 'pass', store: 'primary', breaker: 'closed' });
    await limiter.consume('k');
    expect(store.calls).toBe(5);
  });

  it("'allow' fails open with the full limit remaining", async () => {
    const limiter = limiterWith({ onStoreFailure: 'allow' });
    store.mode = 'reject';
    for (let i = 0; i < 10; i++) {
      await expect(limiter.consume('k')).resolves.toEqual({
        allowed: true,
        limit: 5,
        remaining: 5,
        resetMs: 0,
        retryAfterMs: 0,
      });
    }
    expect(limiter.fallbackStore).toBeUndefined();
    expect(limiter.health()).toMatchObject({ status: 'warn', onStoreFailure: 'allow' });
  });

  it("'deny' fails closed with retryAfterMs = the circuit's wait, at least 1 s", async () => {
    const limiter = limiterWith({ onStoreFailure: 'deny' });
    store.mode = 'reject';
    await expect(limiter.consume('k')).resolves.toEqual({
      allowed: false,
      limit: 5,
      remaining: 0,
      resetMs: 1_000,
      retryAfterMs: 1_000,
    });
    await limiter.consume('k');
    await limiter.consume('k');
    expect(limiter.breaker?.state).toBe('open');
    await expect(limiter.consume('k')).resolves.toMatchObject({
      allowed: false,
      retryAfterMs: 5_000,
    });
    await jest.advanceTimersByTimeAsync(4_500);
    await expect(limiter.consume('k')).resolves.toMatchObject({ retryAfterMs: 1_000 });
    expect(store.calls).toBe(3);
    const error = await limiter.check('k').catch((e: unknown) => e);
    expect(isRateLimitError(error)).toBe(true);
  });

  it('takes breaker options or a breaker instance', async () => {
    const limiter = limiterWith({ breaker: { failureThreshold: 1, openDurationMs: '1s' } });
    expect(limiter.breaker?.name).toBe('api.store');
    store.mode = 'reject';
    await limiter.consume('k');
    await limiter.consume('k');
    expect(store.calls).toBe(1);
    await jest.advanceTimersByTimeAsync(1_000);
    await limiter.consume('k');
    expect(store.calls).toBe(2);

    const breaker = new CircuitBreaker({ name: 'redis' });
    expect(limiterWith({ breaker }).breaker).toBe(breaker);
  });

  it('uses the given fallback store, and allows when that fails too', async () => {
    const fallbackStore = new FakeStore();
    const limiter = limiterWith({ fallbackStore });
    store.mode = 'reject';
    await limiter.consume('k');
    expect(fallbackStore.calls).toBe(1);
    fallbackStore.mode = 'reject';
    await expect(limiter.consume('k')).resolves.toMatchObject({ allowed: true, remaining: 5 });
  });

  it('reset clears the fallback and the primary, and rejects while the circuit is open', async () => {
    const limiter = limiterWith();
    await limiter.consume('k', 5);
    await limiter.reset('k');
    expect(store.resets).toBe(1);
    await expect(limiter.consume('k', 0)).resolves.toMatchObject({ remaining: 5 });
    store.mode = 'reject';
    for (let i = 0; i < 3; i++) await limiter.consume('k');
    const error = await limiter.reset('k').catch((e: unknown) => e);
    expect(isCircuitOpenError(error)).toBe(true);
    expect(store.resets).toBe(1);
  });

  it('gives a failover store a timeout covering all its members', () => {
    const failover = new FailoverRateLimitStore([new FakeStore(), new FakeStore()], {
      storeTimeoutMs: 50,
    });
    expect(limiterWith({ store: failover }).storeTimeoutMs).toBe(200);
    expect(limiterWith({ store: failover, storeTimeoutMs: 120 }).storeTimeoutMs).toBe(120);
  });
});

describe('RateLimiter decision event', () => {
  it('reports every decision of consume, check and execute while someone listens', async () => {
    const limiter = new RateLimiter({ name: 'api', rate: '2/h' });
    const seen: { key: string; cost: number; allowed: boolean }[] = [];
    const off = limiter.on('decision', ({ key, cost, decision }) =>
      seen.push({ key, cost, allowed: decision.allowed }),
    );
    await limiter.consume('a');
    await limiter.consume('a', 0);
    await limiter.check('a').catch(() => undefined);
    await limiter.check('a').catch(() => undefined);
    await limiter.execute(() => 'x').catch(() => undefined);
    expect(seen).toEqual([
      { key: 'a', cost: 1, allowed: true },
      { key: 'a', cost: 0, allowed: true },
      { key: 'a', cost: 1, allowed: true },
      { key: 'a', cost: 1, allowed: false },
      { key: '*', cost: 1, allowed: true },
    ]);
    off();
    await limiter.consume('b');
    expect(seen).toHaveLength(5);
  });

  it('returns the store promise itself while nobody listens', async () => {
    const store = new MemoryRateLimitStore({ sweepIntervalMs: 0 });
    const answer = store.consume('x', 1, {
      name: 'other',
      algorithm: 'fixed-window',
      limit: 1,
      windowMs: 1_000,
      burst: 1,
      blockDurationMs: 0,
    });
    const spy = jest.spyOn(store, 'consume').mockReturnValue(answer);
    const limiter = new RateLimiter({ name: 'api', rate: '2/h', store });
    expect(limiter.consume('k')).toBe(answer);
    const off = limiter.on('decision', () => {});
    expect(limiter.consume('k')).not.toBe(answer);
    off();
    expect(limiter.consume('k')).toBe(answer);
    expect(spy).toHaveBeenCalledTimes(3);
    await answer;
  });

  it('reports decisions answered from the fallback store too', async () => {
    jest.useFakeTimers({ now: 1_000_000 });
    const store = new FakeStore();
    store.mode = 'reject';
    const limiter = new RateLimiter({ name: 'api', rate: '1/h', store });
    const allowed: boolean[] = [];
    limiter.on('decision', ({ decision }) => allowed.push(decision.allowed));
    await limiter.consume('k');
    await limiter.consume('k');
    expect(allowed).toEqual([true, false]);
  });
});

describe('RateLimiter logger', () => {
  const capture = () => {
    const lines: [string, string][] = [];
    const logger = {
      info: (m: string) => lines.push(['info', m]),
      warn: (m: string) => lines.push(['warn', m]),
      error: (m: string) => lines.push(['error', m]),
    };
    return { lines, logger };
  };

  beforeEach(() => {
    jest.useFakeTimers({ now: 1_000_000 });
  });

  it('logs one line when the store fails and one when it recovers, nothing per decision', async () => {
    const store = new FakeStore();
    const { lines, logger } = capture();
    const limiter = new RateLimiter({ name: 'api', rate: '100/h', store, logger });
    await limiter.consume('k');
    expect(lines).toEqual([]);
    store.mode = 'reject';
    const refused = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:6379'), {
      code: 'ECONNREFUSED',
    });
    jest.spyOn(store, 'consume').mockImplementation(() => Promise.reject(refused));
    for (let i = 0; i < 6; i++) await limiter.consume('k');
    expect(lines).toEqual([
      [
        'warn',
        '[RATELIMIT] api store failing -> answering from fallback (connect ECONNREFUSED 127.0.0.1:6379)',
      ],
    ]);
    jest.restoreAllMocks();
    store.mode = 'ok';
    await jest.advanceTimersByTimeAsync(5_000);
    await limiter.consume('k');
    await limiter.consume('k');
    expect(lines).toEqual([
      [
        'warn',
        '[RATELIMIT] api store failing -> answering from fallback (connect ECONNREFUSED 127.0.0.1:6379)',
      ],
      ['info', '[RATELIMIT] api store recovered'],
    ]);
  });

  it.each([
    ['allow', 'allowing every request (ETIMEDOUT: Operation timed out after 100 ms)'],
    ['deny', 'refusing every request (ETIMEDOUT: Operation timed out after 100 ms)'],
  ] as const)("names what '%s' does and why", async (onStoreFailure, line) => {
    const store = new FakeStore();
    store.mode = 'hang';
    const { lines, logger } = capture();
    const limiter = new RateLimiter({
      name: 'quota',
      rate: '5/h',
      store,
      onStoreFailure,
      storeTimeoutMs: 100,
      logger,
    });
    const decision = limiter.consume('k');
    await jest.advanceTimersByTimeAsync(100);
    await decision;
    expect(lines).toEqual([['warn', `[RATELIMIT] quota store failing -> ${line}`]]);
  });

  it('names the open circuit when the store was never tried', async () => {
    const store = new FakeStore();
    const breaker = new CircuitBreaker({ name: 'redis' });
    breaker.open();
    const { lines, logger } = capture();
    const limiter = new RateLimiter({ name: 'api', rate: '5/h', store, breaker, logger });
    await limiter.consume('k');
    expect(store.calls).toBe(0);
    expect(lines).toEqual([
      [
        'warn',
        '[RATELIMIT] api store failing -> answering from fallback (ECIRCUITOPEN: Circuit "redis" is open)',
      ],
    ]);
  });

  it('falls back to the error name and message when the error has no code', async () => {
    const store = new FakeStore();
    store.mode = 'reject';
    const { lines, logger } = capture();
    const limiter = new RateLimiter({ name: 'api', rate: '5/h', store, logger });
    await limiter.consume('k');
    expect(lines).toEqual([
      ['warn', '[RATELIMIT] api store failing -> answering from fallback (Error: store down)'],
    ]);
  });

  it('a logger that throws never breaks a decision', async () => {
    const store = new FakeStore();
    store.mode = 'reject';
    const boom = (): never => {
      throw new Error('log sink down');
    };
    const limiter = new RateLimiter({
      name: 'api',
      rate: '5/h',
      store,
      logger: { info: boom, warn: boom, error: boom },
    });
    await expect(limiter.consume('k')).resolves.toMatchObject({ allowed: true });
  });

  it('rejects a logger without the logging methods', () => {
    const error = configError({ name: 'api', rate: '5/h', logger: { info: () => {} } });
    expect(error.path).toBe('logger');
  });

  it('stays silent without a logger', async () => {
    const store = new FakeStore();
    store.mode = 'reject';
    const warn = jest.spyOn(console, 'warn').mockImplementation(() => {});
    const info = jest.spyOn(console, 'info').mockImplementation(() => {});
    const limiter = new RateLimiter({ name: 'api', rate: '5/h', store });
    await limiter.consume('k');
    expect(warn).not.toHaveBeenCalled();
    expect(info).not.toHaveBeenCalled();
    warn.mockRestore();
    info.mockRestore();
  });
});

describe('RateLimiter and a store that is still connecting', () => {
  afterEach(() => {
    jest.useRealTimers();
  });

  it("awaits the store's ready() before its first store call, outside the store timeout", async () => {
    jest.useFakeTimers({ doNotFake: ['nextTick', 'setImmediate', 'queueMicrotask'] });
    let connected = false;
    let connect: () => void = () => {};
    const store = new FakeStore();
    const connecting: RateLimitStore = {
      ready: () => new Promise<void>((resolve) => (connect = resolve)),
      consume: (key, cost, rule) =>
        connected ? store.consume(key, cost, rule) : Promise.reject(new Error('not connected')),
      reset: (key, rule) => store.reset(key, rule),
    };
    const limiter = new RateLimiter({
      name: 'api',
      rate: '5/s',
      store: connecting,
      storeTimeoutMs: 50,
    });
    const first = [
      limiter.consume('a'),
      limiter.consume('a'),
      limiter.consume('a'),
      limiter.consume('a'),
    ];
    await jest.advanceTimersByTimeAsync(80);
    connected = true;
    connect();
    const decisions = await Promise.all(first);
    expect(decisions.map((d) => d.remaining)).toEqual([4, 3, 2, 1]);
    expect(limiter.breaker!.state).toBe('closed');
    expect(limiter.health().store).toBe('primary');
  });

  it('waits at most 5 s for a ready() that never settles, then decides as usual', async () => {
    jest.useFakeTimers({ doNotFake: ['nextTick', 'setImmediate', 'queueMicrotask'] });
    const store = new FakeStore();
    const hanging: RateLimitStore = {
      ready: () => new Promise<void>(() => {}),
      consume: (key, cost, rule) => store.consume(key, cost, rule),
      reset: (key, rule) => store.reset(key, rule),
    };
    const limiter = new RateLimiter({ name: 'api', rate: '5/s', store: hanging });
    let decided = false;
    const pending = limiter.consume('a').then((d) => {
      decided = true;
      return d;
    });
    await jest.advanceTimersByTimeAsync(4_999);
    expect(decided).toBe(false);
    await jest.advanceTimersByTimeAsync(1);
    expect((await pending).allowed).toBe(true);
    // Only once: later decisions do not wait.
    expect((await limiter.consume('a')).remaining).toBe(3);
  });
});
