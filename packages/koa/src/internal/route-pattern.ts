import type { Context } from 'koa';

interface RouterLayer {
  readonly path: unknown;
  readonly methods?: readonly string[];
}

interface RouterContext {
  readonly _matchedRoute?: unknown;
  readonly matched?: readonly RouterLayer[];
}

/**
 * The route pattern of a request as @koa/router matched it (`/users/:id`), or the raw path.
 *
 * Inside a route, `ctx._matchedRoute` is the route's own pattern. In middleware added with
 * `router.use()` it is the pattern of that middleware's layer (`(?:\/|$)`), so the pattern is
 * taken from the last matched layer that serves the request's method instead.
 */
export function routePattern(ctx: Context): string {
  const { _matchedRoute: current, matched } = ctx as Context & RouterContext;
  const route = typeof current === 'string' ? current : undefined;
  let last: string | undefined;
  if (Array.isArray(matched)) {
    for (const layer of matched as readonly RouterLayer[]) {
      if (layer.methods?.includes(ctx.method) !== true) continue;
      const path = String(layer.path);
      if (path === route) return path;
      last = path;
    }
  }
  return last ?? route ?? ctx.path;
}
