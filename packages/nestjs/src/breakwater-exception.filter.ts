import { Catch, type ArgumentsHost, type ExceptionFilter } from '@nestjs/common';
import { errorResponse } from '@breakwater/core';
import { BreakwaterHttpException } from './breakwater-http.exception';
import { writeResponse } from './internal/write-response';

/**
 * What the filter catches, for Nest's `instanceof` test: a `BreakwaterHttpException`, or an error
 * core answers (`CircuitOpenError`, `RateLimitError`, `TimeoutError`, `BulkheadFullError`,
 * `ConcurrencyLimitError`) recognised by its marker, so errors thrown by a breaker or policy of
 * another copy of `@breakwater/core` (its other module format, a second installed version) are
 * caught too; a list of core's classes would catch only this copy's.
 */
class AnsweredError {
  static [Symbol.hasInstance](value: unknown): boolean {
    return value instanceof BreakwaterHttpException || errorResponse(value) !== undefined;
  }
}

/**
 * Answers Breakwater errors on both platforms with what core decides: `CircuitOpenError` and
 * `BulkheadFullError` and `ConcurrencyLimitError` → 503, `RateLimitError` and `RateLimitedException` → 429, `TimeoutError` →
 * 504, each as `application/problem+json` with `Retry-After` where it applies. The error's own
 * message is never exposed. Other errors never reach it. On a WebSocket gateway the same body is
 * sent as the `exception` event (as Nest's own WebSocket filter does); in other contexts
 * (GraphQL, RPC) the error is rethrown for their own handling.
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
@Catch(AnsweredError)
export class BreakwaterExceptionFilter implements ExceptionFilter {
  catch(exception: unknown, host: ArgumentsHost): void {
    const response =
      exception instanceof BreakwaterHttpException
        ? exception.httpResponse
        : errorResponse(exception);
    if (response === undefined) throw exception;
    const type = host.getType<string>();
    if (type === 'http') return writeResponse(host.switchToHttp().getResponse(), response);
    if (type === 'ws') return emitException(host.switchToWs().getClient(), response.body);
    throw exception;
  }
}

/** Sends the problem body as the `exception` event Nest's own WebSocket filter sends. */
function emitException(client: unknown, body: string): void {
  const socket = client as {
    readyState?: unknown;
    send?: (data: string) => void;
    emit?: (event: string, data: unknown) => void;
  };
  const data: unknown = JSON.parse(body);
  if (typeof socket.readyState === 'number' && typeof socket.send === 'function') {
    socket.send(JSON.stringify({ event: 'exception', data }));
  } else if (typeof socket.emit === 'function') {
    socket.emit('exception', data);
  }
}
