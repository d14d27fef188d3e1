import { describe, expect, it } from '@jest/globals';
import { parseRetryAfter } from './retry-after';

describe('parseRetryAfter', () => {
  const now = Date.UTC(2030, 0, 1);
  it('reads delay-seconds and HTTP dates', () => {
    expect(parseRetryAfter('120', now)).toBe(120_000);
    expect(parseRetryAfter(' 0 ', now)).toBe(0);
    expect(parseRetryAfter(new Date(now + 5_000).toUTCString(), now)).toBe(5_000);
    expect(parseRetryAfter(new Date(now - 5_000).toUTCString(), now)).toBe(0);
  });

  it('returns undefined for a missing or malformed value', () => {
    expect(parseRetryAfter(null, now)).toBeUndefined();
    expect(parseRetryAfter('-5', now)).toBeUndefined();
    expect(parseRetryAfter('1.5', now)).toBeUndefined();
    expect(parseRetryAfter('later', now)).toBeUndefined();
    expect(parseRetryAfter('2030-01-01', now)).toBeUndefined();
    expect(parseRetryAfter('Tuesday, 01-Jan-30 00:00:10 GMT', now)).toBe(10_000);
    expect(parseRetryAfter('Tue Jan  1 00:00:10 2030', now)).toBe(10_000);
  });

  it('ignores absurd values instead of parsing them to Infinity', () => {
    expect(parseRetryAfter('9'.repeat(400), now)).toBeUndefined();
    expect(parseRetryAfter('9'.repeat(13), now)).toBeUndefined();
    expect(parseRetryAfter('9'.repeat(12), now)).toBe(999_999_999_999_000);
    expect(parseRetryAfter(undefined, now)).toBeUndefined();
  });

  it('reads no value longer than 64 characters, whatever it holds', () => {
    expect(parseRetryAfter(`${' '.repeat(62)}12`, now)).toBe(12_000);
    expect(parseRetryAfter(`${' '.repeat(63)}12`, now)).toBeUndefined();
    for (const hostile of ['Mon, ' + ' '.repeat(100_000) + 'x', '1'.repeat(100_000)]) {
      expect(parseRetryAfter(hostile, now)).toBeUndefined();
    }
  });
});
