import { describe, expect, it } from '@jest/globals';
import { stackHeaders } from './stacked-headers';

describe('stackHeaders', () => {
  it('returns one limit as it is', () => {
    const one = { 'ratelimit-policy': '"a";q=1;w=1', ratelimit: '"a";r=0;t=1' };
    expect(stackHeaders([one])).toEqual(one);
  });

  it('lists every limit in order, keeps the legacy trio of the fewest left and the longest wait', () => {
    expect(
      stackHeaders([
        {
          'ratelimit-policy': '"short";q=3;w=1',
          ratelimit: '"short";r=2;t=1',
          'x-ratelimit-limit': '3',
          'x-ratelimit-remaining': '2',
          'x-ratelimit-reset': '101',
        },
        {
          'ratelimit-policy': '"long";q=100;w=60',
          ratelimit: '"long";r=0;t=40',
          'x-ratelimit-limit': '100',
          'x-ratelimit-remaining': '0',
          'x-ratelimit-reset': '140',
          'retry-after': '40',
        },
        { 'retry-after': '7' },
      ]),
    ).toEqual({
      'ratelimit-policy': '"short";q=3;w=1, "long";q=100;w=60',
      ratelimit: '"short";r=2;t=1, "long";r=0;t=40',
      'x-ratelimit-limit': '100',
      'x-ratelimit-remaining': '0',
      'x-ratelimit-reset': '140',
      'retry-after': '40',
    });
  });
});
