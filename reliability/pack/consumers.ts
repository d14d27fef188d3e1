import { nestCommonJsConsumer, nestEsmConsumer, nestTypeScriptConsumer } from './nest-consumers';

/**
 * The throwaway projects the pack test installs the tarballs into, and the source of their
 * consumers: CommonJS and ESM JavaScript that run, TypeScript that must type-check.
 */

/** The packages published today, in build order. */
export const PACKAGES = [
  'core',
  'redis',
  'express',
  'koa',
  'prometheus',
  'opentelemetry',
  'nestjs',
] as const;
export type PackageName = (typeof PACKAGES)[number];

/** A consumer project: one framework major, the published peers a user would install. */
export interface ConsumerProject {
  name: 'express4' | 'express5' | 'koa2' | 'koa3' | 'nest11' | 'nest12';
  framework: 'express' | 'koa' | 'nest';
  /** The framework's major version, as installed. */
  major: number;
  /** Tarballs installed. */
  packages: readonly PackageName[];
  /** Registry dependencies besides the tarballs. */
  dependencies: Record<string, string>;
  /** The TypeScript resolutions the consumer is type-checked with. */
  typeChecks: readonly Resolution[];
}

/**
 * How a TypeScript consumer is type-checked: `node16` (a `.cts` and a `.mts` file, each with its
 * own module kind), `node16-esm` (the `.mts` file alone), `nodenext` (both files, with TypeScript's
 * support for `require()` of ES modules) or `bundler`.
 */
export type Resolution = 'node16' | 'node16-esm' | 'nodenext' | 'bundler';

const HTTP_PACKAGES = (adapter: 'express' | 'koa'): PackageName[] => ['core', 'redis', adapter];
const BOTH = ['node16', 'bundler'] as const;
const NODE = { ioredis: '^5.4.0', '@types/node': '^20.0.0' };
const NEST = (major: number): Record<string, string> => ({
  '@nestjs/common': `^${major}.0.0`,
  '@nestjs/core': `^${major}.0.0`,
  '@nestjs/platform-express': `^${major}.0.0`,
  'reflect-metadata': '^0.2.0',
  rxjs: '^7.8.0',
  'prom-client': '^15.1.0',
  '@types/node': '^20.0.0',
});

export const PROJECTS: readonly ConsumerProject[] = [
  {
    name: 'express4',
    framework: 'express',
    major: 4,
    packages: HTTP_PACKAGES('express'),
    dependencies: { ...NODE, express: '^4.21.0', '@types/express': '^4.17.21' },
    typeChecks: BOTH,
  },
  {
    name: 'express5',
    framework: 'express',
    major: 5,
    packages: HTTP_PACKAGES('express'),
    dependencies: { ...NODE, express: '^5.1.0', '@types/express': '^5.0.0' },
    typeChecks: BOTH,
  },
  {
    name: 'koa2',
    framework: 'koa',
    major: 2,
    packages: HTTP_PACKAGES('koa'),
    dependencies: { ...NODE, koa: '^2.16.0', '@types/koa': '^2.15.0' },
    typeChecks: BOTH,
  },
  {
    name: 'koa3',
    framework: 'koa',
    major: 3,
    packages: HTTP_PACKAGES('koa'),
    dependencies: { ...NODE, koa: '^3.0.0', '@types/koa': '^3.0.0' },
    typeChecks: BOTH,
  },
  {
    // Nest 12 with both optional peers (terminus, throttler) and the Prometheus package. Nest 12
    // ships ES modules only: a CommonJS file can import it under nodenext (require of ESM), not
    // under node16, so node16 checks the ESM file alone.
    name: 'nest12',
    framework: 'nest',
    major: 12,
    packages: ['core', 'nestjs', 'prometheus'],
    dependencies: { ...NEST(12), '@nestjs/terminus': '^12.0.0', '@nestjs/throttler': '^6.0.0' },
    typeChecks: ['node16-esm', 'nodenext', 'bundler'],
  },
  {
    // Nest 11, which the peer range accepts, without the optional peers: they must stay optional.
    name: 'nest11',
    framework: 'nest',
    major: 11,
    packages: ['core', 'nestjs', 'prometheus'],
    dependencies: NEST(11),
    typeChecks: ['node16'],
  },
];

/** What the JavaScript consumers print (one JSON line). */
export interface ConsumerOutput {
  kind: string;
  breakerValue?: number;
  breakerAfterFailure?: string;
  decisions?: boolean[];
  conformanceCases?: number;
  configErrorPath?: string;
  redisRemaining?: number | 'skipped';
  statuses: number[];
  policy: string | null;
  openBody: { breaker?: string; status?: number };
  snapshotState: string;
  metrics?: { status: number; hasState: boolean; hasCalls: boolean };
  optionalPeers?: Record<string, string>;
  version?: string;
  internalBlocked?: boolean;
  sameExports?: Record<string, boolean>;
  guardAcrossCopies?: boolean;
}

/**
 * The scenario both JavaScript consumers run: a breaker call, limiter decisions, the testing
 * entry, a Redis store (a real decision when `REDIS_URL` is set), and real requests through
 * `circuitBreaker` + `rateLimit` + `healthRoutes` on the installed framework.
 */
function scenario(framework: 'express' | 'koa'): string {
  const app =
    framework === 'express'
      ? `
  const app = Framework();
  app.use(adapter.healthRoutes({ registry }));
  app.get(
    '/api/data',
    adapter.circuitBreaker({ registry, name: 'data' }),
    adapter.rateLimit({ name: 'api', limit: 2, window: '1m' }),
    (_req, res) => { res.json({ ok: true }); },
  );
  const listener = app;`
      : `
  const app = new Framework();
  const breakerMiddleware = adapter.circuitBreaker({ registry, name: 'data' });
  const limitMiddleware = adapter.rateLimit({ name: 'api', limit: 2, window: '1m' });
  app.use(adapter.healthRoutes({ registry }));
  app.use(async (ctx, next) => {
    if (ctx.path !== '/api/data') return next();
    await breakerMiddleware(ctx, () => limitMiddleware(ctx, async () => { ctx.body = { ok: true }; }));
  });
  const listener = app.callback();`;
  return `
async function scenario({ core, testing, redis, adapter, Framework, http, kind }) {
  const out = { kind };
  const breaker = new core.CircuitBreaker({ name: 'pack', failureThreshold: 1 });
  out.breakerValue = await breaker.execute(() => 42);
  await breaker.execute(() => Promise.reject(new Error('down'))).catch(() => undefined);
  out.breakerAfterFailure = await breaker.execute(() => 1).then(
    () => 'ran',
    (error) => (core.isCircuitOpenError(error) ? 'rejected: open' : String(error)),
  );
  const limiter = new core.RateLimiter({ name: 'pack', rate: '2/d' });
  out.decisions = [];
  for (let i = 0; i < 3; i++) out.decisions.push((await limiter.consume('client')).allowed);
  await limiter.close();
  out.conformanceCases = testing.rateLimitStoreConformance().length;
  try {
    new core.CircuitBreaker({ name: 'bad', failureThreshold: 0 });
    out.configErrorPath = 'accepted';
  } catch (error) {
    out.configErrorPath = core.isConfigError(error) ? error.path : String(error);
  }

  const url = process.env.REDIS_URL;
  const client = redis.createRedisClient(url || 'redis://127.0.0.1:9', { lazyConnect: true });
  client.on('error', () => undefined);
  const store = new redis.RedisRateLimitStore({ client });
  if (url) {
    await client.connect();
    const shared = new core.RateLimiter({ name: 'pack-' + kind + '-' + Date.now(), rate: '5/m', store });
    out.redisRemaining = (await shared.consume('client')).remaining;
    await shared.close();
  } else {
    out.redisRemaining = 'skipped';
  }
  client.disconnect();

  const registry = new core.CircuitBreakerRegistry();
  ${app}
  const server = http.createServer(listener);
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const base = 'http://127.0.0.1:' + server.address().port;
  out.statuses = [];
  let response = await fetch(base + '/api/data');
  out.statuses.push(response.status);
  out.policy = response.headers.get('ratelimit-policy');
  await response.arrayBuffer();
  for (let i = 0; i < 2; i++) {
    response = await fetch(base + '/api/data');
    out.statuses.push(response.status);
    await response.arrayBuffer();
  }
  registry.find('data').open();
  response = await fetch(base + '/api/data');
  out.statuses.push(response.status);
  out.openBody = await response.json();
  response = await fetch(base + '/health/circuit-breakers/data');
  out.statuses.push(response.status);
  out.snapshotState = (await response.json()).state;
  response = await fetch(base + '/health/live');
  out.statuses.push(response.status);
  await response.arrayBuffer();
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
  return out;
}
`;
}

/** `consumer.cjs` for Express and Koa: requires every entry point, runs the scenario, prints. */
function httpCommonJsConsumer(project: ConsumerProject & { framework: 'express' | 'koa' }): string {
  return `'use strict';
const http = require('node:http');
const core = require('@breakwater/core');
const testing = require('@breakwater/core/testing');
const redis = require('@breakwater/redis');
const adapter = require('@breakwater/${project.framework}');
const Framework = require('${project.framework}');
${scenario(project.framework)}
scenario({ core, testing, redis, adapter, Framework, http, kind: 'cjs' }).then(
  (out) => {
    out.version = require('@breakwater/core/package.json').version;
    try {
      require('@breakwater/core/dist/index.cjs');
      out.internalBlocked = false;
    } catch (error) {
      out.internalBlocked = error.code === 'ERR_PACKAGE_PATH_NOT_EXPORTED';
    }
    process.stdout.write(JSON.stringify(out) + '\\n');
  },
  (error) => {
    process.stderr.write(String(error && error.stack || error) + '\\n');
    process.exit(1);
  },
);
`;
}

/** `consumer.mjs` for Express and Koa: imports every entry point, compares with CommonJS, runs. */
function httpEsmConsumer(project: ConsumerProject & { framework: 'express' | 'koa' }): string {
  return `import http from 'node:http';
import { createRequire } from 'node:module';
import * as core from '@breakwater/core';
import * as testing from '@breakwater/core/testing';
import * as redis from '@breakwater/redis';
import * as adapter from '@breakwater/${project.framework}';
import Framework from '${project.framework}';
${scenario(project.framework)}
const out = await scenario({ core, testing, redis, adapter, Framework, http, kind: 'esm' });
const require = createRequire(import.meta.url);
const esm = { core, testing, redis, adapter };
const cjs = {
  core: require('@breakwater/core'),
  testing: require('@breakwater/core/testing'),
  redis: require('@breakwater/redis'),
  adapter: require('@breakwater/${project.framework}'),
};
const names = (m) => JSON.stringify(Object.keys(m).filter((n) => n !== 'default' && n !== '__esModule').sort());
out.sameExports = Object.fromEntries(Object.keys(cjs).map((k) => [k, names(cjs[k]) === names(esm[k])]));
// Two copies (ESM and CommonJS) are loaded: the guards still recognise each other's errors.
out.guardAcrossCopies = cjs.core.isConfigError(new core.ConfigError('pack', 'p', 1, 'is bad'));
process.stdout.write(JSON.stringify(out) + '\\n');
`;
}

/** A TypeScript consumer of an HTTP adapter (with checks that fail if the types were `any`). */
function httpTypeScriptConsumer(
  project: ConsumerProject & { framework: 'express' | 'koa' },
): string {
  const app =
    project.framework === 'express'
      ? `
  const app = express();
  const limit = rateLimit({ name: 'api', rate: '100/m' });
  app.use(healthRoutes({ registry, limiters: [limit.limiter] }));
  app.get('/x', circuitBreaker({ registry }), limit, (_req, res) => {
    res.json({ ok: true });
  });`
      : `
  const app = new Koa();
  const limit = rateLimit({ name: 'api', rate: '100/m' });
  app.use(healthRoutes({ registry, limiters: [limit.limiter] }));
  app.use(circuitBreaker({ registry, name: 'x' }));
  app.use(limit);
  app.use((ctx) => {
    ctx.body = { ok: true };
  });`;
  const frameworkImport =
    project.framework === 'express' ? `import express from 'express';` : `import Koa from 'koa';`;
  return `import {
  CircuitBreaker,
  CircuitBreakerRegistry,
  RateLimiter,
  isCircuitOpenError,
  type CircuitBreakerSnapshot,
  type RateLimitDecision,
} from '@breakwater/core';
import { rateLimitStoreConformance, type RateLimitStoreConformanceCase } from '@breakwater/core/testing';
import { RedisRateLimitStore, createRedisClient } from '@breakwater/redis';
import { circuitBreaker, healthRoutes, rateLimit } from '@breakwater/${project.framework}';
${frameworkImport}

export async function main(): Promise<number> {
  const breaker = new CircuitBreaker({ name: 'b', openDurationMs: '30s' });
  const value: number = await breaker.execute(async (signal: AbortSignal) => (signal.aborted ? 0 : 1));
  const snapshot: CircuitBreakerSnapshot = breaker.snapshot();
  const decision: RateLimitDecision = await new RateLimiter({ name: 'l', rate: '10/s' }).consume('k');
  const cases: RateLimitStoreConformanceCase[] = rateLimitStoreConformance();
  const client = createRedisClient('redis://localhost:6379', { lazyConnect: true });
  const store = new RedisRateLimitStore({ client });
  const registry = new CircuitBreakerRegistry();
  ${app}
  const limiter: RateLimiter = limit.limiter;
  // @ts-expect-error a breaker needs a name
  new CircuitBreaker({});
  // @ts-expect-error the algorithms are a closed set
  new RateLimiter({ name: 'l', rate: '1/s', algorithm: 'leaky-bucket' });
  // @ts-expect-error a rate is a string such as '10/s' or { limit, window }
  rateLimit({ rate: 10 });
  try {
    await breaker.execute(() => 1);
  } catch (error) {
    if (isCircuitOpenError(error)) {
      const wait: number = error.retryAfterMs;
      return wait;
    }
  }
  void app;
  return value + snapshot.calls + decision.remaining + cases.length + store.prefix.length + limiter.rule.limit;
}
`;
}

/** The tsconfig of one type-check: `node16` (each file's module kind by extension) or `bundler`. */
export function tsconfig(project: ConsumerProject, resolution: Resolution): string {
  const files =
    resolution === 'bundler'
      ? ['consumer-bundler.ts']
      : resolution === 'node16-esm'
        ? ['consumer-esm.mts']
        : ['consumer-cjs.cts', 'consumer-esm.mts'];
  const module =
    resolution === 'bundler' ? 'esnext' : resolution === 'nodenext' ? 'nodenext' : 'node16';
  const moduleResolution = resolution === 'node16-esm' ? 'node16' : resolution;
  const nest = project.framework === 'nest';
  return `${JSON.stringify(
    {
      compilerOptions: {
        target: 'es2022',
        module,
        moduleResolution,
        strict: true,
        noEmit: true,
        esModuleInterop: true,
        ...(nest ? { experimentalDecorators: true, emitDecoratorMetadata: true } : {}),
        // node16 and nodenext check every declaration file, ours included. bundler checks the
        // consumer only; so does node16-esm, where @nestjs/throttler 6 (CommonJS) cannot import
        // the ES-module-only Nest 12 types (nodenext checks those declaration files instead).
        skipLibCheck: resolution === 'bundler' || resolution === 'node16-esm',
        types: ['node'],
      },
      files,
    },
    null,
    2,
  )}\n`;
}

// -- Dispatch -------------------------------------------------------------------------------------

function isHttp(
  project: ConsumerProject,
): project is ConsumerProject & { framework: 'express' | 'koa' } {
  return project.framework !== 'nest';
}

/** `consumer.cjs`: requires every entry point, runs the scenario, prints the result. */
export function commonJsConsumer(project: ConsumerProject): string {
  return isHttp(project) ? httpCommonJsConsumer(project) : nestCommonJsConsumer();
}

/** `consumer.mjs`: imports every entry point, compares them with the CommonJS build, runs. */
export function esmConsumer(project: ConsumerProject): string {
  return isHttp(project) ? httpEsmConsumer(project) : nestEsmConsumer(project);
}

/** A TypeScript consumer that must type-check (with checks that fail if the types were `any`). */
export function typeScriptConsumer(project: ConsumerProject): string {
  return isHttp(project) ? httpTypeScriptConsumer(project) : nestTypeScriptConsumer(project);
}
