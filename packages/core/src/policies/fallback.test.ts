import { describe, expect, it, jest } from '@jest/globals';
import { isConfigError } from '../errors';
import { fallback } from './fallback';
import { neverAbortedSignal } from '../internal/never-aborted';

describe('fallback', () => {
  it('returns the call result when it succeeds', async () => {
    const handler = jest.fn(() => 'fallback');
    await expect(fallback(handler).execute(async () => 'live')).resolves.toBe('live');
    expect(handler).not.toHaveBeenCalled();
  });

  it('returns a value on failure', async () => {
    const policy = fallback('cached');
    await expect(policy.execute(() => Promise.reject(new Error('x')))).resolves.toBe('cached');
    await expect(
      policy.execute(() => {
        throw new Error('sync');
      }),
    ).resolves.toBe('cached');
  });

  it('calls a function with the error, awaiting its promise', async () => {
    const error = new Error('down');
    const handler = jest.fn(async (e: unknown) => `fallback for ${(e as Error).message}`);
    await expect(fallback(handler).execute(() => Promise.reject(error))).resolves.toBe(
      'fallback for down',
    );
    expect(handler).toHaveBeenCalledWith(error);
  });

  it('rethrows errors that shouldHandle refuses', async () => {
    const error = new TypeError('bug');
    const policy = fallback(null, { shouldHandle: (e) => !(e instanceof TypeError) });
    await expect(policy.execute(() => Promise.reject(error))).rejects.toBe(error);
    await expect(policy.execute(() => Promise.reject(new Error('x')))).resolves.toBeNull();
  });

  it('rethrows when the caller aborted', async () => {
    const controller = new AbortController();
    const error = new Error('aborted');
    const policy = fallback('value');
    const result = policy.execute(() => {
      controller.abort();
      return Promise.reject(error);
    }, controller.signal);
    await expect(result).rejects.toBe(error);
  });

  it('rejects with the fallback function error when it fails too', async () => {
    const second = new Error('fallback failed');
    const policy = fallback(() => Promise.reject(second));
    await expect(policy.execute(() => Promise.reject(new Error('first')))).rejects.toBe(second);
  });

  it('passes the caller signal, or the shared never-aborted signal', async () => {
    const controller = new AbortController();
    const seen: AbortSignal[] = [];
    const policy = fallback(0);
    await policy.execute(async (s) => seen.push(s), controller.signal);
    await policy.execute(async (s) => seen.push(s));
    expect(seen).toEqual([controller.signal, neverAbortedSignal]);
  });

  it('rejects bad options', () => {
    const path = (fn: () => unknown): string | undefined => {
      try {
        fn();
      } catch (error) {
        return isConfigError(error) ? error.path : undefined;
      }
      return undefined;
    };
    expect(path(() => fallback(1, { shouldHandle: true as never }))).toBe('shouldHandle');
    expect(path(() => fallback(1, { shouldhandle: () => true } as never))).toBe('shouldhandle');
    expect(path(() => fallback(1, 'x' as never))).toBe('options');
  });
});
