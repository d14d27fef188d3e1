import { describe, expect, it } from '@jest/globals';
import { isRedisReplyError } from '../redis-reply-error';
import { parseReply } from './breaker-link';

describe('parseReply', () => {
  const good = [1, 1_700_000_000_001, 1, 500, 20, 2, -1, 'probe failed (cluster)', 0];

  it('reads a well-formed reply', () => {
    expect(parseReply(good)).toEqual({
      applied: true,
      recheckMs: 0,
      state: {
        generation: 1_700_000_000_001,
        state: 'open',
        retryAfterMs: 500,
        openedAgoMs: 20,
        closedAgoMs: null,
        backoffLevel: 2,
        reason: 'probe failed (cluster)',
      },
    });
  });

  const replace = (index: number, value: unknown): unknown[] =>
    good.map((item, i) => (i === index ? value : item));

  it.each([
    ['a status reply', 'OK'],
    ['an integer', 1],
    ['nothing', null],
    ['a short array', good.slice(0, 8)],
    ['a long array', [...good, 0]],
    ['applied 2', replace(0, 2)],
    ['a negative generation', replace(1, -1)],
    ['a generation as a string', replace(1, '17')],
    ['an unknown state code', replace(2, 9)],
    ['a fractional state code', replace(2, 1.5)],
    ['a negative retry time', replace(3, -5)],
    ['an opened time below -1', replace(4, -2)],
    ['a huge backoff level', replace(5, 10_000)],
    ['a closed time that is not a number', replace(6, 'x')],
    ['a reason that is not a string', replace(7, 3)],
    ['an endless reason', replace(7, 'x'.repeat(5_000))],
    ['a negative recheck', replace(8, -1)],
  ])('rejects %s as a store failure', (_what, reply) => {
    let thrown: unknown;
    try {
      parseReply(reply);
    } catch (error) {
      thrown = error;
    }
    expect(isRedisReplyError(thrown)).toBe(true);
  });
});
