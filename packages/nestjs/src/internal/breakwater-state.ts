import {
  CircuitBreakerRegistry,
  ConfigError,
  HealthRoutes,
  MemoryRateLimitStore,
  RateLimiter,
  type HealthReporter,
  type HealthRoutesOptions,
  type HealthSources,
  type Logger,
  type RateLimitHeaderOptions,
  type RateLimiterOptions,
} from '@breakwater/core';
import type {
  BreakwaterModuleOptions,
  HttpRequestLike,
  RouteRateLimitDefaults,
} from '../breakwater-options.interface';
import { checkKnownKeys, checkName, checkObject, checkPath } from './validate';

const OWNER = 'BreakwaterModule';

/** The part of `@RateLimit()` options that describes the rate of a route's own limiter. */
export type RouteRate = Partial<
  Pick<RateLimiterOptions, 'rate' | 'limit' | 'window' | 'algorithm' | 'burst' | 'blockDurationMs'>
>;

/**
 * Everything the module builds from its options, once: the registry, the named limiters, the
 * health routes, and the limiters of `@RateLimit('10/m')` routes.
 * @internal
 */
export class BreakwaterState {
  readonly registry: CircuitBreakerRegistry;
  readonly limiters = new Map<string, RateLimiter>();
  readonly defaultLimiter: RateLimiter | undefined;
  readonly headers: RateLimitHeaderOptions | undefined;
  readonly health: HealthRoutes<HttpRequestLike> | undefined;
  /** The breakers whose open circuit fails health checks. */
  readonly critical: HealthSources['critical'];
  /** Per-name options of the module, merged over `@CircuitBreaker()` options. */
  readonly breakerOptions: Readonly<Record<string, object>>;
  /** Every limiter, route limiters included, for health reports (grows at bootstrap). */
  readonly reporters: HealthReporter[] = [];
  private readonly logger: Logger | undefined;
  private readonly routeDefaults: RouteRateLimitDefaults;
  private routeStore: MemoryRateLimitStore | undefined;
  private readonly owned: RateLimiter[] = [];

  /** @param healthPath - where the health controller is mounted, `undefined` when it is not */
  constructor(input: BreakwaterModuleOptions, healthPath: string | undefined) {
    const options = checkObject(OWNER, 'options', input) as BreakwaterModuleOptions;
    checkKnownKeys(OWNER, '', options as Record<string, unknown>, [
      'breakers',
      'limiters',
      'defaultLimiter',
      'rateLimit',
      'health',
      'logger',
    ]);
    this.logger = options.logger === undefined ? undefined : toLogger(options.logger);
    const logged = this.logger === undefined ? {} : { logger: this.logger };

    const breakers = options.breakers ?? {};
    if (breakers instanceof CircuitBreakerRegistry) {
      this.registry = breakers;
      this.breakerOptions = {};
    } else {
      checkObject(OWNER, 'breakers', breakers);
      const defaults = { ...logged, ...breakers.defaults };
      this.registry = new CircuitBreakerRegistry({ ...breakers, defaults });
      this.breakerOptions = breakers.breakers ?? {};
    }

    const limiters = checkObject(OWNER, 'limiters', options.limiters ?? {});
    for (const key of Object.keys(limiters)) {
      const value = limiters[key];
      let limiter: RateLimiter;
      if (value instanceof RateLimiter) {
        limiter = value;
      } else {
        const own = checkObject(OWNER, `limiters.${key}`, value) as unknown as RateLimiterOptions;
        limiter = new RateLimiter({ ...logged, ...own, name: own.name ?? key });
        this.owned.push(limiter);
      }
      this.limiters.set(key, limiter);
      this.reporters.push(limiter);
    }
    if (options.defaultLimiter !== undefined) {
      const name = checkName(OWNER, 'defaultLimiter', options.defaultLimiter);
      this.defaultLimiter = this.limiters.get(name);
      if (this.defaultLimiter === undefined) {
        const known = [...this.limiters.keys()].join(', ') || 'none configured';
        throw new ConfigError(OWNER, 'defaultLimiter', name, `must name a limiter (${known})`);
      }
    }

    const rateLimit = checkObject(OWNER, 'rateLimit', options.rateLimit ?? {});
    checkKnownKeys(OWNER, 'rateLimit', rateLimit, ['headers', 'defaults']);
    this.headers = checkHeaders(rateLimit.headers);
    this.routeDefaults = checkObject(OWNER, 'rateLimit.defaults', rateLimit.defaults ?? {});
    // Validates the defaults now rather than at the first decorated route.
    void new RateLimiter({ ...this.routeDefaults, name: 'probe', rate: '1/s' }).close();

    this.critical = options.health?.critical;
    if (options.health !== undefined || healthPath !== undefined) {
      const health = checkObject(OWNER, 'health', options.health ?? {});
      checkKnownKeys(OWNER, 'health', health, ['path', 'critical', 'admin', 'stream', 'dashboard']);
      const { path, ...rest } = health as NonNullable<BreakwaterModuleOptions['health']>;
      if (healthPath === undefined) {
        throw new ConfigError(
          OWNER,
          'health',
          health,
          'needs healthPath in forRootAsync() options (routes are registered before the factory runs)',
        );
      }
      if (path !== undefined && checkPath(OWNER, 'health.path', path) !== healthPath) {
        throw new ConfigError(OWNER, 'health.path', path, `must match healthPath "${healthPath}"`);
      }
      this.health = new HealthRoutes<HttpRequestLike>({
        ...(rest as HealthRoutesOptions<HttpRequestLike>),
        basePath: healthPath,
        registry: this.registry,
        limiters: this.reporters,
      });
    }
  }

  /** Builds the limiter of a route that has its own rate. */
  routeLimiter(name: string, rate: RouteRate): RateLimiter {
    const defaults = this.routeDefaults;
    const store = defaults.store ?? (this.routeStore ??= sharedStore(defaults));
    const limiter = new RateLimiter({
      ...(this.logger === undefined ? {} : { logger: this.logger }),
      ...defaults,
      store,
      ...rate,
      name,
    });
    this.owned.push(limiter);
    this.reporters.push(limiter);
    return limiter;
  }

  /** Ends event streams and closes what the module created. */
  async close(): Promise<void> {
    this.health?.close();
    await Promise.all(this.owned.map((limiter) => limiter.close()));
    this.routeStore?.close();
  }
}

function sharedStore(defaults: RouteRateLimitDefaults): MemoryRateLimitStore {
  return new MemoryRateLimitStore(defaults.clock === undefined ? {} : { clock: defaults.clock });
}

function checkHeaders(value: unknown): RateLimitHeaderOptions | undefined {
  if (value === undefined) return undefined;
  const headers = checkObject(OWNER, 'rateLimit.headers', value);
  checkKnownKeys(OWNER, 'rateLimit.headers', headers, ['standard', 'legacy']);
  for (const key of ['standard', 'legacy']) {
    if (headers[key] !== undefined && typeof headers[key] !== 'boolean') {
      throw new ConfigError(OWNER, `rateLimit.headers.${key}`, headers[key], 'must be a boolean');
    }
  }
  return headers;
}

type LoggerLike = Partial<Record<'info' | 'log' | 'warn' | 'error', unknown>>;

/** Accepts a Breakwater `Logger` as is and adapts a Nest `LoggerService` (`log` for info). */
function toLogger(value: unknown): Logger {
  const candidate = value as LoggerLike | null;
  if (
    typeof candidate === 'object' &&
    candidate !== null &&
    typeof candidate.warn === 'function' &&
    typeof candidate.error === 'function'
  ) {
    if (typeof candidate.info === 'function') return candidate as Logger;
    if (typeof candidate.log === 'function') {
      const nest = candidate as {
        log(m: string): void;
        warn(m: string): void;
        error(m: string): void;
      };
      return {
        info: (message) => nest.log(message),
        warn: (message) => nest.warn(message),
        error: (message) => nest.error(message),
      };
    }
  }
  throw new ConfigError(
    OWNER,
    'logger',
    value,
    'must be a Logger (info, warn, error) or a Nest LoggerService',
  );
}
