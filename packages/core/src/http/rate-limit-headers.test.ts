import { describe, expect, it } from '@jest/globals';
import { RateLimitHeaderWriter, rateLimitHeaders, recordTarget } from './rate-limit-headers';

const decision = (remaining: number, allowed = true) => ({
  allowed,
  limit: 10,
  remaining,
  resetMs: 12_300,
  retryAfterMs: allowed ? 0 : 12_300,
});

describe('rate-limit headers', () => {
  it('writes draft-11 by default, and Retry-After on a refusal', () => {
    expect(rateLimitHeaders('api', 60_000, decision(4))).toEqual({
      'ratelimit-policy': '"api";q=10;w=60',
      ratelimit: '"api";r=4;t=13',
    });
    expect(rateLimitHeaders('api', 60_000, decision(0, false))['retry-after']).toBe('13');
  });

  it('lists every stacked limiter in draft-11 and draft-8', () => {
    const headers: Record<string, string> = {};
    const target = recordTarget(headers);
    new RateLimitHeaderWriter('a', 60_000, 10, {}).write(target, decision(4));
    new RateLimitHeaderWriter('b', 3_600_000, 10, { standard: 'draft-8' }).write(
      target,
      decision(9),
    );
    expect(headers).toEqual({
      'ratelimit-policy': '"a";q=10;w=60, "b";q=10;w=3600',
      ratelimit: '"a";r=4;t=13, "b";r=9;t=13',
    });
  });

  it('keeps the limiter with the least remaining in draft-7, draft-6 and legacy fields', () => {
    for (const standard of ['draft-7', 'draft-6'] as const) {
      const headers: Record<string, string> = {};
      const target = recordTarget(headers);
      const options = { standard, legacy: true };
      new RateLimitHeaderWriter('a', 60_000, 10, options).write(target, decision(4), 0);
      new RateLimitHeaderWriter('b', 60_000, 10, options).write(target, decision(7), 0);
      new RateLimitHeaderWriter('c', 60_000, 10, options).write(target, decision(2), 0);
      expect(headers['ratelimit-policy']).toBe('10;w=60, 10;w=60, 10;w=60');
      expect(headers['x-ratelimit-remaining']).toBe('2');
      expect(headers['x-ratelimit-reset']).toBe('13');
      if (standard === 'draft-7') {
        expect(headers.ratelimit).toBe('limit=10, remaining=2, reset=13');
      } else {
        expect(headers['ratelimit-remaining']).toBe('2');
        expect(headers.ratelimit).toBeUndefined();
      }
    }
  });

  it('sends nothing standard with standard: false', () => {
    expect(rateLimitHeaders('api', 60_000, decision(4), { standard: false })).toEqual({});
  });
});
