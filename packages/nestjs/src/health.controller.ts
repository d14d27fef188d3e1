import { All, Controller, Inject, Req, Res, VERSION_NEUTRAL, type Type } from '@nestjs/common';
import { problemResponse, type SseStream } from '@breakwater/core';
import type { HttpRequestLike } from './breakwater-options.interface';
import { BREAKWATER_STATE } from './breakwater.constants';
import type { BreakwaterState } from './internal/breakwater-state';
import { rawResponse, writeResponse } from './internal/write-response';
import { SkipRateLimit } from './rate-limit.decorator';

/** The routes under the base path; `HealthRoutes` decides what each answers. */
const ROUTES = [
  '',
  'live',
  'ready',
  'dashboard',
  'circuit-breakers',
  'circuit-breakers/stream',
  'circuit-breakers/:name',
  'circuit-breakers/:name/reset',
];

/**
 * Creates the controller serving core's `HealthRoutes` at `basePath` (JSON, server-sent events,
 * dashboard, admin reset) on Express and Fastify. It is exempt from `RateLimitGuard`.
 * @internal
 */
export function createHealthController(basePath: string): Type<unknown> {
  @SkipRateLimit()
  @Controller({ path: basePath, version: VERSION_NEUTRAL })
  class BreakwaterHealthController {
    constructor(@Inject(BREAKWATER_STATE) private readonly state: BreakwaterState) {}

    @All(ROUTES)
    async handle(@Req() req: HttpRequestLike, @Res() res: unknown): Promise<void> {
      const routes = this.state.health!;
      const target = (req as { originalUrl?: string }).originalUrl ?? req.url ?? '/';
      const result = await routes.handle(req.method ?? 'GET', relativeTo(target, basePath), req);
      if (result === undefined) return writeResponse(res, problemResponse(404, 'Not Found'));
      if (result.kind === 'sse') return stream(res, result);
      writeResponse(res, result);
    }
  }
  return BreakwaterHealthController;
}

/** Opens an event stream on the bare response (Fastify: `reply.raw`, after `hijack()`). */
function stream(res: unknown, sse: SseStream): void {
  (res as { hijack?: () => void }).hijack?.();
  const raw = rawResponse(res);
  raw.writeHead(sse.status, sse.headers);
  raw.flushHeaders();
  const stop = sse.start(
    (chunk) => raw.write(chunk),
    () => raw.end(),
  );
  raw.once('close', stop);
}

/** The request target from the base path on (a global prefix or version segment dropped). */
function relativeTo(target: string, basePath: string): string {
  for (let at = target.indexOf(basePath); at !== -1; at = target.indexOf(basePath, at + 1)) {
    const next = target[at + basePath.length];
    if (next === undefined || next === '/' || next === '?') return target.slice(at);
  }
  return target;
}
