import { HttpException } from '@nestjs/common';
import type { HttpResponse } from '@breakwater/core';

/**
 * An `HttpException` carrying the complete answer core decided for a Breakwater error
 * (`application/problem+json` body, status, `Retry-After`). `BreakwaterExceptionFilter` writes
 * that answer as it is; any other filter sees an ordinary `HttpException` with the right status
 * (`getStatus()`) and body (`getResponse()`), so a catch-all filter answers 503/429/504 instead
 * of 500. The original error is the `cause`.
 */
export class BreakwaterHttpException extends HttpException {
  /** The complete answer. */
  readonly httpResponse: HttpResponse;

  constructor(httpResponse: HttpResponse, cause?: unknown) {
    super(
      JSON.parse(httpResponse.body) as Record<string, unknown>,
      httpResponse.status,
      cause === undefined ? undefined : { cause },
    );
    this.httpResponse = httpResponse;
  }
}
