import type { Clock } from '../time/clock';
import {
  CircuitBreaker,
  type CircuitBreakerOptions,
  type CircuitBreakerSnapshot,
  type CircuitState,
} from './circuit-breaker';
import { ConfigError, RegistryFullError, isConfigError } from '../errors';
import { Listeners } from '../internal/listeners';
import { loggerOption, type Logger } from '../internal/log';
import {
  checkClock,
  checkKnownKeys,
  checkObject,
  integerOption,
  nestedOption,
} from '../internal/validate';
import { brand, isBranded } from '../brand';

/** Breaker options without the name: registry defaults and per-name settings. */
export type BreakerDefaults = Omit<CircuitBreakerOptions, 'name'>;

/** Options of {@link CircuitBreakerRegistry}. */
export interface CircuitBreakerRegistryOptions {
  /** Options every breaker of the registry starts from. @defaultValue `{}` */
  defaults?: BreakerDefaults;
  /** Options for particular names, merged over `defaults`. @defaultValue `{}` */
  breakers?: Record<string, BreakerDefaults>;
  /**
   * Most breakers the registry holds; creating one more throws `RegistryFullError`, so names
   * built from routes or tenants cannot grow memory without bound. @defaultValue 10 000
   */
  maxBreakers?: number;
  /** Time source for breakers that do not set their own. @defaultValue `systemClock` */
  clock?: Clock;
  /** Logger for breakers that do not set their own (one line per transition). @defaultValue silent */
  logger?: Logger;
}

/** Events of a registry: breakers added and removed, and every breaker's transitions. */
export interface CircuitBreakerRegistryEvents {
  add: { breaker: CircuitBreaker };
  remove: { breaker: CircuitBreaker };
  stateChange: { breaker: string; from: CircuitState; to: CircuitState; reason: string };
}

const OWNER = 'CircuitBreakerRegistry';

/**
 * Named circuit breakers, created on first use from shared defaults.
 *
 * @throws ConfigError at construction when an option is invalid
 * @example
 * ```ts
 * const registry = new CircuitBreakerRegistry({
 *   defaults: { failureThreshold: 5, openDurationMs: '30s' },
 *   breakers: { 'plant-id': { failureThreshold: 3, openDurationMs: '60s' } },
 * });
 * const breaker = registry.get('plant-id');
 * ```
 */
export class CircuitBreakerRegistry {
  /** The bound on the number of breakers. */
  readonly maxBreakers: number;
  private readonly defaults: BreakerDefaults;
  private readonly perName: Record<string, BreakerDefaults>;
  private readonly clock: Clock | undefined;
  private readonly logger: Logger | undefined;
  private readonly breakers = new Map<string, { breaker: CircuitBreaker; off: () => void }>();
  private readonly listeners = new Listeners<CircuitBreakerRegistryEvents>();

  constructor(options: CircuitBreakerRegistryOptions = {}) {
    checkObject(OWNER, 'options', options);
    checkKnownKeys(OWNER, '', options, ['defaults', 'breakers', 'maxBreakers', 'clock', 'logger']);
    this.maxBreakers =
      options.maxBreakers === undefined
        ? 10_000
        : integerOption(OWNER, 'maxBreakers', options.maxBreakers, 1);
    this.clock = options.clock === undefined ? undefined : checkClock(OWNER, options.clock);
    this.logger = options.logger === undefined ? undefined : loggerOption(OWNER, options.logger);
    if (options.defaults !== undefined) checkObject(OWNER, 'defaults', options.defaults);
    this.defaults = options.defaults ?? {};
    if (options.breakers !== undefined) checkObject(OWNER, 'breakers', options.breakers);
    this.perName = (options.breakers ?? {}) as Record<string, BreakerDefaults>;
    // Validate defaults and per-name options now, not at the first call that needs them.
    nestedOption(
      OWNER,
      'defaults',
      () => new CircuitBreaker({ ...this.defaults, name: 'defaults' }),
    );
    for (const name of Object.keys(this.perName)) {
      const own = this.perName[name];
      checkObject(OWNER, `breakers.${name}`, own);
      // A bad merged value is named by where it was set: the breaker's own options or the defaults.
      const origin = (path: string): string =>
        path.split('.')[0]! in own || !(path.split('.')[0]! in this.defaults)
          ? `breakers.${name}`
          : 'defaults';
      try {
        new CircuitBreaker(this.merge(name, undefined));
      } catch (error) {
        if (!isConfigError(error)) throw error;
        nestedOption(OWNER, origin(error.path), () => {
          throw error;
        });
      }
    }
  }

  /** Number of breakers held. */
  get size(): number {
    return this.breakers.size;
  }

  /**
   * Returns the breaker called `name`, creating it from the defaults, the per-name options and
   * `options` (in that order of precedence, last wins) when it does not exist yet. `options` are
   * ignored for an existing breaker.
   * @throws RegistryFullError when creating it would exceed `maxBreakers`
   * @throws ConfigError when the merged options are invalid
   */
  get(name: string, options?: BreakerDefaults): CircuitBreaker {
    const entry = this.breakers.get(name);
    if (entry !== undefined) return entry.breaker;
    if (this.breakers.size >= this.maxBreakers) throw new RegistryFullError(this.maxBreakers, name);
    if (options !== undefined && (typeof options !== 'object' || options === null)) {
      throw new ConfigError(OWNER, `get("${name}").options`, options, 'must be an object');
    }
    const breaker = new CircuitBreaker(this.merge(name, options));
    this.adopt(breaker);
    return breaker;
  }

  /**
   * Adds a breaker built elsewhere under its own name.
   * @throws ConfigError when a breaker of that name exists
   * @throws RegistryFullError when the registry is full
   */
  add(breaker: CircuitBreaker): CircuitBreaker {
    if (!isBranded(OWNER, 'add(breaker)', breaker, 'CircuitBreaker'))
      throw new ConfigError(OWNER, 'add(breaker)', breaker, 'must be a CircuitBreaker');
    if (this.breakers.has(breaker.name)) {
      throw new ConfigError(OWNER, 'add(breaker).name', breaker.name, 'is already registered');
    }
    if (this.breakers.size >= this.maxBreakers)
      throw new RegistryFullError(this.maxBreakers, breaker.name);
    this.adopt(breaker);
    return breaker;
  }

  /** The breaker called `name`, if any (never creates one). */
  find(name: string): CircuitBreaker | undefined {
    return this.breakers.get(name)?.breaker;
  }

  /** Whether a breaker called `name` exists. */
  has(name: string): boolean {
    return this.breakers.has(name);
  }

  /** Every breaker, in creation order. */
  list(): CircuitBreaker[] {
    return Array.from(this.breakers.values(), (entry) => entry.breaker);
  }

  /** A snapshot of every breaker, in creation order. */
  snapshot(): CircuitBreakerSnapshot[] {
    return Array.from(this.breakers.values(), (entry) => entry.breaker.snapshot());
  }

  /** Resets the breaker called `name`; returns whether it exists. */
  reset(name: string): boolean {
    const entry = this.breakers.get(name);
    entry?.breaker.reset();
    return entry !== undefined;
  }

  /** Resets every breaker. */
  resetAll(): void {
    for (const entry of this.breakers.values()) entry.breaker.reset();
  }

  /** Removes the breaker called `name`; returns whether it existed. */
  delete(name: string): boolean {
    const entry = this.breakers.get(name);
    if (entry === undefined) return false;
    entry.off();
    this.breakers.delete(name);
    this.listeners.emit('remove', { breaker: entry.breaker });
    return true;
  }

  /** Subscribes to an event; returns the function that unsubscribes. */
  on<K extends keyof CircuitBreakerRegistryEvents>(
    event: K,
    listener: (event: CircuitBreakerRegistryEvents[K]) => void,
  ): () => void {
    return this.listeners.add(event, listener);
  }

  private adopt(breaker: CircuitBreaker): void {
    const name = breaker.name;
    const off = breaker.on('stateChange', (change) => {
      if (this.listeners.has('stateChange'))
        this.listeners.emit('stateChange', { breaker: name, ...change });
    });
    this.breakers.set(name, { breaker, off });
    this.listeners.emit('add', { breaker });
  }

  private merge(name: string, options: BreakerDefaults | undefined): CircuitBreakerOptions {
    const merged: CircuitBreakerOptions = {
      ...this.defaults,
      ...this.perName[name],
      ...options,
      name,
    };
    if (merged.clock === undefined && this.clock !== undefined) merged.clock = this.clock;
    if (merged.logger === undefined && this.logger !== undefined) merged.logger = this.logger;
    return merged;
  }
}
brand(CircuitBreakerRegistry, 'CircuitBreakerRegistry');
