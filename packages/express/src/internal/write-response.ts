import type { ServerResponse } from 'node:http';
import type { HttpResponse } from '@breakwater/core';

/** Writes a response core decided: status, headers (merged over headers already set) and body. */
export function writeResponse(res: ServerResponse, response: HttpResponse): void {
  if (res.headersSent) {
    // Someone answered first; all that is left is to end what they started.
    if (!res.writableEnded) res.end();
    return;
  }
  res.writeHead(response.status, response.headers);
  res.end(response.body);
}

/** Whether `value` is a thenable. */
export function isPromiseLike<T>(value: unknown): value is PromiseLike<T> {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as { then?: unknown }).then === 'function'
  );
}
