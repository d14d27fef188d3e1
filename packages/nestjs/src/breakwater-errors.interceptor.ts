import {
  Injectable,
  type CallHandler,
  type ExecutionContext,
  type NestInterceptor,
} from '@nestjs/common';
import { errorResponse } from '@breakwater/core';
import { catchError, throwError, type Observable } from 'rxjs';
import { BreakwaterHttpException } from './breakwater-http.exception';
import { setHeaders } from './internal/write-response';

/**
 * Turns a Breakwater error thrown by a route (`CircuitOpenError`, `BulkheadFullError`,
 * `RateLimitError`, `TimeoutError`) into a {@link BreakwaterHttpException} with the status core
 * decides (503, 429, 504) and sets `Retry-After` on the response. Interceptors run before any
 * exception filter, so the answer holds whatever filters are registered and in whatever order:
 * a catch-all `@Catch()` filter sees an `HttpException` with the right status instead of an
 * unknown error it would answer with 500. Other errors and non-HTTP contexts pass unchanged.
 *
 * @example
 * ```ts
 * providers: [{ provide: APP_INTERCEPTOR, useClass: BreakwaterErrorsInterceptor }]
 * ```
 */
@Injectable()
export class BreakwaterErrorsInterceptor implements NestInterceptor {
  intercept(context: ExecutionContext, next: CallHandler): Observable<unknown> {
    if (context.getType() !== 'http') return next.handle();
    return next.handle().pipe(
      catchError((error: unknown) => {
        const response = errorResponse(error);
        if (response === undefined) return throwError(() => error);
        // Content-Type stays with whichever filter writes the body.
        const { 'content-type': _type, ...headers } = response.headers;
        setHeaders(context.switchToHttp().getResponse(), headers);
        return throwError(() => new BreakwaterHttpException(response, error));
      }),
    );
  }
}
