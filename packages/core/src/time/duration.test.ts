import { describe, expect, it } from '@jest/globals';
import { durationOption, parseDuration } from './duration';
import { isConfigError } from '../errors';

describe('parseDuration', () => {
  it.each([
    [250, 250],
    [0, 0],
    ['250ms', 250],
    ['30s', 30_000],
    ['1.5s', 1500],
    ['5m', 300_000],
    ['1h', 3_600_000],
    ['1d', 86_400_000],
    [' 2 s ', 2000],
  ])('parses %j as %d ms', (input, ms) => {
    expect(parseDuration(input)).toBe(ms);
  });

  it.each([-1, NaN, Infinity, '', '10', '10 minutes', '-5s', 's', null, undefined, {}, '1e3s'])(
    'rejects %j',
    (input) => {
      expect(parseDuration(input)).toBeUndefined();
    },
  );

  it('durationOption throws a ConfigError naming the option and the value', () => {
    let caught: unknown;
    try {
      durationOption('Thing', 'window', '10 minutes');
    } catch (error) {
      caught = error;
    }
    expect(isConfigError(caught)).toBe(true);
    expect((caught as Error).message).toBe(
      `Thing: option "window" must be a duration (milliseconds, or a string like '30s'), got "10 minutes"`,
    );
    expect(() => durationOption('Thing', 'timeoutMs', 0, { allowZero: false })).toThrow(
      /timeoutMs/,
    );
  });

  it('refuses a timer delay longer than a Node.js timer can hold (it would fire after 1 ms)', () => {
    expect(durationOption('T', 'timeoutMs', 2_147_483_647, { timer: true })).toBe(2_147_483_647);
    expect(() => durationOption('T', 'timeoutMs', 2_147_483_648, { timer: true })).toThrow(
      /"timeoutMs" must be at most 2147483647 ms/,
    );
    expect(() => durationOption('T', 'timeoutMs', '25d', { timer: true })).toThrow(/timeoutMs/);
    expect(durationOption('T', 'openDurationMs', '25d')).toBe(25 * 86_400_000);
  });

  it('refuses a string over 64 characters, however it continues', () => {
    expect(parseDuration(' 30 s ')).toBe(30_000);
    expect(parseDuration(`${' '.repeat(60)}30s`)).toBe(30_000);
    expect(parseDuration(`30${' '.repeat(70)}s`)).toBeUndefined();
    expect(parseDuration(`${'1'.repeat(100_000)}x`)).toBeUndefined();
    expect(parseDuration(`1${' '.repeat(100_000)}s`)).toBeUndefined();
  });
});
