import type { Context } from 'koa';

/**
 * Koa answers a thrown error after removing every header, then sets the error's own `headers`:
 * copies the headers named (as they are now on the response) onto the error so they survive.
 * Returns the error.
 */
export function carryHeaders(ctx: Context, error: unknown, names: readonly string[]): unknown {
  if (typeof error !== 'object' || error === null || names.length === 0) return error;
  const carried: Record<string, unknown> = {};
  const own = (error as { headers?: unknown }).headers;
  if (typeof own === 'object' && own !== null) Object.assign(carried, own);
  for (const name of names) {
    const value = ctx.res.getHeader(name);
    if (value !== undefined && !(name in carried)) carried[name] = value;
  }
  try {
    (error as { headers?: unknown }).headers = carried;
  } catch {
    // A frozen error keeps its own headers.
  }
  return error;
}
