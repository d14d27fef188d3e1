import { Catch, type ArgumentsHost, type ExceptionFilter } from '@nestjs/common';
import {
  BulkheadFullError,
  CircuitOpenError,
  RateLimitError,
  TimeoutError,
  errorResponse,
} from '@breakwater/core';
import { BreakwaterHttpException } from './breakwater-http.exception';
import { writeResponse } from './internal/write-response';

/**
 * Answers Breakwater errors on both platforms with what core decides: `CircuitOpenError` and
 * `BulkheadFullError` → 503, `RateLimitError` and `RateLimitedException` → 429, `TimeoutError` →
 * 504, each as `application/problem+json` with `Retry-After` where it applies. The error's own
 * message is never exposed. Other errors never reach it. HTTP only: in other contexts the error
 * is rethrown.
 *
 * Nest tries method filters, then controller filters, then global filters from the last
 * registered to the first, and the first that matches answers: a catch-all `@Catch()` filter
 * registered after this one takes Breakwater errors too. Register this one last, or add
 * {@link BreakwaterErrorsInterceptor}, which holds whatever the order.
 *
 * @example
 * ```ts
 * app.useGlobalFilters(new BreakwaterExceptionFilter());
 * // or, in a module: { provide: APP_FILTER, useClass: BreakwaterExceptionFilter }
 * ```
 */
@Catch(CircuitOpenError, RateLimitError, TimeoutError, BulkheadFullError, BreakwaterHttpException)
export class BreakwaterExceptionFilter implements ExceptionFilter {
  catch(exception: unknown, host: ArgumentsHost): void {
    const response =
      exception instanceof BreakwaterHttpException
        ? exception.httpResponse
        : errorResponse(exception);
    if (host.getType() !== 'http' || response === undefined) throw exception;
    writeResponse(host.switchToHttp().getResponse(), response);
  }
}
