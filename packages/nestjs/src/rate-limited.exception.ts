import type { HttpResponse } from '@breakwater/core';
import { BreakwaterHttpException } from './breakwater-http.exception';

/**
 * Thrown by `RateLimitGuard` when a request is refused: a 429 `HttpException` carrying the answer
 * core decided (`application/problem+json`, `Retry-After`). `BreakwaterExceptionFilter` writes
 * that answer as it is; without the filter, Nest's own handler still answers 429 with the same
 * body, as the guard has already set the headers.
 */
export class RateLimitedException extends BreakwaterHttpException {
  constructor(httpResponse: HttpResponse) {
    super(httpResponse);
  }
}
