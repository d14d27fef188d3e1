import type { ConsumerProject } from './consumers';

/**
 * The NestJS consumers of the pack test (with the Prometheus package): CommonJS and ESM
 * JavaScript that start a Nest app, TypeScript with decorators that must type-check.
 */

/** The Nest scenario: a decorated controller, the guard and filter, health routes, metrics. */
const NEST_SCENARIO = `
async function scenario({ core, bw, common, nestCore, prometheus, promClient, kind }) {
  const out = { kind };
  const registry = new core.CircuitBreakerRegistry();
  // What TypeScript's decorators compile to, written out for plain JavaScript.
  class PlantsController {
    list() {
      return { plants: ['monstera'] };
    }
  }
  const proto = PlantsController.prototype;
  Object.defineProperty(
    proto,
    'list',
    Reflect.decorate(
      [common.Get('plants'), bw.CircuitBreaker('plants'), bw.RateLimit('3/m')],
      proto,
      'list',
      Object.getOwnPropertyDescriptor(proto, 'list'),
    ),
  );
  const Controller = Reflect.decorate([common.Controller('api')], PlantsController);
  class AppModule {}
  const Module = Reflect.decorate(
    [
      common.Module({
        imports: [bw.BreakwaterModule.forRoot({ breakers: registry, health: { path: '/health' } })],
        controllers: [Controller],
        providers: [
          { provide: nestCore.APP_GUARD, useClass: bw.RateLimitGuard },
          { provide: nestCore.APP_FILTER, useClass: bw.BreakwaterExceptionFilter },
        ],
      }),
    ],
    AppModule,
  );
  const app = await nestCore.NestFactory.create(Module, { logger: false });
  await app.listen(0, '127.0.0.1');
  const base = await app.getUrl();
  out.statuses = [];
  const get = async (path) => {
    const response = await fetch(base + path);
    out.statuses.push(response.status);
    return response;
  };
  let response = await get('/api/plants');
  out.policy = response.headers.get('ratelimit-policy');
  await response.arrayBuffer();
  await (await get('/api/plants')).arrayBuffer();
  registry.find('plants').open();
  out.openBody = await (await get('/api/plants')).json(); // admitted by the limiter, refused by the open circuit
  await (await get('/api/plants')).arrayBuffer(); // the fourth request of a 3/m limit
  out.snapshotState = (await (await get('/health/circuit-breakers/plants')).json()).state;
  await (await get('/health/live')).arrayBuffer();
  const register = new promClient.Registry();
  const collector = prometheus.collectMetrics(registry, { register });
  const answer = await prometheus.metricsHandler(register)();
  out.metrics = {
    status: answer.status,
    hasState: /breakwater_circuit_state\\{[^}]*breaker="plants"/.test(answer.body),
    hasCalls: answer.body.includes('breakwater_calls_total'),
  };
  collector.stop();
  await app.close();
  return out;
}
`;

export function nestCommonJsConsumer(): string {
  return `'use strict';
require('reflect-metadata');
const core = require('@breakwater/core');
const bw = require('@breakwater/nestjs');
const prometheus = require('@breakwater/prometheus');
const common = require('@nestjs/common');
const nestCore = require('@nestjs/core');
const promClient = require('prom-client');
${NEST_SCENARIO}
scenario({ core, bw, common, nestCore, prometheus, promClient, kind: 'cjs' }).then(
  (out) => {
    out.optionalPeers = {};
    for (const entry of ['terminus', 'throttler']) {
      try {
        require('@breakwater/nestjs/' + entry);
        out.optionalPeers[entry] = 'loaded';
      } catch (error) {
        out.optionalPeers[entry] =
          error.code === 'MODULE_NOT_FOUND' && String(error.message).includes('@nestjs/' + entry)
            ? 'peer missing'
            : String(error);
      }
    }
    try {
      require('@breakwater/nestjs/dist/index.cjs');
      out.internalBlocked = false;
    } catch (error) {
      out.internalBlocked = error.code === 'ERR_PACKAGE_PATH_NOT_EXPORTED';
    }
    process.stdout.write(JSON.stringify(out) + '\\n');
  },
  (error) => {
    process.stderr.write(String((error && error.stack) || error) + '\\n');
    process.exit(1);
  },
);
`;
}

export function nestEsmConsumer(project: ConsumerProject): string {
  const optional = project.name === 'nest12';
  return `import 'reflect-metadata';
import { createRequire } from 'node:module';
import * as core from '@breakwater/core';
import * as bw from '@breakwater/nestjs';
import * as prometheus from '@breakwater/prometheus';
import * as common from '@nestjs/common';
import * as nestCore from '@nestjs/core';
import * as promClient from 'prom-client';
${NEST_SCENARIO}
const out = await scenario({ core, bw, common, nestCore, prometheus, promClient, kind: 'esm' });
const require = createRequire(import.meta.url);
const esm = { core, bw, prometheus };
const cjs = {
  core: require('@breakwater/core'),
  bw: require('@breakwater/nestjs'),
  prometheus: require('@breakwater/prometheus'),
};
${
  optional
    ? `esm.terminus = await import('@breakwater/nestjs/terminus');
esm.throttler = await import('@breakwater/nestjs/throttler');
cjs.terminus = require('@breakwater/nestjs/terminus');
cjs.throttler = require('@breakwater/nestjs/throttler');`
    : ''
}
const names = (m) => JSON.stringify(Object.keys(m).filter((n) => n !== 'default' && n !== '__esModule').sort());
out.sameExports = Object.fromEntries(Object.keys(cjs).map((k) => [k, names(cjs[k]) === names(esm[k])]));
out.guardAcrossCopies = cjs.core.isConfigError(new core.ConfigError('pack', 'p', 1, 'is bad'));
process.stdout.write(JSON.stringify(out) + '\\n');
`;
}

export function nestTypeScriptConsumer(project: ConsumerProject): string {
  const optional = project.name === 'nest12';
  return `import 'reflect-metadata';
import { Controller, Get, Injectable, Module, Param } from '@nestjs/common';
import { APP_FILTER, APP_GUARD, NestFactory } from '@nestjs/core';
import { CircuitBreakerRegistry, type CircuitBreaker as Breaker } from '@breakwater/core';
import {
  BreakwaterExceptionFilter,
  BreakwaterModule,
  CircuitBreaker,
  InjectBreaker,
  RateLimit,
  RateLimitGuard,
} from '@breakwater/nestjs';
${
  optional
    ? `import { BreakwaterHealthIndicator } from '@breakwater/nestjs/terminus';
import { BreakwaterThrottlerStorage } from '@breakwater/nestjs/throttler';`
    : ''
}
import { collectMetrics, metricsHandler } from '@breakwater/prometheus';
import { Registry } from 'prom-client';

interface Plant {
  id: string;
  known: boolean;
}

@Injectable()
export class PlantService {
  @CircuitBreaker({ name: 'plant-id', failureThreshold: 3, fallback: 'unknown' })
  async identify(id: string): Promise<Plant> {
    return { id, known: true };
  }

  unknown(id: string, _error: unknown): Plant {
    return { id, known: false };
  }
}

@Controller('plants')
export class PlantController {
  constructor(
    private readonly plants: PlantService,
    @InjectBreaker('plant-id') readonly breaker: Breaker,
  ) {}

  @RateLimit('10/m')
  @Get(':id')
  identify(@Param('id') id: string): Promise<Plant> {
    return this.plants.identify(id);
  }
}

@Module({
  imports: [
    BreakwaterModule.forRoot({
      breakers: { breakers: { 'plant-id': { failureThreshold: 3 } } },
      health: { path: '/health', critical: ['plant-id'] },
    }),
  ],
  controllers: [PlantController],
  providers: [
    PlantService,
    { provide: APP_GUARD, useClass: RateLimitGuard },
    { provide: APP_FILTER, useClass: BreakwaterExceptionFilter },
  ],
})
export class AppModule {}

export async function main(): Promise<number> {
  const app = await NestFactory.create(AppModule);
  const registry: CircuitBreakerRegistry = app.get(CircuitBreakerRegistry);
  const collector = collectMetrics(registry, { register: new Registry() });
  const answer = await metricsHandler()();
  // @ts-expect-error defaultLimiter is the name of a limiter
  BreakwaterModule.forRoot({ defaultLimiter: 42 });
  ${optional ? 'void BreakwaterHealthIndicator;\n  void BreakwaterThrottlerStorage;' : ''}
  collector.stop();
  await app.close();
  return answer.status;
}
`;
}
