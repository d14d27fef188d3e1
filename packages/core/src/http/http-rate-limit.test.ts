import { describe, expect, it, jest } from '@jest/globals';
import { isConfigError } from '../errors';
import { RateLimiter } from '../rate-limit/rate-limiter';
import { HttpRateLimit } from './http-rate-limit';

const clock = { now: () => 1_000_000 };

describe('HttpRateLimit', () => {
  it('counts per client address and refuses past the limit with headers and a 429', async () => {
    const http = new HttpRateLimit({ name: 'api', limit: 2, window: '1m', clock });
    const first = await http.decide({}, '10.0.0.1');
    expect(first?.headers).toMatchObject({
      'ratelimit-policy': '"api";q=2;w=60',
      ratelimit: '"api";r=1;t=20',
    });
    await http.decide({}, '10.0.0.1');
    const third = await http.decide({}, '10.0.0.1');
    expect(third?.refusal?.status).toBe(429);
    expect(third?.headers['retry-after']).toBe('20');
    expect((await http.decide({}, '10.0.0.2'))?.refusal).toBeUndefined();
  });

  it('uses key, skip and cost hooks', async () => {
    type Req = { user: string; admin?: boolean; bytes: number };
    const http = new HttpRateLimit<Req>({
      name: 'upload',
      limit: 10,
      window: '1m',
      clock,
      key: (req) => req.user,
      skip: (req) => req.admin === true,
      cost: async (req) => Promise.resolve(req.bytes),
    });
    expect(await http.decide({ user: 'a', admin: true, bytes: 100 }, '1')).toBeUndefined();
    expect((await http.decide({ user: 'a', bytes: 6 }, '1'))?.refusal).toBeUndefined();
    expect((await http.decide({ user: 'a', bytes: 6 }, '2'))?.refusal?.status).toBe(429);
    expect((await http.decide({ user: 'b', bytes: 6 }, '1'))?.refusal).toBeUndefined();
  });

  it('lets a request through, warning once, when a hook throws or returns nonsense', async () => {
    const warn = jest.spyOn(process, 'emitWarning').mockImplementation(() => undefined);
    try {
      const http = new HttpRateLimit<{ bad: string }>({
        name: 'api',
        limit: 1,
        window: '1m',
        clock,
        key: (req) => {
          if (req.bad === 'throw') throw new Error('no user');
          return 42 as unknown as string;
        },
      });
      expect(await http.decide({ bad: 'throw' }, '1')).toBeUndefined();
      expect(await http.decide({ bad: 'number' }, '1')).toBeUndefined();
      expect(warn).toHaveBeenCalledTimes(1);
    } finally {
      warn.mockRestore();
    }
  });

  it('takes requestPropertyName: a property name, false for none, rateLimit by default', () => {
    const base = { limit: 5, window: '1m' };
    expect(new HttpRateLimit(base).requestProperty).toBe('rateLimit');
    expect(new HttpRateLimit({ ...base, requestPropertyName: 'quota_$1' }).requestProperty).toBe(
      'quota_$1',
    );
    expect(new HttpRateLimit({ ...base, requestPropertyName: false }).requestProperty).toBe(
      undefined,
    );
    for (const value of ['', '1st', 'a-b', '__proto__', 'constructor', 'x'.repeat(65), true, 7]) {
      let caught: unknown;
      try {
        new HttpRateLimit({ ...base, requestPropertyName: value as never });
      } catch (error) {
        caught = error;
      }
      expect(isConfigError(caught) && [caught.path, caught.value]).toEqual([
        'requestPropertyName',
        value,
      ]);
    }
  });

  it('accepts a limiter as is, and refuses limiter options beside one', () => {
    const limiter = new RateLimiter({ name: 'shared', limit: 5, window: '1s' });
    expect(new HttpRateLimit(limiter).limiter).toBe(limiter);
    expect(new HttpRateLimit({ limiter, headers: { legacy: true } }).limiter).toBe(limiter);
    for (const [options, path] of [
      [{ limiter, limit: 5 }, 'limit'],
      [{ limiter: {} }, 'limiter'],
      [{ limit: 5, window: '1m', key: 'ip' }, 'key'],
      [{ limit: 5, window: '1m', headers: { draft: true } }, 'headers.draft'],
      [{ limit: 5, window: '1m', headers: { legacy: 'yes' } }, 'headers.legacy'],
    ] as const) {
      let caught: unknown;
      try {
        new HttpRateLimit(options as never);
      } catch (error) {
        caught = error;
      }
      expect(isConfigError(caught) && caught.path).toBe(path);
    }
  });
});

describe('HttpRateLimit request-dependent limits and refusals', () => {
  it('counts one key across limits, and lets requests through past 100 distinct limits', async () => {
    const lines: string[] = [];
    const logger = {
      info: () => undefined,
      warn: () => undefined,
      error: (l: string) => lines.push(l),
    };
    const http = new HttpRateLimit<{ limit: number }>({
      name: 'plans',
      window: '1h',
      clock,
      logger,
      limit: (req) => req.limit,
    });
    expect((await http.decideNow({ limit: 2 }, '1'))?.remaining).toBe(1);
    // The same key under a larger limit sees the count so far.
    expect((await http.decideNow({ limit: 5 }, '1'))?.remaining).toBe(3);
    for (let limit = 6; limit <= 103; limit++) await http.decideNow({ limit }, '2');
    expect(await http.decideNow({ limit: 104 }, '2')).toBeUndefined();
    expect(lines.some((l) => l.includes('limit failed (RangeError: more than 100'))).toBe(true);
  });

  it('answers a refusal with another status as problem+json naming the limiter', async () => {
    const http = new HttpRateLimit({ name: 'api', limit: 1, window: '1m', clock, statusCode: 503 });
    await http.decideNow({}, '1');
    const info = await http.decideNow({}, '1');
    const answer = await http.refusal({}, info!);
    expect(answer.status).toBe(503);
    expect(JSON.parse(answer.body)).toMatchObject({ status: 503, limiter: 'api' });
    expect(answer.headers['retry-after']).toBeDefined();
  });

  it('decides synchronously with no hooks and a memory store', () => {
    const http = new HttpRateLimit({ name: 'api', limit: 5, window: '1m', clock });
    const info = http.decideNow({}, '::ffff:10.0.0.1');
    expect(info).not.toBeInstanceOf(Promise);
    expect((info as { key: string }).key).toBe('10.0.0.1');
  });
});

describe('HttpRateLimit with a limiter given', () => {
  it('takes a logger for its own lines, and still refuses other limiter options', async () => {
    const lines: string[] = [];
    const logger = {
      info: () => undefined,
      warn: () => undefined,
      error: (l: string) => lines.push(l),
    };
    const limiter = new RateLimiter({ name: 'given', limit: 5, window: '1m', clock });
    const http = new HttpRateLimit<object>({
      limiter,
      logger,
      key: () => {
        throw new Error('no key');
      },
    });
    expect(await http.decideNow({}, '1')).toBeUndefined();
    expect(lines).toEqual([
      '[RATELIMIT] given key failed (Error: no key); the request was let through',
    ]);
    expect(() => new HttpRateLimit({ limiter, window: '1m' })).toThrow(
      expect.objectContaining({ path: 'window' }),
    );
    expect(() => new HttpRateLimit({ limiter, logger: {} as never })).toThrow(
      expect.objectContaining({ path: 'logger' }),
    );
  });
});
