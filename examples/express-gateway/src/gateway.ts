/**
 * The gateway: an Express 5 app in front of the plant-id, weather and inventory upstreams, each
 * behind its own circuit breaker (one registry), retry with jitter and timeout; correlation IDs;
 * a per-client rate limit; the health routes with the live dashboard; and Prometheus metrics.
 */
import express, { type Express, type NextFunction, type Request, type Response } from 'express';
import {
  CircuitBreakerRegistry,
  RateLimiter,
  jsonResponse,
  problemResponse,
  type HttpResponse,
  type RateLimitStore,
} from '@breakwater/core';
import { healthRoutes, rateLimit, type HealthRoutesMiddleware } from '@breakwater/express';
import { collectMetrics, metricsHandler, type MetricsCollector } from '@breakwater/prometheus';
import { Registry } from 'prom-client';
import { requestId, requestIdOf } from './request-id';
import { ResilientUpstream } from './resilient-upstream';
import { GatewayStats, type ServiceName } from './stats';

/** Options of {@link createGateway}. */
export interface GatewayOptions {
  /** Base URL of each upstream. */
  upstreams: Record<ServiceName, string>;
  /**
   * Open time of the upstream breakers before a probe (plant-id backs off up to twice this).
   * @defaultValue 5 000
   */
  openDurationMs?: number;
  /**
   * Per-client rate limit (token bucket): `limit` requests per `windowMs`, bursts up to `burst`.
   * Clients are told apart by `X-Api-Key`, else by address.
   * @defaultValue `{ limit: 20, windowMs: 1_000, burst: 30 }`
   */
  clientRate?: { limit: number; windowMs: number; burst?: number };
  /** Where rate-limit counts live. @defaultValue a memory store owned by the limiter */
  rateLimitStore?: RateLimitStore;
  /** Serve weather answers younger than this from the cache (spares the daily quota). @defaultValue 1 000 */
  weatherFreshMs?: number;
  /** Told when an upstream's `Retry-After` opens its circuit. */
  onNotice?: (notice: { service: string; message: string }) => void;
}

/** A gateway built by {@link createGateway}. */
export interface Gateway {
  readonly app: Express;
  /** Every breaker: one per upstream (and the rate-limit store's, with a remote store). */
  readonly registry: CircuitBreakerRegistry;
  /** The per-client limiter. */
  readonly limiter: RateLimiter;
  readonly upstreams: Record<ServiceName, ResilientUpstream>;
  /** Every upstream's retry and timeout policies, by the name their metrics carry. */
  readonly policies: Readonly<Record<string, ResilientUpstream['policies'][string]>>;
  readonly stats: GatewayStats;
  /** The Prometheus registry behind `/metrics`. */
  readonly metrics: Registry;
  /** Ends the dashboard streams and stops the collectors; call before closing the server. */
  close(): Promise<void>;
}

const API_KEY = /^[A-Za-z0-9._-]{1,64}$/;
const IMAGE = /^[a-z0-9-]{1,64}$/;
const CITY = /^[A-Za-z .'-]{1,64}$/;
const SKU = /^[A-Z0-9-]{1,32}$/;
const ROUTES = [
  'GET /api/plants/identify?image=monstera-01',
  'GET /api/weather/:city',
  'GET /api/inventory/:sku',
  'GET /health',
  'GET /health/ready',
  'GET /health/dashboard',
  'GET /metrics',
];
const LOOPBACK = new Set(['127.0.0.1', '::1', '::ffff:127.0.0.1']);

/**
 * Builds the gateway. The app does not listen: `app.listen(0, '127.0.0.1')`, or hand it to
 * supertest. Call `close()` when done.
 */
export function createGateway(options: GatewayOptions): Gateway {
  const openDurationMs = options.openDurationMs ?? 5_000;
  const registry = new CircuitBreakerRegistry({ defaults: { openDurationMs } });
  const metrics = new Registry();
  const stats = new GatewayStats(metrics);

  const common = { registry, stats, onNotice: options.onNotice };
  const upstreams: Record<ServiceName, ResilientUpstream> = {
    'plant-id': new ResilientUpstream({
      ...common,
      name: 'plant-id',
      baseUrl: options.upstreams['plant-id'],
      // A paid API: open early, and make sure it is back before paying for full traffic.
      breaker: {
        failureThreshold: 3,
        halfOpen: { successThreshold: 2 },
        backoff: { multiplier: 2, maxMs: openDurationMs * 2 },
      },
      timeoutMs: 800,
      maxAttempts: 2,
      retryDelayMs: 50,
      cache: { freshMs: 0, maxEntries: 1_000 },
    }),
    weather: new ResilientUpstream({
      ...common,
      name: 'weather',
      baseUrl: options.upstreams.weather,
      breaker: { failureThreshold: 5 },
      timeoutMs: 400,
      maxAttempts: 3,
      retryDelayMs: 50,
      cache: { freshMs: options.weatherFreshMs ?? 1_000, maxEntries: 1_000 },
    }),
    // Stock levels from a cache could sell what is gone: no fallback, an honest error instead.
    inventory: new ResilientUpstream({
      ...common,
      name: 'inventory',
      baseUrl: options.upstreams.inventory,
      // Tolerates the odd slow call; opens when half of the recent calls fail.
      breaker: {
        failureThreshold: 5,
        failureRateThreshold: 50,
        minimumCalls: 20,
        window: { type: 'count', size: 50 },
      },
      timeoutMs: 250,
      maxAttempts: 3,
      retryDelayMs: 25,
      cache: false,
    }),
  };

  const rate = options.clientRate ?? { limit: 20, windowMs: 1_000, burst: 30 };
  const store = options.rateLimitStore;
  const limiter = new RateLimiter({
    name: 'per-client',
    algorithm: 'token-bucket',
    limit: rate.limit,
    window: rate.windowMs,
    burst: rate.burst ?? rate.limit,
    ...(store === undefined
      ? {}
      : {
          store,
          onStoreFailure: 'fallback' as const,
          // In the registry, so the store's circuit shows on the dashboard and in /metrics.
          breaker: registry.get('rate-limit-store', { failureThreshold: 3, openDurationMs: 5_000 }),
        }),
  });
  const limit = rateLimit({
    limiter,
    key: (req) => {
      const apiKey = req.get('x-api-key');
      return apiKey !== undefined && API_KEY.test(apiKey) ? `key:${apiKey}` : `ip:${req.ip ?? ''}`;
    },
  });

  const health: HealthRoutesMiddleware = healthRoutes({
    registry,
    limiters: [limiter],
    // Without inventory the shop cannot sell: not ready while its circuit is open.
    critical: ['inventory'],
    admin: { authorize: (req) => LOOPBACK.has(req.socket.remoteAddress ?? '') },
  });
  const policies = Object.assign({}, ...Object.values(upstreams).map((u) => u.policies)) as Record<
    string,
    ResilientUpstream['policies'][string]
  >;
  const collector: MetricsCollector = collectMetrics(registry, {
    register: metrics,
    limiters: [limiter],
    policies,
  });
  const scrape = metricsHandler(metrics);

  const app = express();
  app.disable('x-powered-by');
  app.use(requestId());
  app.use(health);
  app.get('/metrics', async (_req, res) => send(res, await scrape()));
  app.get('/', (_req, res) => {
    send(res, jsonResponse(200, { routes: ROUTES }));
  });

  /** Counts every request for `service`, 429s from the limiter included. */
  const counted = (service: ServiceName) => (_req: Request, res: Response, next: NextFunction) => {
    stats.call(service);
    res.once('finish', () => {
      // Only the limiter answers 429: an upstream's 429 becomes an open circuit (503).
      if (res.statusCode === 429) stats.count(service, 'rateLimited');
    });
    next();
  };

  const proxy = async (
    res: Response,
    upstream: ResilientUpstream,
    request: Parameters<ResilientUpstream['call']>[0],
  ): Promise<void> => {
    const controller = new AbortController();
    const onClose = (): void => {
      if (!res.writableFinished) controller.abort();
    };
    res.once('close', onClose);
    const answer = await upstream.call(request, requestIdOf(res), controller.signal);
    send(res, answer);
  };

  app.get('/api/plants/identify', counted('plant-id'), limit, async (req, res) => {
    const image = req.query.image;
    if (typeof image !== 'string' || !IMAGE.test(image)) {
      return send(res, badRequest('query parameter "image" must name an image, e.g. monstera-01'));
    }
    await proxy(res, upstreams['plant-id'], {
      path: '/v1/identify',
      method: 'POST',
      body: { image },
      cacheKey: image,
    });
  });
  app.get('/api/weather/:city', counted('weather'), limit, async (req, res) => {
    const city = param(req, 'city');
    if (!CITY.test(city)) return send(res, badRequest('the city name is not valid'));
    await proxy(res, upstreams.weather, {
      path: `/v1/forecast?city=${encodeURIComponent(city)}`,
      cacheKey: city.toLowerCase(),
    });
  });
  app.get('/api/inventory/:sku', counted('inventory'), limit, async (req, res) => {
    const sku = param(req, 'sku');
    if (!SKU.test(sku)) return send(res, badRequest('the SKU is not valid'));
    await proxy(res, upstreams.inventory, {
      path: `/v1/items/${encodeURIComponent(sku)}`,
      cacheKey: sku,
    });
  });

  app.use((req, res) => {
    send(res, problemResponse(404, 'Not Found', `No route for ${req.method} ${req.path}`));
  });
  app.use((error: unknown, _req: Request, res: Response, _next: NextFunction) => {
    if (res.headersSent) return void res.end();
    const status = (error as { status?: unknown }).status;
    const code = typeof status === 'number' && status >= 400 && status < 500 ? status : 500;
    send(res, problemResponse(code, code === 500 ? 'Internal Server Error' : 'Bad Request'));
  });

  return {
    app,
    registry,
    limiter,
    upstreams,
    policies,
    stats,
    metrics,
    async close() {
      health.close();
      collector.stop();
      await limiter.close();
    },
  };
}

/** A route parameter as one string ('' when absent). */
function param(req: Request, name: string): string {
  const value: unknown = req.params[name];
  return typeof value === 'string' ? value : '';
}

function badRequest(detail: string): HttpResponse {
  return problemResponse(400, 'Bad Request', detail);
}

/** Writes an answer core (or the proxy) decided, over headers already set (rate limits). */
function send(res: Response, answer: HttpResponse): void {
  if (res.headersSent) return;
  res.writeHead(answer.status, answer.headers);
  res.end(answer.body);
}
