import { SetMetadata } from '@nestjs/common';
import type { BulkheadOptions } from '@breakwater/core';
import { BULKHEAD_METADATA } from './breakwater.constants';

/** Options of {@link Bulkhead}: core's `BulkheadOptions` plus the name and a fallback method. */
export interface BulkheadDecoratorOptions extends Partial<BulkheadOptions> {
  /**
   * The bulkhead's name: every method using the name shares its slots. A name configured in the
   * module (`bulkheads`) uses that bulkhead. @defaultValue `'<ClassName>.<methodName>'`
   */
  name?: string;
  /**
   * A method of the same instance that answers when the call is refused or fails, called as
   * `fallbackMethod(...args, error)`. Never called for an `HttpException` below 500.
   * @defaultValue none
   */
  fallback?: string;
}

/**
 * Limits how many calls of the method run at once (resilience4j's `@Bulkhead`, semaphore
 * kind): the innermost policy, so only running calls hold a slot. A call that finds every slot
 * and queue place taken rejects with a `BulkheadFullError` (503 through
 * `BreakwaterExceptionFilter`). An Observable holds its slot until it completes, errors or is
 * unsubscribed. Only records metadata; `BreakwaterModule` wraps the method once at bootstrap.
 *
 * @example
 * ```ts
 * @Bulkhead({ maxConcurrent: 10, maxQueue: 20, queueTimeoutMs: '1s' })
 * @Bulkhead('db') // BreakwaterModule.forRoot({ bulkheads: { db: { maxConcurrent: 10 } } })
 * ```
 */
export function Bulkhead(nameOrOptions: string | BulkheadDecoratorOptions): MethodDecorator {
  const options: BulkheadDecoratorOptions =
    typeof nameOrOptions === 'string' ? { name: nameOrOptions } : { ...nameOrOptions };
  return SetMetadata(BULKHEAD_METADATA, options);
}
