import { Module, type DynamicModule, type Provider } from '@nestjs/common';
import { DiscoveryModule } from '@nestjs/core';
import { CircuitBreakerRegistry, ConfigError, type RateLimiter } from '@breakwater/core';
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
import { checkName, checkObject, normalizePath } from './internal/validate';
import { RateLimitGuard } from './rate-limit.guard';

const OWNER = 'BreakwaterModule';

/**
 * The Breakwater module (global): an injectable `CircuitBreakerRegistry`, named rate limiters,
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
   * @throws ConfigError at bootstrap when an option is invalid
   */
  static forRoot(options: BreakwaterModuleOptions = {}): DynamicModule {
    checkObject(OWNER, 'options', options);
    const health = options.health;
    const healthPath = health === undefined ? undefined : normalizePath(health.path ?? '/health');
    const breakers = options.breakers;
    const breakerNames =
      breakers instanceof CircuitBreakerRegistry
        ? breakers.list().map((breaker) => breaker.name)
        : Object.keys(breakers?.breakers ?? {});
    return assemble(
      [{ provide: BREAKWATER_OPTIONS, useValue: options }],
      [],
      healthPath,
      breakerNames,
      Object.keys(options.limiters ?? {}),
    );
  }

  /**
   * Registers the module with options from a factory, a class or an existing provider (e.g.
   * built from a `ConfigService`).
   * @throws ConfigError when not exactly one of `useFactory`, `useClass`, `useExisting` is given
   */
  static forRootAsync(options: BreakwaterModuleAsyncOptions): DynamicModule {
    checkObject(OWNER, 'forRootAsync(options)', options);
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
        inject: options.inject ?? [],
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
      (list ?? []).map((name, i) => checkName(OWNER, `${path}[${i}]`, name));
    return assemble(
      providers,
      options.imports ?? [],
      options.healthPath === undefined ? undefined : normalizePath(options.healthPath),
      names('breakerNames', options.breakerNames),
      names('limiterNames', options.limiterNames),
    );
  }
}

function assemble(
  optionProviders: Provider[],
  imports: NonNullable<DynamicModule['imports']>,
  healthPath: string | undefined,
  breakerNames: readonly string[],
  limiterNames: readonly string[],
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
    global: true,
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
