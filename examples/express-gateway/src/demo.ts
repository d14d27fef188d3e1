/**
 * The demo: simulated upstreams, the gateway in front of them, a client loop, and a scenario
 * that makes plant-id fail for a while and runs weather out of its daily quota.
 */
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { CircuitState, RateLimitStore } from '@breakwater/core';
import { RedisRateLimitStore, createRedisClient } from '@breakwater/redis';
import { createGateway, type Gateway } from './gateway';
import { exportToConsole } from './otel';
import { Report } from './report';
import { SERVICES, type ServiceName } from './stats';
import { TrafficLoop } from './traffic';
import {
  seededRandom,
  startInventory,
  startPlantId,
  startWeather,
  type InventoryUpstream,
  type PlantIdUpstream,
  type WeatherUpstream,
} from './upstreams';

/** Options of {@link runDemo}. */
export interface DemoOptions {
  /** Keep running (flapping plant-id) until SIGINT/SIGTERM instead of the scripted run. */
  serve: boolean;
  /** Length of the scripted run. */
  durationMs: number;
  /** Gateway port (0: any free one). */
  port: number;
  /** Seed of the simulators and the client loop. */
  seed: number;
  /** `REDIS_URL`: keep rate-limit counts in Redis (memory while it is unreachable). */
  redisUrl: string | undefined;
  /** Print OpenTelemetry metrics to the console (every 10 s, and at the end). */
  otel?: boolean;
}

const DAY_MS = 86_400_000;

/** Runs the demo; resolves when it is over (after the summary). */
export async function runDemo(options: DemoOptions): Promise<void> {
  const report = new Report();
  const random = seededRandom(options.seed);
  const plantId: PlantIdUpstream = await startPlantId(random);
  const weather: WeatherUpstream = await startWeather(
    { remaining: 10_000, resetsInMs: DAY_MS },
    random,
  );
  const inventory: InventoryUpstream = await startInventory(
    { slowShare: 0.04, slowMs: 600 },
    random,
  );

  const redis = options.redisUrl === undefined ? undefined : redisStore(options.redisUrl, report);
  // Open time scales with the run, so that a short run still shows a recovery.
  const openDurationMs = options.serve
    ? 3_000
    : Math.min(3_000, Math.max(500, Math.round(options.durationMs * 0.08)));
  const gateway: Gateway = createGateway({
    upstreams: { 'plant-id': plantId.url, weather: weather.url, inventory: inventory.url },
    openDurationMs,
    ...(redis === undefined ? {} : { rateLimitStore: redis.store }),
    onNotice: ({ service, message }) => report.event(service, message),
  });
  gateway.registry.on('stateChange', ({ breaker, from, to, reason }) =>
    report.transition(breaker, from, to, reason),
  );
  gateway.limiter.on('fallbackEntered', ({ policy }) =>
    report.event('per-client', `Redis unavailable: rate limits answered by the ${policy} store`),
  );
  gateway.limiter.on('fallbackLeft', () => report.event('per-client', 'rate limits back on Redis'));

  const otel = options.otel === true ? exportToConsole(gateway, 10_000) : undefined;
  const server = await listen(gateway, options.port);
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  report.line();
  report.title('Breakwater demo: a resilient gateway in front of three simulated upstreams');
  report.line();
  report.field('gateway', base);
  report.field(
    'plant-id',
    'paid identification API: opens after 3 failures, 1 retry, 800 ms timeout, cached fallback',
  );
  report.field(
    'weather',
    'free API with a daily quota: fresh for 1 s, Retry-After opens the circuit, cached fallback',
  );
  report.field(
    'inventory',
    'internal service, now and then slow: 250 ms timeout, 2 retries with jitter, no fallback',
  );
  report.field('clients', 'garden-app, nursery-pos, scraper (bursts past its 20/s limit: 429)');
  report.field(
    'rate limits',
    redis === undefined
      ? 'in memory'
      : `Redis at ${redactUrl(options.redisUrl!)}, memory while unreachable`,
  );

  if (options.serve) {
    await serve(report, base, gateway, plantId, random);
  } else {
    await scripted(options, report, gateway, base, plantId, weather, random);
  }

  await otel?.close();
  await gateway.close();
  await closeServer(server);
  await Promise.all([plantId.close(), weather.close(), inventory.close()]);
  redis?.close();
}

async function scripted(
  options: DemoOptions,
  report: Report,
  gateway: Gateway,
  base: string,
  plantId: PlantIdUpstream,
  weather: WeatherUpstream,
  random: () => number,
): Promise<void> {
  const d = options.durationMs;
  const at = (share: number, action: () => void): NodeJS.Timeout => setTimeout(action, d * share);
  report.field(
    'scenario',
    `${(d / 1_000).toFixed(0)} s; plant-id fails from ${sec(d * 0.2)} to ${sec(d * 0.5)}; weather's quota runs out at ${sec(d * 0.6)}`,
  );
  report.eventsHeading();

  const traffic = new TrafficLoop({
    baseUrl: base,
    tickMs: 100,
    ticks: Math.floor(d / 100),
    scraperBurst: 40,
    random,
  });
  const timers = [
    at(0.2, () => {
      plantId.mode = 'failing';
      report.event('plant-id', 'upstream starts failing (HTTP 500)');
    }),
    at(0.5, () => {
      plantId.mode = 'healthy';
      report.event('plant-id', 'upstream is healthy again');
    }),
    at(0.6, () => {
      // Used up at once rather than after a few more calls: whichever cities the clients ask
      // for, the next forecast the gateway fetches (within about a second, when its 1 s cache
      // goes stale) is answered 429, at any --duration.
      const resetsInMs = d * 0.2;
      weather.setQuota(0, resetsInMs);
      report.event('weather', `daily quota used up: 429 until the new day in ${sec(resetsInMs)}`);
    }),
  ];
  await traffic.run();
  for (const timer of timers) clearTimeout(timer);
  report.summary(gateway.stats.snapshot(), states(gateway), traffic.sent);
}

async function serve(
  report: Report,
  base: string,
  gateway: Gateway,
  plantId: PlantIdUpstream,
  random: () => number,
): Promise<void> {
  const stopped = untilStopped();
  report.line();
  report.field('dashboard', `${base}/health/dashboard`);
  report.field('health', `${base}/health   ${base}/health/ready`);
  report.field('metrics', `${base}/metrics`);
  report.field('try', `curl -i ${base}/api/plants/identify?image=monstera-01`);
  report.field('scenario', 'plant-id fails for 10 s every 30 s, from 10 s on; Ctrl-C stops');
  report.eventsHeading();

  const traffic = new TrafficLoop({
    baseUrl: base,
    tickMs: 200,
    ticks: Infinity,
    scraperBurst: 40,
    random,
  });
  const flap = (): void => {
    plantId.mode = 'failing';
    report.event('plant-id', 'upstream starts failing (HTTP 500) for 10 s');
    setTimeout(() => {
      plantId.mode = 'healthy';
      report.event('plant-id', 'upstream is healthy again');
    }, 10_000).unref();
  };
  let every: NodeJS.Timeout | undefined;
  const first = setTimeout(() => {
    flap();
    every = setInterval(flap, 30_000);
  }, 10_000);
  const running = traffic.run();

  await stopped;
  clearTimeout(first);
  clearInterval(every);
  report.line();
  report.line('  stopping...');
  await traffic.stop();
  await running;
  report.summary(gateway.stats.snapshot(), states(gateway), traffic.sent);
}

function states(gateway: Gateway): Record<ServiceName, CircuitState> {
  const result = {} as Record<ServiceName, CircuitState>;
  for (const service of SERVICES) result[service] = gateway.upstreams[service].breaker.state;
  return result;
}

function listen(gateway: Gateway, port: number): Promise<Server> {
  return new Promise((resolve, reject) => {
    const server = gateway.app.listen(port, '127.0.0.1', (error?: Error) =>
      error === undefined ? resolve(server) : reject(error),
    );
  });
}

function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}

function redisStore(url: string, report: Report): { store: RateLimitStore; close(): void } {
  const client = createRedisClient(url);
  let reported = false;
  client.on('error', (error: Error) => {
    if (reported) return;
    reported = true;
    report.event('redis', `connection error (${error.message}); retrying in the background`);
  });
  client.on('ready', () => {
    if (reported) report.event('redis', 'connected');
    reported = false;
  });
  return { store: new RedisRateLimitStore({ client }), close: () => client.disconnect() };
}

function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password !== '') parsed.password = '***';
    return parsed.toString();
  } catch {
    return 'REDIS_URL';
  }
}

const sec = (ms: number): string => `${(ms / 1_000).toFixed(1)} s`;

/** Resolves on the first SIGINT (Ctrl-C) or SIGTERM; listening starts at once, before any banner. */
function untilStopped(): Promise<void> {
  return new Promise<void>((resolve) => {
    const stop = (): void => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      resolve();
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
}
