import { Catch, type ArgumentsHost, type ExceptionFilter } from '@nestjs/common';
import {
  BulkheadFullError,
  CircuitOpenError,
  RateLimitError,
  TimeoutError,
  errorResponse,
} from '@breakwater/core';
import { writeResponse } from './internal/write-response';
import { RateLimitedException } from './rate-limited.exception';

/**
 * Answers Breakwater errors on both platforms with what core decides: `CircuitOpenError` and
 * `BulkheadFullError` → 503, `RateLimitError` and `RateLimitedException` → 429, `TimeoutError` →
 * 504, each as `application/problem+json` with `Retry-After` where it applies. The error's own
 * message is never exposed. Other errors never reach it. HTTP only: in other contexts the error
 * is rethrown.
 *
 * @example
 * ```ts
 * app.useGlobalFilters(new BreakwaterExceptionFilter());
 * // or, in a module: { provide: APP_FILTER, useClass: BreakwaterExceptionFilter }
 * ```
 */
@Catch(CircuitOpenError, RateLimitError, TimeoutError, BulkheadFullError, RateLimitedException)
export class BreakwaterExceptionFilter implements ExceptionFilter {
  catch(exception: unknown, host: ArgumentsHost): void {
    const response =
      exception instanceof RateLimitedException ? exception.httpResponse : errorResponse(exception);
    if (host.getType() !== 'http' || response === undefined) throw exception;
    writeResponse(host.switchToHttp().getResponse(), response);
  }
}
