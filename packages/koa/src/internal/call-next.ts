import type { Next } from 'koa';

/**
 * Calls `next()` and always returns a promise: Koa's own `next` never throws, but one a caller
 * passes in by hand may throw synchronously, and that must settle a permit like a rejection.
 */
export function callNext(next: Next): Promise<unknown> {
  try {
    return Promise.resolve(next());
  } catch (error) {
    return Promise.reject(error);
  }
}
