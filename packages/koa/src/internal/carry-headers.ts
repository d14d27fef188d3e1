import type { Context } from 'koa';

/** Every header a rate limiter may set (whatever draft it sends). */
const NAMES = [
  'ratelimit-policy',
  'ratelimit',
  'ratelimit-limit',
  'ratelimit-remaining',
  'ratelimit-reset',
  'x-ratelimit-limit',
  'x-ratelimit-remaining',
  'x-ratelimit-reset',
] as const;

/**
 * Koa answers a thrown error after removing every header, then sets the error's own `headers`:
 * copies the rate-limit headers on the response onto the error so they survive. Never throws.
 */
function carryHeaders(error: unknown, ctx: Context | undefined): void {
  if (typeof error !== 'object' || error === null || ctx?.res === undefined) return;
  try {
    let carried: Record<string, unknown> | undefined;
    for (const name of NAMES) {
      const value = ctx.res.getHeader(name);
      if (value === undefined) continue;
      if (carried === undefined) {
        const own = (error as { headers?: unknown }).headers;
        carried = typeof own === 'object' && own !== null ? { ...own } : {};
      }
      if (!(name in carried)) carried[name] = value;
    }
    if (carried !== undefined) (error as { headers?: unknown }).headers = carried;
  } catch {
    // A frozen error keeps its own headers.
  }
}

const watched = new WeakSet<object>();
let lastApp: object | undefined;

/**
 * Makes sure the rate-limit headers of a request survive an error Koa answers: Koa emits the
 * app's `'error'` event before it removes the headers, so one listener per app, added once,
 * carries them over (no wrapping of `next()` per request).
 */
export function keepHeadersOnError(app: Context['app']): void {
  if (app === lastApp) return;
  lastApp = app;
  if (watched.has(app) || typeof app.on !== 'function') return;
  watched.add(app);
  app.on('error', carryHeaders);
}
