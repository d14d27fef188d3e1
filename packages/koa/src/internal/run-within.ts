import type { Context, Next } from 'koa';
import type { HttpResponse } from '@breakwater/core';
import { callNext } from './call-next';

const TIMED_OUT = Symbol('timed out');

/**
 * Runs the rest of the chain with a time limit: the handler finds an `AbortSignal` on
 * `ctx.state.signal`. When the limit passes first, `onTimeout()` gives the answer, which is
 * written at once with the response taken from Koa (what the handler sets later is not sent),
 * and then the signal aborts with `reason()`. Resolves `true` when the limit passed, `false`
 * when the chain finished; rejects with what the chain threw.
 */
export async function runWithin(
  ctx: Context,
  next: Next,
  timeoutMs: number,
  onTimeout: () => HttpResponse,
  reason: () => unknown,
): Promise<boolean> {
  const controller = new AbortController();
  (ctx.state as { signal?: AbortSignal }).signal = controller.signal;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const running = callNext(next);
  const limit = new Promise<typeof TIMED_OUT>((resolve) => {
    timer = setTimeout(resolve, timeoutMs, TIMED_OUT);
  });
  try {
    if ((await Promise.race([running, limit])) !== TIMED_OUT) return false;
  } finally {
    clearTimeout(timer);
  }
  running.then(undefined, () => undefined); // the handler's late outcome no longer matters
  const answer = onTimeout();
  if (!ctx.headerSent) ctx.res.writeHead(answer.status, answer.headers).end(answer.body);
  ctx.respond = false;
  controller.abort(reason());
  return true;
}
