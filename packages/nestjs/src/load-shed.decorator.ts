import { SetMetadata } from '@nestjs/common';
import type { LoadShedPriority } from '@breakwater/core';

/** Metadata key written by `@LoadShed()`. */
export const LOAD_SHED_METADATA = 'breakwater:load-shed';

/** Options of {@link LoadShed}. */
export interface LoadShedDecoratorOptions {
  /**
   * The route's priority: `low` is shed first, `critical` last.
   * @defaultValue what the shedder's `priority` hook says (`'normal'` without one)
   */
  priority?: LoadShedPriority;
  /** Never shed (nor count) the route. @defaultValue false */
  skip?: boolean;
}

/**
 * Sets how `LoadShedGuard` treats a route (on a method) or every route of a controller (on the
 * class): `@LoadShed('critical')`, `@LoadShed({ priority: 'low' })`, or `@LoadShed(false)` to
 * exempt it. Only records metadata; the guard reads it once per route.
 *
 * @example
 * ```ts
 * @LoadShed('critical')
 * @Post('checkout')
 * checkout() {}
 *
 * @LoadShed(false)
 * @Get('status')
 * status() {}
 * ```
 */
export function LoadShed(
  priorityOrOptions: LoadShedPriority | LoadShedDecoratorOptions | false,
): MethodDecorator & ClassDecorator {
  const options: LoadShedDecoratorOptions =
    priorityOrOptions === false
      ? { skip: true }
      : typeof priorityOrOptions === 'string'
        ? { priority: priorityOrOptions }
        : { ...priorityOrOptions };
  return SetMetadata(LOAD_SHED_METADATA, options);
}
