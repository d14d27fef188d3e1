import { HttpException } from '@nestjs/common';
import type { HttpResponse } from '@breakwater/core';

/**
 * An `HttpException` carrying the complete answer core decided for a Breakwater error
 * (`application/problem+json` body, status, `Retry-After`). `BreakwaterExceptionFilter` writes
 * that answer as it is; any other filter sees an ordinary `HttpException` with the right status
 * (`getStatus()`) and body (`getResponse()`: the problem body plus Nest's `statusCode`), so a
 * catch-all filter answers 503/429/504 instead of 500. The original error is the `cause`.
 */
export class BreakwaterHttpException extends HttpException {
  /** The complete answer. */
  readonly httpResponse: HttpResponse;

  constructor(httpResponse: HttpResponse, cause?: unknown) {
    // `statusCode` is Nest's own marker of an HTTP error body: GraphQL drivers read it.
    const body = JSON.parse(httpResponse.body) as Record<string, unknown>;
    super(
      { ...body, statusCode: httpResponse.status },
      httpResponse.status,
      cause === undefined ? undefined : { cause },
    );
    this.httpResponse = httpResponse;
  }
}
