import { Module, type DynamicModule, type Provider } from '@nestjs/common';
import { DiscoveryModule } from '@nestjs/core';
import {
  CircuitBreakerRegistry,
  ConfigError,
  isCircuitBreakerRegistry,
  type RateLimiter,
} from '@breakwater/core';
import type {
  BreakwaterModuleAsyncOptions,
  BreakwaterModuleOptions,
  BreakwaterOptionsFactory,
} from './breakwater-options.interface';
import {
  BREAKWATER_OPTIONS,
  BREAKWATER_STATE,
  RateLimiters,
  getBreakerToken,
  getRateLimiterToken,
} from './breakwater.constants';
import { BreakwaterExplorer } from './circuit-breaker.explorer';
import { createHealthController } from './health.controller';
import { BreakwaterState } from './internal/breakwater-state';
import { RateLimitRoutes } from './internal/rate-limit-routes';
import { checkArray, checkKnownKeys, checkName, checkObject, checkPath } from './internal/validate';
import { RateLimitGuard } from './rate-limit.guard';

const OWNER = 'BreakwaterModule';

/** The options `forRootAsync()` accepts. */
const ASYNC_KEYS = [
  'imports',
  'inject',
  'useFactory',
  'useClass',
  'useExisting',
  'healthPath',
  'breakerNames',
  'limiterNames',
  'isGlobal',
] as const;

/**
 * The Breakwater module (global unless `isGlobal: false`): an injectable `CircuitBreakerRegistry`, named rate limiters,
 * `@CircuitBreaker()` on any provider or controller method, `RateLimitGuard`, and the health
 * routes.
 *
 * @example
 * ```ts
 * @Module({
 *   imports: [
 *     BreakwaterModule.forRoot({
 *       breakers: { defaults: { failureThreshold: 5 }, breakers: { 'plant-id': { openDurationMs: '60s' } } },
 *       limiters: { api: { rate: '100/m' } },
 *       defaultLimiter: 'api',
 *       health: { path: '/health', critical: ['plant-id'] },
 *     }),
 *   ],
 *   providers: [{ provide: APP_GUARD, useClass: RateLimitGuard }],
 * })
 * export class AppModule {}
 * ```
 */
@Module({})
export class BreakwaterModule {
  /**
   * Registers the module with options known at import time.
   * @throws ConfigError when `health`, `health.path` or `isGlobal` has the wrong type; at
   * bootstrap when another option is invalid
   */
  static forRoot(options: BreakwaterModuleOptions = {}): DynamicModule {
    checkObject(OWNER, 'options', options);
    let healthPath: string | undefined;
    if (options.health !== undefined) {
      const { path } = checkObject(OWNER, 'health', options.health);
      healthPath = path === undefined ? '/health' : checkPath(OWNER, 'health.path', path);
    }
    const breakers = options.breakers;
    const breakerNames = isCircuitBreakerRegistry(breakers)
      ? breakers.list().map((breaker) => breaker.name)
      : Object.keys(breakers?.breakers ?? {});
    return assemble(
      [{ provide: BREAKWATER_OPTIONS, useValue: options }],
      [],
      healthPath,
      breakerNames,
      Object.keys(options.limiters ?? {}),
      checkGlobal(options.isGlobal),
    );
  }

  /**
   * Registers the module with options from a factory, a class or an existing provider (e.g.
   * built from a `ConfigService`).
   * @throws ConfigError when not exactly one of `useFactory`, `useClass`, `useExisting` is given,
   * on an unknown option, or when an option has the wrong type
   */
  static forRootAsync(options: BreakwaterModuleAsyncOptions): DynamicModule {
    checkObject(OWNER, 'forRootAsync(options)', options);
    checkKnownKeys(OWNER, '', options as unknown as Record<string, unknown>, ASYNC_KEYS);
    for (const key of ['useFactory', 'useClass', 'useExisting'] as const) {
      if (options[key] !== undefined && typeof options[key] !== 'function') {
        throw new ConfigError(OWNER, key, options[key], 'must be a function');
      }
    }
    const given = (['useFactory', 'useClass', 'useExisting'] as const).filter(
      (key) => options[key] !== undefined,
    );
    if (given.length !== 1) {
      throw new ConfigError(
        OWNER,
        'forRootAsync(options)',
        given,
        'needs exactly one of useFactory, useClass, useExisting',
      );
    }
    const providers: Provider[] = [];
    if (options.useFactory !== undefined) {
      providers.push({
        provide: BREAKWATER_OPTIONS,
        useFactory: options.useFactory,
        inject:
          options.inject === undefined
            ? []
            : (checkArray(OWNER, 'inject', options.inject) as typeof options.inject),
      });
    } else {
      const factory = (options.useClass ?? options.useExisting)!;
      if (options.useClass !== undefined) providers.push({ provide: factory, useClass: factory });
      providers.push({
        provide: BREAKWATER_OPTIONS,
        useFactory: (f: BreakwaterOptionsFactory) => f.createBreakwaterOptions(),
        inject: [factory],
      });
    }
    const names = (path: string, list: readonly string[] | undefined): string[] =>
      list === undefined
        ? []
        : checkArray(OWNER, path, list).map((name, i) => checkName(OWNER, `${path}[${i}]`, name));
    const imports =
      options.imports === undefined ? [] : checkArray(OWNER, 'imports', options.imports);
    return assemble(
      providers,
      imports as NonNullable<DynamicModule['imports']>,
      options.healthPath === undefined
        ? undefined
        : checkPath(OWNER, 'healthPath', options.healthPath),
      names('breakerNames', options.breakerNames),
      names('limiterNames', options.limiterNames),
      checkGlobal(options.isGlobal),
    );
  }
}

function checkGlobal(value: unknown): boolean {
  if (value === undefined) return true;
  if (typeof value !== 'boolean')
    throw new ConfigError(OWNER, 'isGlobal', value, 'must be a boolean');
  return value;
}

function assemble(
  optionProviders: Provider[],
  imports: NonNullable<DynamicModule['imports']>,
  healthPath: string | undefined,
  breakerNames: readonly string[],
  limiterNames: readonly string[],
  global: boolean,
): DynamicModule {
  const limiterProviders = limiterNames.map((name) => ({
    provide: getRateLimiterToken(name),
    useFactory: (state: BreakwaterState): RateLimiter => {
      const limiter = state.limiters.get(name);
      if (limiter === undefined) {
        throw new ConfigError(OWNER, 'limiterNames', name, 'must name a limiter of the options');
      }
      return limiter;
    },
    inject: [BREAKWATER_STATE],
  }));
  // Injected breakers are created after the explorer, so @CircuitBreaker() options apply.
  const breakerProviders = breakerNames.map((name) => ({
    provide: getBreakerToken(name),
    useFactory: (registry: CircuitBreakerRegistry) => registry.get(name),
    inject: [CircuitBreakerRegistry, BreakwaterExplorer],
  }));
  const tokens = [...limiterProviders, ...breakerProviders].map((p) => p.provide);
  return {
    module: BreakwaterModule,
    global,
    imports: [DiscoveryModule, ...imports],
    controllers: healthPath === undefined ? [] : [createHealthController(healthPath)],
    providers: [
      ...optionProviders,
      {
        provide: BREAKWATER_STATE,
        useFactory: (options: BreakwaterModuleOptions) => new BreakwaterState(options, healthPath),
        inject: [BREAKWATER_OPTIONS],
      },
      {
        provide: CircuitBreakerRegistry,
        useFactory: (state: BreakwaterState) => state.registry,
        inject: [BREAKWATER_STATE],
      },
      {
        provide: RateLimiters,
        useFactory: (state: BreakwaterState) => state.limiters,
        inject: [BREAKWATER_STATE],
      },
      RateLimitRoutes,
      RateLimitGuard,
      BreakwaterExplorer,
      ...limiterProviders,
      ...breakerProviders,
    ],
    exports: [
      BREAKWATER_OPTIONS,
      BREAKWATER_STATE,
      CircuitBreakerRegistry,
      RateLimiters,
      RateLimitRoutes,
      RateLimitGuard,
      ...tokens,
    ],
  };
}
