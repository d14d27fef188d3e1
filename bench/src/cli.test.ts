import { describe, expect, it } from '@jest/globals';
import { parseArgs } from './cli';

describe('parseArgs', () => {
  it('defaults to a full run printing a table', () => {
    expect(parseArgs([])).toEqual({
      json: false,
      quick: false,
      filter: undefined,
      sequential: false,
      oneProcess: false,
      worker: undefined,
      help: false,
    });
  });

  it('reads --one-process', () => {
    expect(parseArgs(['--one-process']).oneProcess).toBe(true);
  });

  it('reads --json, --quick and both spellings of --filter', () => {
    expect(parseArgs(['--json', '--quick', '--filter', 'open'])).toMatchObject({
      json: true,
      quick: true,
      filter: 'open',
    });
    expect(parseArgs(['--filter=memory']).filter).toBe('memory');
    expect(parseArgs(['--sequential']).sequential).toBe(true);
  });

  it('skips the -- separator a package manager may pass along', () => {
    expect(parseArgs(['--', '--quick']).quick).toBe(true);
  });

  it('refuses an unknown option and a --filter without value', () => {
    expect(() => parseArgs(['--fast'])).toThrow('unknown option "--fast"');
    expect(() => parseArgs(['--filter'])).toThrow('--filter needs a value');
    expect(() => parseArgs(['--filter='])).toThrow('--filter needs a value');
  });
});
