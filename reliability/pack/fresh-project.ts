import { PACKAGES, type PackageName } from './consumers';

/**
 * A user's first install: a fresh npm project that takes every published package from its
 * tarball, with ioredis 6 and TypeScript 7, and must install without a warning, type-check with
 * its own `tsc` and talk to Redis through ioredis 6.
 */

/** The tarballs the fresh project installs: every published package. */
export const FRESH_PACKAGES: readonly PackageName[] = PACKAGES;

/**
 * Its registry dependencies: the newest majors of every peer, except Nest. On Node.js 20 a
 * Nest user is on Nest 11: Nest 12 pulls in a `file-type` that declares Node.js 22, which npm
 * reports as EBADENGINE.
 */
export const FRESH_DEPENDENCIES: Record<string, string> = {
  ioredis: '^6.0.0',
  typescript: '^7.0.0',
  '@types/node': '^20.0.0',
  express: '^5.1.0',
  '@types/express': '^5.0.0',
  koa: '^3.0.0',
  '@types/koa': '^3.0.0',
  'prom-client': '^15.1.0',
  '@opentelemetry/api': '^1.9.0',
  '@nestjs/common': '^11.0.0',
  '@nestjs/core': '^11.0.0',
  '@nestjs/platform-express': '^11.0.0',
  'reflect-metadata': '^0.2.0',
  rxjs: '^7.8.0',
};

/** How the TypeScript 7 consumer is checked: `nodenext` (a `.cts` and a `.mts` file) or `bundler`. */
export const FRESH_RESOLUTIONS = ['nodenext', 'bundler'] as const;

/** The files of one type-check. */
export function freshTypeCheckFiles(resolution: (typeof FRESH_RESOLUTIONS)[number]): string[] {
  return resolution === 'bundler' ? ['consumer.ts'] : ['consumer.cts', 'consumer.mts'];
}

/** `tsconfig.<resolution>.json` of the fresh project. */
export function freshTsconfig(resolution: (typeof FRESH_RESOLUTIONS)[number]): string {
  const compilerOptions = {
    target: 'es2022',
    module: resolution === 'bundler' ? 'esnext' : 'nodenext',
    moduleResolution: resolution,
    strict: true,
    noEmit: true,
    esModuleInterop: true,
    experimentalDecorators: true,
    emitDecoratorMetadata: true,
    // As most projects have it. Without it TypeScript 7 also checks every installed declaration
    // file, and @types/koa 3 has an error of its own there.
    skipLibCheck: true,
    types: ['node'],
  };
  const files = freshTypeCheckFiles(resolution);
  return `${JSON.stringify({ compilerOptions, files }, null, 2)}\n`;
}

/**
 * The TypeScript consumer: every package, settings read from the environment as plain strings,
 * an ioredis 6 client for the stores, a Nest module with decorators (with checks that fail if the
 * types were `any`).
 */
export const FRESH_TYPESCRIPT = `import 'reflect-metadata';
import { Controller, Get, Injectable, Module, UseFilters } from '@nestjs/common';
import { APP_GUARD, NestFactory } from '@nestjs/core';
import { metrics } from '@opentelemetry/api';
import {
  CircuitBreaker,
  CircuitBreakerRegistry,
  RateLimiter,
  isRateLimitError,
  type RateLimitDecision,
} from '@breakwater/core';
import { rateLimitStoreConformance } from '@breakwater/core/testing';
import * as bwExpress from '@breakwater/express';
import * as bwKoa from '@breakwater/koa';
import {
  BreakwaterExceptionFilter,
  BreakwaterModule,
  CircuitBreaker as Protected,
  RateLimit,
  RateLimitGuard,
} from '@breakwater/nestjs';
import { instrument } from '@breakwater/opentelemetry';
import { collectMetrics, metricsHandler } from '@breakwater/prometheus';
import { RedisBreakerStore, RedisRateLimitStore, createRedisClient } from '@breakwater/redis';
import express from 'express';
import { Redis } from 'ioredis';
import Koa from 'koa';
import { Registry } from 'prom-client';

@Injectable()
export class PlantService {
  @Protected({ name: 'plant-id', failureThreshold: 3, fallback: 'unknown' })
  async identify(id: string): Promise<string> {
    return id;
  }

  unknown(id: string): string {
    return 'unknown ' + id;
  }
}

@Controller('plants')
@UseFilters(BreakwaterExceptionFilter)
export class PlantController {
  constructor(private readonly plants: PlantService) {}

  @RateLimit('10/m')
  @Get()
  list(): Promise<string> {
    return this.plants.identify('monstera');
  }
}

@Module({
  imports: [
    BreakwaterModule.forRootAsync({
      useFactory: () => ({ limiters: { api: { rate: process.env.API_RATE ?? '10/m' } } }),
      healthPath: '/health',
      limiterNames: ['api'],
    }),
  ],
  controllers: [PlantController],
  providers: [PlantService, { provide: APP_GUARD, useClass: RateLimitGuard }],
})
export class AppModule {}

export async function main(): Promise<number> {
  // Settings read from the environment are plain strings.
  const limiter = new RateLimiter({ name: 'api', rate: process.env.RATE ?? '100/m' });
  const breaker = new CircuitBreaker({
    name: 'upstream',
    openDurationMs: process.env.OPEN_DURATION ?? '30s',
  });
  const decision: RateLimitDecision = await limiter.consume('client');
  const value: number = await breaker.execute(async (signal: AbortSignal) => (signal.aborted ? 0 : 1));

  // An ioredis 6 client of the application's own, and the package's factory, both serve.
  const client = new Redis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379', { lazyConnect: true });
  const shared = new RedisRateLimitStore({ client });
  const breakers = new RedisBreakerStore({ client: createRedisClient('redis://127.0.0.1:6379') });
  const registry = new CircuitBreakerRegistry({ defaults: { store: breakers } });

  const app = express();
  app.use(bwExpress.healthRoutes({ registry, limiters: [limiter] }));
  app.get('/x', bwExpress.circuitBreaker({ registry }), bwExpress.rateLimit(limiter), (_req, res) => {
    res.json({ ok: true });
  });
  const koa = new Koa();
  koa.use(bwKoa.healthRoutes({ registry }));
  koa.use(bwKoa.rateLimit({ name: 'koa', rate: '5/s', store: shared }));

  const register = new Registry();
  const collector = collectMetrics(registry, { register, limiters: [limiter] });
  const answer = await metricsHandler(register)();
  const instrumentation = instrument(registry, { meterProvider: metrics.getMeterProvider() });

  const nest = await NestFactory.create(AppModule, { logger: false });
  await nest.close();
  instrumentation.stop();
  collector.stop();
  // @ts-expect-error a rate is a string such as '10/s' or { limit, window }
  new RateLimiter({ name: 'bad', rate: 10 });
  try {
    await limiter.consume('client');
  } catch (error) {
    if (isRateLimitError(error)) return error.retryAfterMs;
  }
  return value + decision.remaining + answer.status + rateLimitStoreConformance().length;
}
`;

/** What the Redis consumer prints (one JSON line). */
export interface FreshRedisOutput {
  ioredis: string;
  decisions: boolean[];
  rateLimitKeys: number;
  states: string[];
}

/**
 * `consumer-redis.mjs`: a limiter on a `RedisRateLimitStore` and two breakers sharing one circuit
 * through `RedisBreakerStore`s on two connections, all on the project's ioredis 6 and the Redis at
 * `REDIS_URL`.
 */
export const FRESH_REDIS_CONSUMER = `import { createRequire } from 'node:module';
import { CircuitBreaker, RateLimiter } from '@breakwater/core';
import { RedisBreakerStore, RedisRateLimitStore, createRedisClient } from '@breakwater/redis';

const require = createRequire(import.meta.url);
const out = {};
// The ioredis that @breakwater/redis resolves as its peer: the project's ioredis 6.
out.ioredis = createRequire(require.resolve('@breakwater/redis'))('ioredis/package.json').version;

const connect = async () => {
  const client = createRedisClient(process.env.REDIS_URL, { lazyConnect: true });
  client.on('error', () => undefined);
  await client.connect();
  return client;
};
const run = 'fresh:' + process.pid + ':' + Date.now() + ':';

// Rate limiting on Redis: 'deny' on a store failure, so an allowed request was decided by Redis.
const client = await connect();
const limiter = new RateLimiter({
  name: 'fresh',
  rate: '2/d',
  store: new RedisRateLimitStore({ client, prefix: run + 'rl:' }),
  onStoreFailure: 'deny',
});
out.decisions = [];
for (let i = 0; i < 3; i++) out.decisions.push((await limiter.consume('client')).allowed);
out.rateLimitKeys = (await client.keys(run + 'rl:*')).length;
await limiter.close();

// Two breakers on two connections, as in two processes: forcing one open opens the other.
const other = await connect();
const stores = [client, other].map((c) => new RedisBreakerStore({ client: c, prefix: run + 'cb:' }));
await Promise.all(stores.map((store) => store.ready()));
const [here, there] = stores.map((store) => new CircuitBreaker({ name: 'fresh', store }));
here.open();
const until = Date.now() + 5_000;
while (there.state !== here.state && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
out.states = [here.state, there.state];
await Promise.all(stores.map((store) => store.close()));
client.disconnect();
other.disconnect();
process.stdout.write(JSON.stringify(out) + '\\n');
`;
