import { HttpException } from '@nestjs/common';

/**
 * Whether `error` is an `HttpException` with a status below 500: the caller's mistake (404,
 * 400, 403...), not a failure of the service. Checked by shape as well, so an exception from a
 * second copy of `@nestjs/common` counts too.
 * @internal
 */
export function isClientError(error: unknown): boolean {
  if (error instanceof HttpException) return error.getStatus() < 500;
  if (typeof error !== 'object' || error === null) return false;
  const candidate = error as { getStatus?: unknown; getResponse?: unknown };
  if (typeof candidate.getStatus !== 'function' || typeof candidate.getResponse !== 'function') {
    return false;
  }
  try {
    const status: unknown = (candidate.getStatus as () => unknown).call(error);
    return typeof status === 'number' && status < 500;
  } catch {
    return false;
  }
}
