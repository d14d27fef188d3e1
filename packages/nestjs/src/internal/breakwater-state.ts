import {
  BulkheadPolicy,
  CircuitBreakerRegistry,
  ConfigError,
  HealthRoutes,
  MemoryRateLimitStore,
  RateLimiter,
  RetryPolicy,
  TimeoutPolicy,
  defaultRetryOn,
  isCircuitBreakerRegistry,
  isRateLimiter,
  type BreakerDefaults,
  type BulkheadOptions,
  type Duration,
  type HealthReporter,
  type HealthRoutesOptions,
  type HealthSources,
  type Logger,
  type RateLimitHeaderOptions,
  type RateLimiterOptions,
  type RetryOptions,
  type TimeoutOptions,
} from '@breakwater/core';
import type {
  BreakwaterModuleOptions,
  HttpRequestLike,
  RouteRateLimitDefaults,
} from '../breakwater-options.interface';
import { isClientError } from './client-error';
import { checkKnownKeys, checkName, checkObject, checkPath, nested } from './validate';

const OWNER = 'BreakwaterModule';
const MODULE_KEYS = Object.keys({
  breakers: true,
  limiters: true,
  defaultLimiter: true,
  rateLimit: true,
  health: true,
  logger: true,
  retries: true,
  timeouts: true,
  bulkheads: true,
  isGlobal: true,
} satisfies Record<keyof BreakwaterModuleOptions, true>);

/** The part of `@RateLimit()` options that describes the rate of a route's own limiter. */
export type RouteRate = Partial<
  Pick<RateLimiterOptions, 'rate' | 'limit' | 'window' | 'algorithm' | 'burst' | 'blockDurationMs'>
>;

/** The method policies the module keeps by name, with the options each is built from. */
interface PolicyKinds {
  retries: { options: RetryOptions; policy: RetryPolicy };
  timeouts: { options: Duration | TimeoutOptions; policy: TimeoutPolicy };
  bulkheads: { options: BulkheadOptions; policy: BulkheadPolicy };
}

/** The module option and the decorator of each kind, for messages. */
const DECORATORS: Record<keyof PolicyKinds, string> = {
  retries: '@Retry',
  timeouts: '@Timeout',
  bulkheads: '@Bulkhead',
};

const BUILDERS: {
  [K in keyof PolicyKinds]: (options: PolicyKinds[K]['options']) => PolicyKinds[K]['policy'];
} = {
  // The default retryOn also leaves an HttpException below 500 alone: the caller's mistake.
  retries: (options) =>
    new RetryPolicy(options.retryOn === undefined ? { ...options, retryOn } : options),
  timeouts: (options) => new TimeoutPolicy(options),
  bulkheads: (options) => new BulkheadPolicy(options),
};

function retryOn(outcome: Parameters<typeof defaultRetryOn>[0]): boolean {
  return defaultRetryOn(outcome) && !('error' in outcome && isClientError(outcome.error));
}

/**
 * Everything the module builds from its options, once: the registry, the named limiters, the
 * health routes, and the limiters of `@RateLimit('10/m')` routes.
 * @internal
 */
export class BreakwaterState {
  readonly registry: CircuitBreakerRegistry;
  readonly limiters = new Map<string, RateLimiter>();
  readonly defaultLimiter: RateLimiter | undefined;
  /** The key of the default limiter in `limiters`. */
  readonly defaultLimiterKey: string | undefined;
  readonly headers: RateLimitHeaderOptions | undefined;
  readonly health: HealthRoutes<HttpRequestLike> | undefined;
  /** The breakers whose open circuit fails health checks. */
  readonly critical: HealthSources['critical'];
  /** Per-name options of the module, merged over `@CircuitBreaker()` options. */
  readonly breakerOptions: Readonly<Record<string, BreakerDefaults>>;
  /** The registry's `defaults` when the module built it (unknown for a registry passed in). */
  readonly breakerDefaults: BreakerDefaults;
  /** Retry, timeout and bulkhead policies by name: the module's, then the decorators'. */
  private readonly policies: { [K in keyof PolicyKinds]: Map<string, PolicyKinds[K]['policy']> } = {
    retries: new Map(),
    timeouts: new Map(),
    bulkheads: new Map(),
  };
  /** Names configured in the module options, per kind. */
  private readonly configured: { [K in keyof PolicyKinds]: Set<string> } = {
    retries: new Set(),
    timeouts: new Set(),
    bulkheads: new Set(),
  };
  /** Every limiter, route limiters included, for health reports (grows at bootstrap). */
  readonly reporters: HealthReporter[] = [];
  private readonly logger: Logger | undefined;
  private readonly routeDefaults: RouteRateLimitDefaults;
  private routeStore: MemoryRateLimitStore | undefined;
  private readonly owned: RateLimiter[] = [];

  /** @param healthPath - where the health controller is mounted, `undefined` when it is not */
  constructor(input: BreakwaterModuleOptions, healthPath: string | undefined) {
    const options = checkObject(OWNER, 'options', input) as BreakwaterModuleOptions;
    checkKnownKeys(OWNER, '', options as Record<string, unknown>, MODULE_KEYS);
    if (options.isGlobal !== undefined && typeof options.isGlobal !== 'boolean') {
      throw new ConfigError(OWNER, 'isGlobal', options.isGlobal, 'must be a boolean');
    }
    this.logger = options.logger === undefined ? undefined : toLogger(options.logger);
    const logged = this.logger === undefined ? {} : { logger: this.logger };

    const breakers = options.breakers ?? {};
    if (isCircuitBreakerRegistry(breakers)) {
      this.registry = breakers;
      this.breakerOptions = {};
      this.breakerDefaults = {};
    } else {
      checkObject(OWNER, 'breakers', breakers);
      const defaults = { ...logged, ...breakers.defaults };
      this.registry = nested(
        OWNER,
        'breakers',
        () => new CircuitBreakerRegistry({ ...breakers, defaults }),
      );
      this.breakerOptions = breakers.breakers ?? {};
      this.breakerDefaults = breakers.defaults ?? {};
    }

    const limiters = checkObject(OWNER, 'limiters', options.limiters ?? {});
    for (const key of Object.keys(limiters)) {
      const value = limiters[key];
      let limiter: RateLimiter;
      if (isRateLimiter(value)) {
        limiter = value;
      } else {
        const own = checkObject(OWNER, `limiters.${key}`, value) as unknown as RateLimiterOptions;
        limiter = nested(
          OWNER,
          `limiters.${key}`,
          () => new RateLimiter({ ...logged, ...own, name: own.name ?? key }),
        );
        this.owned.push(limiter);
      }
      this.limiters.set(key, limiter);
      this.reporters.push(limiter);
    }
    if (options.defaultLimiter !== undefined) {
      const name = checkName(OWNER, 'defaultLimiter', options.defaultLimiter);
      this.defaultLimiterKey = name;
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
    const probe = { ...this.routeDefaults, name: 'probe', rate: '1/s' } as const;
    void nested(OWNER, 'rateLimit.defaults', () => new RateLimiter(probe)).close();

    for (const kind of ['retries', 'timeouts', 'bulkheads'] as const) {
      const map = checkObject(OWNER, kind, options[kind] ?? {});
      for (const name of Object.keys(map)) {
        const built = nested(OWNER, `${kind}.${name}`, () => BUILDERS[kind](map[name] as never));
        this.policies[kind].set(name, built as never);
        this.configured[kind].add(name);
      }
    }

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
      this.health = nested(
        OWNER,
        'health',
        () =>
          new HealthRoutes<HttpRequestLike>({
            ...(rest as HealthRoutesOptions<HttpRequestLike>),
            basePath: healthPath,
            registry: this.registry,
            limiters: this.reporters,
          }),
        { basePath: 'path' },
      );
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

  /**
   * The retry, timeout or bulkhead policy `name` for a decorated method: the module's when the
   * name is configured there (the decorator may then give no options of its own), else the one
   * created from the first decorator options that used the name.
   * @param where - `Class.method`, for messages
   * @throws ConfigError naming `<where>.<option>` when the options are invalid
   */
  policy<K extends keyof PolicyKinds>(
    kind: K,
    name: string,
    options: PolicyKinds[K]['options'] | undefined,
    where: string,
  ): PolicyKinds[K]['policy'] {
    const decorator = DECORATORS[kind];
    const existing = this.policies[kind].get(name);
    if (this.configured[kind].has(name)) {
      if (options !== undefined) {
        throw new ConfigError(
          decorator,
          where,
          options,
          `cannot give options for "${name}", which BreakwaterModule configures (${kind}.${name})`,
        );
      }
      return existing!;
    }
    if (existing !== undefined) return existing;
    const policy = nested<PolicyKinds[K]['policy']>(decorator, where, () =>
      BUILDERS[kind](options ?? {}),
    );
    (this.policies[kind] as Map<string, PolicyKinds[K]['policy']>).set(name, policy);
    return policy;
  }

  /** Whether the module options configure `name` for the kind. */
  configures(kind: keyof PolicyKinds, name: string): boolean {
    return this.configured[kind].has(name);
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
