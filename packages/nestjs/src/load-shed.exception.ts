import { HttpException } from '@nestjs/common';
import type { HttpResponse } from '@breakwater/core';

/**
 * Thrown by `LoadShedGuard` when a request is shed: a 503 `HttpException` carrying the answer
 * core decided (`application/problem+json`, `Retry-After`). The guard has already set the
 * headers, so Nest's own exception handler answers with the same status, headers and body.
 */
export class LoadShedException extends HttpException {
  /** The complete 503 answer. */
  readonly httpResponse: HttpResponse;

  constructor(httpResponse: HttpResponse) {
    super(JSON.parse(httpResponse.body) as Record<string, unknown>, httpResponse.status);
    this.httpResponse = httpResponse;
  }
}
