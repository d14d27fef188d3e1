/**
 * The API: a Koa 3 app with @koa/router, a per-client rate limit whose counts live in a shared
 * store (Redis) and fall back to this process's memory while that store is unavailable, and the
 * Breakwater health routes.
 */
import Koa from 'koa';
import Router from '@koa/router';
import {
  CircuitBreakerRegistry,
  RateLimiter,
  type CircuitBreaker,
  type Logger,
  type Rate,
  type RateLimitStore,
} from '@breakwater/core';
import { healthRoutes, rateLimit, type HealthRoutesMiddleware } from '@breakwater/koa';

/** Options of {@link createApp}. */
export interface AppOptions {
  /** Where the counts live (a `RedisRateLimitStore`); memory while it is unavailable. */
  store: RateLimitStore;
  /**
   * Requests per client and window, sliding window.
   * @defaultValue `'10/m'`
   */
  rate?: Rate;
  /**
   * Time the store's circuit stays open after 3 failures before one request probes the store.
   * @defaultValue 5 000
   */
  storeOpenDurationMs?: number;
  /** Told when decisions leave the store and when they return to it. @defaultValue silent */
  logger?: Logger;
}

/** The app built by {@link createApp}. */
export interface RateLimitedApp {
  readonly app: Koa;
  /** The per-client limiter (`api`). */
  readonly limiter: RateLimiter;
  /** The breakers: the one in front of the store (`api.store`). */
  readonly registry: CircuitBreakerRegistry;
  /** The store's breaker, as the limiter uses it. */
  readonly storeBreaker: CircuitBreaker;
  /** Ends the dashboard's event streams and the limiter's own stores; call before closing. */
  close(): Promise<void>;
}

/** The key a request counts under: a well-formed `X-Api-Key`, else the client address. */
export function clientKey(apiKey: string, ip: string): string {
  return API_KEY.test(apiKey) ? `key:${apiKey}` : `ip:${ip}`;
}

const API_KEY = /^[A-Za-z0-9._-]{1,64}$/;

const PLANTS = [
  { id: 'monstera', name: 'Monstera deliciosa', water: 'weekly' },
  { id: 'pothos', name: 'Epipremnum aureum', water: 'when dry' },
  { id: 'aloe', name: 'Aloe vera', water: 'every three weeks' },
];

/** Builds the app. It does not listen: `app.listen(port)`, or hand `app.callback()` to supertest. */
export function createApp(options: AppOptions): RateLimitedApp {
  const registry = new CircuitBreakerRegistry();
  // In the registry, so the store's circuit shows in /health and on the dashboard.
  const storeBreaker = registry.get('api.store', {
    failureThreshold: 3,
    openDurationMs: options.storeOpenDurationMs ?? 5_000,
  });
  const limiter = new RateLimiter({
    name: 'api',
    algorithm: 'sliding-window',
    rate: options.rate ?? '10/m',
    store: options.store,
    onStoreFailure: 'fallback', // while the store is down, count in this process's memory
    storeTimeoutMs: 100,
    breaker: storeBreaker,
    ...(options.logger === undefined ? {} : { logger: options.logger }),
  });
  const health: HealthRoutesMiddleware = healthRoutes({ registry, limiters: [limiter] });

  const router = new Router({ prefix: '/api' });
  router.get('/plants', (ctx) => {
    ctx.body = PLANTS.map(({ id, name }) => ({ id, name }));
  });
  router.get('/plants/:id', (ctx) => {
    const plant = PLANTS.find((p) => p.id === ctx.params.id);
    if (plant === undefined) ctx.throw(404, 'no such plant');
    ctx.body = plant;
  });

  const app = new Koa();
  app.use(health); // /health, /health/ready, /health/dashboard, ...: never rate-limited
  app.use(rateLimit({ limiter, key: (ctx) => clientKey(ctx.get('x-api-key'), ctx.ip) }));
  app.use(router.routes());
  app.use(router.allowedMethods());

  return {
    app,
    limiter,
    registry,
    storeBreaker,
    close: async () => {
      health.close();
      await limiter.close();
    },
  };
}
