import type { IncomingHttpHeaders } from 'node:http';
import type {
  InjectionToken,
  LoggerService,
  ModuleMetadata,
  OptionalFactoryDependency,
  Type,
} from '@nestjs/common';
import type {
  AuthorizeResult,
  BulkheadOptions,
  CircuitBreakerRegistry,
  CircuitBreakerRegistryOptions,
  HealthRoutesOptions,
  Logger,
  RateLimitHeaderOptions,
  RateLimiter,
  RateLimiterOptions,
  RetryOptions,
  TimeoutOptions,
  Duration,
} from '@breakwater/core';

/**
 * What Breakwater reads from a request on both platforms (an Express `Request` and a Fastify
 * `FastifyRequest` both fit). Cast to your platform's type for more.
 */
export interface HttpRequestLike {
  readonly headers: IncomingHttpHeaders;
  /** The client address, honouring the platform's trust-proxy setting. */
  readonly ip?: string | undefined;
  readonly method?: string | undefined;
  readonly url?: string | undefined;
}

/** A named limiter's options: those of `RateLimiter`, the name defaulting to the map key. */
export type NamedRateLimiterOptions = Omit<RateLimiterOptions, 'name'> & { name?: string };

/** Defaults of the limiters built from `@RateLimit('10/m')` rates. */
export type RouteRateLimitDefaults = Omit<
  RateLimiterOptions,
  'name' | 'rate' | 'limit' | 'window' | 'burst'
>;

/** Options of the health controller (`health` in {@link BreakwaterModuleOptions}). */
export interface BreakwaterHealthOptions {
  /** Where the routes live. @defaultValue `'/health'` */
  path?: string;
  /** Breakers whose open circuit fails `/health` and `/health/ready`. @defaultValue none */
  critical?: HealthRoutesOptions['critical'];
  /**
   * Enables `POST <path>/circuit-breakers/:name/reset`; `authorize` receives the platform's
   * request. Without it that route answers 404. @defaultValue off
   */
  admin?: {
    authorize(req: HttpRequestLike): AuthorizeResult | Promise<AuthorizeResult>;
  };
  /** Server-sent events settings. @defaultValue `{ maxClients: 100, heartbeatMs: 15_000 }` */
  stream?: HealthRoutesOptions['stream'];
  /** Serve `<path>/dashboard`. @defaultValue true */
  dashboard?: boolean;
}

/** Options of `BreakwaterModule.forRoot()`. Every member is optional. */
export interface BreakwaterModuleOptions {
  /**
   * The circuit breaker registry: options (`defaults`, per-name `breakers`, `maxBreakers`,
   * `clock`) or a registry built elsewhere (e.g. shared with `@breakwater/prometheus`).
   * @defaultValue `new CircuitBreakerRegistry()`
   */
  breakers?: CircuitBreakerRegistryOptions | CircuitBreakerRegistry;
  /** Named rate limiters: options or limiters built elsewhere. @defaultValue none */
  limiters?: Record<string, NamedRateLimiterOptions | RateLimiter>;
  /**
   * The limiter `RateLimitGuard` applies to routes without `@RateLimit()`. Without it such routes
   * are not limited. @defaultValue none
   */
  defaultLimiter?: string;
  /** Settings of `RateLimitGuard`. */
  rateLimit?: {
    /** Which headers the guard sends. @defaultValue `{ standard: true, legacy: false }` */
    headers?: RateLimitHeaderOptions;
    /**
     * Options of the limiters built from `@RateLimit('10/m')` rates (store, algorithm,
     * onStoreFailure, clock...). @defaultValue one shared in-memory store
     */
    defaults?: RouteRateLimitDefaults;
  };
  /** Serve the health routes under `health.path`. @defaultValue off */
  health?: BreakwaterHealthOptions;
  /**
   * Where breakers and the limiters built here log their transitions: a Breakwater `Logger`
   * (`console`, pino) or a Nest `LoggerService`. @defaultValue silent
   */
  logger?: Logger | LoggerService;
  /** Retry policies by name, for `@Retry('name')`. @defaultValue none */
  retries?: Record<string, RetryOptions>;
  /** Time limits by name, for `@Timeout('name')`: a duration or `{ timeoutMs }`. @defaultValue none */
  timeouts?: Record<string, Duration | TimeoutOptions>;
  /** Bulkheads by name, for `@Bulkhead('name')`; methods using one name share its slots. @defaultValue none */
  bulkheads?: Record<string, BulkheadOptions>;
  /**
   * Register the module globally (import it once, in the root module). With `false`, import it
   * in every module that injects its providers. @defaultValue true
   */
  isGlobal?: boolean;
}

/** A class that creates the module options (`forRootAsync({ useClass })`). */
export interface BreakwaterOptionsFactory {
  createBreakwaterOptions(): BreakwaterModuleOptions | Promise<BreakwaterModuleOptions>;
}

/** Options of `BreakwaterModule.forRootAsync()`. Give one of `useFactory`, `useClass`, `useExisting`. */
export interface BreakwaterModuleAsyncOptions extends Pick<ModuleMetadata, 'imports'> {
  /** Returns the options; receives the `inject` providers. */
  useFactory?: (...args: never[]) => BreakwaterModuleOptions | Promise<BreakwaterModuleOptions>;
  /** Providers passed to `useFactory`. @defaultValue `[]` */
  inject?: (InjectionToken | OptionalFactoryDependency)[];
  /** A class the module instantiates to create the options. */
  useClass?: Type<BreakwaterOptionsFactory>;
  /** An existing provider (from `imports`) that creates the options. */
  useExisting?: Type<BreakwaterOptionsFactory>;
  /**
   * Serve the health routes at this path. Routes are fixed before the factory runs, so the path
   * is given here; the factory's `health` supplies the rest. @defaultValue off
   */
  healthPath?: string;
  /** Breaker names to provide for `@InjectBreaker(name)`. @defaultValue `[]` */
  breakerNames?: readonly string[];
  /** Limiter names to provide for `@InjectRateLimiter(name)`. @defaultValue `[]` */
  limiterNames?: readonly string[];
  /**
   * Register the module globally. Given here because Nest decides it before the factory runs
   * (an `isGlobal` returned by the factory is ignored). @defaultValue true
   */
  isGlobal?: boolean;
}
