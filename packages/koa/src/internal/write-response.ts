import type { Context } from 'koa';
import type { HttpResponse } from '@breakwater/core';

/** Writes a response core decided: status, headers (over those already set) and body. */
export function writeResponse(ctx: Context, response: HttpResponse): void {
  ctx.status = response.status;
  ctx.set(response.headers);
  // The content type is set above, so Koa keeps it; '' gives an empty body with length 0.
  ctx.body = response.body;
}
