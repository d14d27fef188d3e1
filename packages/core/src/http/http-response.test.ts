import { describe, expect, it } from '@jest/globals';
import { BulkheadFullError, CircuitOpenError, RateLimitError, TimeoutError } from '../errors';
import {
  circuitOpenResponse,
  errorResponse,
  rateLimitedResponse,
  retryAfterSeconds,
} from './http-response';
import { quotePolicyName, rateLimitHeaders } from './rate-limit-headers';

describe('HTTP responses', () => {
  it('rounds Retry-After up to whole seconds, at least 1', () => {
    expect([0, 1, 999, 1000, 1001, 59_001, NaN, -5].map(retryAfterSeconds)).toEqual([
      1, 1, 1, 1, 2, 60, 1, 1,
    ]);
  });

  it('answers an open circuit with 503, Retry-After and a problem naming the breaker', () => {
    const response = circuitOpenResponse('GET /users/:id', 12_345);
    expect(response.status).toBe(503);
    expect(response.headers).toEqual({
      'content-type': 'application/problem+json',
      'cache-control': 'no-store',
      'retry-after': '13',
    });
    expect(JSON.parse(response.body)).toEqual({
      type: 'about:blank',
      title: 'Service Unavailable',
      status: 503,
      detail: 'Circuit breaker "GET /users/:id" is open',
      breaker: 'GET /users/:id',
      retryAfter: 13,
    });
  });

  it('answers a refused decision with 429', () => {
    const response = rateLimitedResponse('api', {
      allowed: false,
      limit: 10,
      remaining: 0,
      resetMs: 30_000,
      retryAfterMs: 2_500,
    });
    expect(response.status).toBe(429);
    expect(response.headers['retry-after']).toBe('3');
    expect(JSON.parse(response.body)).toMatchObject({ status: 429, limiter: 'api', retryAfter: 3 });
  });

  it('maps Breakwater errors to statuses and leaves others alone, exposing no message', () => {
    expect(errorResponse(CircuitOpenError.create('db', 500))?.status).toBe(503);
    expect(errorResponse(new RateLimitError(4000, 10, 0))).toMatchObject({
      status: 429,
      headers: { 'retry-after': '4' },
    });
    const timeout = errorResponse(
      new TimeoutError(100, { cause: new Error('secret upstream detail') }),
    );
    expect(timeout?.status).toBe(504);
    expect(timeout?.body).not.toContain('secret');
    expect(errorResponse(new BulkheadFullError(1, 0))?.status).toBe(503);
    expect(errorResponse(new Error('x'))).toBeUndefined();
    expect(errorResponse('x')).toBeUndefined();
  });
});

describe('rate-limit headers', () => {
  const decision = { allowed: true, limit: 100, remaining: 42, resetMs: 16_001, retryAfterMs: 0 };

  it('writes the draft-11 fields exactly', () => {
    expect(rateLimitHeaders('api', 60_000, decision)).toEqual({
      'ratelimit-policy': '"api";q=100;w=60',
      ratelimit: '"api";r=42;t=17',
    });
  });

  it('adds the legacy trio on request and Retry-After when refused', () => {
    const headers = rateLimitHeaders(
      'api',
      60_000,
      { ...decision, allowed: false, remaining: 0, retryAfterMs: 1500 },
      { legacy: true, standard: false },
      1_000_000,
    );
    expect(headers).toEqual({
      'x-ratelimit-limit': '100',
      'x-ratelimit-remaining': '0',
      'x-ratelimit-reset': String(Math.ceil((1_000_000 + 16_001) / 1000)),
      'retry-after': '2',
    });
  });

  it('quotes policy names as structured-field strings', () => {
    expect(quotePolicyName('a"b\\c')).toBe('"a\\"b\\\\c"');
    expect(quotePolicyName('naïve\nname')).toBe('"na_ve_name"');
    expect(quotePolicyName('x'.repeat(200))).toHaveLength(66);
  });
});
