import { describe, expect, it } from '@jest/globals';
import { ConfigError, isConfigError } from '../errors';
import { parseRate, rateOption, type Rate } from './rate';

describe('parseRate', () => {
  it.each([
    ['100/h', 100, 3_600_000],
    ['10/s', 10, 1_000],
    ['5/15m', 5, 900_000],
    ['1000/1d', 1_000, 86_400_000],
    ['50/500ms', 50, 500],
    ['2/1.5s', 2, 1_500],
    [' 3 / m ', 3, 60_000],
    ['1/1ms', 1, 1],
  ])('parses %j', (text, limit, windowMs) => {
    expect(parseRate(text as Rate)).toEqual({ limit, windowMs });
  });

  it('accepts { limit, window } with a number or a duration string', () => {
    expect(parseRate({ limit: 7, window: '2m' })).toEqual({ limit: 7, windowMs: 120_000 });
    expect(parseRate({ limit: 7, window: 250 })).toEqual({ limit: 7, windowMs: 250 });
  });

  it.each([
    '',
    '100',
    '/s',
    '0/s',
    '-1/s',
    '1.5/s',
    '10/x',
    '10/0s',
    '10/0.5ms',
    '10/s/s',
    'ten/s',
    '10 per second',
  ])('rejects %j naming the option and the value', (text) => {
    let error: unknown;
    try {
      parseRate(text);
    } catch (caught) {
      error = caught;
    }
    expect(isConfigError(error)).toBe(true);
    expect((error as ConfigError).path).toBe('rate');
    expect((error as ConfigError).value).toBe(text);
    expect((error as ConfigError).message).toContain(JSON.stringify(text));
  });

  it.each([
    [10, 'rate'],
    [null, 'rate'],
    [['10/s'], 'rate'],
    [{ limit: 0, window: '1s' }, 'rate.limit'],
    [{ limit: 2.5, window: '1s' }, 'rate.limit'],
    [{ limit: 2, window: 'soon' }, 'rate.window'],
    [{ limit: 2, window: 0 }, 'rate.window'],
    [{ limit: 2, window: 0.5 }, 'rate.window'],
    [{ limit: 2 }, 'rate.window'],
    [{ limit: 2, window: '1s', burst: 3 }, 'rate.burst'],
  ])('rejects %j at path %s', (value, path) => {
    expect(() => parseRate(value as Rate)).toThrow(ConfigError);
    try {
      parseRate(value as Rate);
    } catch (error) {
      expect((error as ConfigError).path).toBe(path);
    }
  });

  it('names the owner and path it is given', () => {
    expect(() => rateOption('RateLimiter', 'rate', '5/q')).toThrow(
      /^RateLimiter: option "rate" must be a rate like '100\/h'.*got "5\/q"$/,
    );
  });

  it('refuses a hostile string of 100 kB without scanning it (the pattern used to backtrack)', () => {
    expect(parseRate(' 100 / 15 m ')).toEqual({ limit: 100, windowMs: 900_000 });
    for (const hostile of [
      `1/${' '.repeat(100_000)}x`,
      `1/${' '.repeat(100_000)}s`,
      '9'.repeat(100_000),
    ]) {
      expect(() => parseRate(hostile as Rate)).toThrow(ConfigError);
    }
    expect(() => parseRate(`1/${' '.repeat(70)}s` as Rate)).toThrow(ConfigError);
  });
});
