import { afterEach, describe, expect, it, jest } from '@jest/globals';
import { HookErrors } from './hook-errors';

afterEach(() => {
  jest.restoreAllMocks();
  jest.useRealTimers();
});

describe('HookErrors', () => {
  it('logs one line a second per hook, counting the ones in between, without a stack', () => {
    jest.useFakeTimers({ now: 1_000_000 });
    const lines: string[] = [];
    const logger = {
      info: () => undefined,
      warn: () => undefined,
      error: (l: string) => lines.push(l),
    };
    const errors = new HookErrors('RATELIMIT', 'api', logger);
    errors.report('key', new TypeError('bad key'), 'the request was let through');
    errors.report('key', new TypeError('bad key'), 'the request was let through');
    errors.report('skip', 'plain string', 'the request was let through');
    jest.advanceTimersByTime(1_000);
    errors.report('key', new TypeError('bad key'), 'the request was let through');
    expect(lines).toEqual([
      '[RATELIMIT] api key failed (TypeError: bad key); the request was let through',
      '[RATELIMIT] api skip failed (plain string); the request was let through',
      '[RATELIMIT] api key failed (TypeError: bad key); the request was let through (1 more since the last line)',
    ]);
  });

  it('without a logger, warns once through process.emitWarning', () => {
    const warning = jest.spyOn(process, 'emitWarning').mockImplementation(() => undefined);
    const errors = new HookErrors('CIRCUIT', 'GET /x', undefined);
    errors.report('isFailureStatus', new Error('boom'), 'counted by status');
    errors.report('fallback', new Error('boom'), 'the 503 answer was sent');
    expect(warning).toHaveBeenCalledTimes(1);
    expect(String(warning.mock.calls[0]?.[0])).toContain(
      'GET /x isFailureStatus failed (Error: boom)',
    );
  });

  it('survives a logger that throws', () => {
    const logger = {
      info: () => undefined,
      warn: () => undefined,
      error: () => {
        throw new Error('logger down');
      },
    };
    expect(() => new HookErrors('X', 'y', logger).report('key', 1, 'through')).not.toThrow();
  });
});
