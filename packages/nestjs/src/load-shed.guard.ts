import { Inject, Injectable, type CanActivate, type ExecutionContext } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import { LoadShedder, type LoadShedPriority } from '@breakwater/core';
import type { HttpRequestLike } from './breakwater-options.interface';
import { LOAD_SHED_METADATA, type LoadShedDecoratorOptions } from './load-shed.decorator';
import { LoadShedException } from './load-shed.exception';
import { rawResponse, setHeaders } from './internal/write-response';

/** What a route asks for: exempt, or a priority (undefined: the shedder's hook decides). */
type RouteRule = { skip: true } | { skip: false; priority: LoadShedPriority | undefined };

/**
 * Server-side overload protection for Nest on Express and Fastify: admits each HTTP request
 * through a core `LoadShedder` (an adaptive limit on requests in flight plus optional event-loop
 * and heap thresholds) before any interceptor, pipe or handler runs. A shed request gets 503,
 * `Retry-After` and `application/problem+json` (a {@link LoadShedException}). `@LoadShed()` sets a
 * route's priority or exempts it; `/health` and `/metrics` are never shed.
 *
 * Provide the shedder under the `LoadShedder` class token, or construct the guard yourself.
 *
 * @example
 * ```ts
 * @Module({
 *   providers: [
 *     { provide: LoadShedder, useValue: new LoadShedder({ maxEventLoopDelayMs: 200 }) },
 *     { provide: APP_GUARD, useClass: LoadShedGuard },
 *   ],
 * })
 * export class AppModule {}
 * // or: app.useGlobalGuards(new LoadShedGuard(new LoadShedder()));
 * ```
 */
@Injectable()
export class LoadShedGuard implements CanActivate {
  private readonly rules = new WeakMap<object, RouteRule>();
  private readonly reflector = new Reflector();

  constructor(@Inject(LoadShedder) readonly shedder: LoadShedder<HttpRequestLike>) {}

  canActivate(context: ExecutionContext): boolean {
    if (context.getType() !== 'http') return true;
    const rule = this.ruleFor(context.getHandler(), context.getClass());
    if (rule.skip) return true;
    const http = context.switchToHttp();
    const req = http.getRequest<HttpRequestLike & { originalUrl?: string }>();
    const url = req.originalUrl ?? req.url ?? '/';
    const query = url.indexOf('?');
    const decided = this.shedder.admit(
      req,
      query === -1 ? url : url.slice(0, query),
      rule.priority,
    );
    const res: unknown = http.getResponse();
    if ('kind' in decided) {
      setHeaders(res, decided.headers);
      throw new LoadShedException(decided);
    }
    const raw = rawResponse(res);
    raw.once('finish', () => decided.finish(raw.statusCode));
    // After 'finish' the permit is settled and this is a no-op; before it, the client went away.
    raw.once('close', () => decided.abort());
    return true;
  }

  /** Reads `@LoadShed()` once per route: the method's options over the controller's. */
  private ruleFor(handler: object, controller: object): RouteRule {
    let rule = this.rules.get(handler);
    if (rule !== undefined) return rule;
    const options = this.reflector.getAllAndOverride<LoadShedDecoratorOptions | undefined>(
      LOAD_SHED_METADATA,
      [handler as () => unknown, controller as () => unknown],
    );
    rule = options?.skip === true ? { skip: true } : { skip: false, priority: options?.priority };
    this.rules.set(handler, rule);
    return rule;
  }
}
