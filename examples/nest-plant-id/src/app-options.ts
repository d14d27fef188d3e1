/** Settings of the plant identification application, checked once when the module is built. */
import { ConfigError, systemClock, type Clock } from '@breakwater/core';

/** Options of `AppModule.register()`. */
export interface PlantIdAppOptions {
  /** Base URL of the Plant.id-like API (paid, monthly quota). */
  plantIdUrl: string;
  /** Base URL of the PlantNet-like API (free, daily quota). */
  plantNetUrl: string;
  /** API key sent to both providers. */
  apiKey: string;
  /** Time source of the breakers and the result cache. @defaultValue `systemClock` */
  clock?: Clock;
  /** How long a complete answer stays cached. @defaultValue 30 minutes */
  cacheTtlMs?: number;
  /** Most answers the cache keeps; the oldest goes first. @defaultValue 1000 */
  cacheMaxEntries?: number;
  /** Per-call limit of the Plant.id API. @defaultValue 35 000 */
  plantIdTimeoutMs?: number;
  /** Per-call limit of the PlantNet API. @defaultValue 20 000 */
  plantNetTimeoutMs?: number;
}

/** {@link PlantIdAppOptions} with every default applied. */
export type ResolvedAppOptions = Required<PlantIdAppOptions>;

/** Injection token of the {@link ResolvedAppOptions}. */
export const APP_OPTIONS = Symbol('plant-id-app:options');

const OWNER = 'AppModule';

/**
 * Applies the defaults and checks every option.
 * @throws ConfigError naming the first invalid option
 */
export function resolveAppOptions(options: PlantIdAppOptions): ResolvedAppOptions {
  return {
    plantIdUrl: url('plantIdUrl', options.plantIdUrl),
    plantNetUrl: url('plantNetUrl', options.plantNetUrl),
    apiKey: text('apiKey', options.apiKey),
    clock: clock(options.clock ?? systemClock),
    cacheTtlMs: positive('cacheTtlMs', options.cacheTtlMs ?? 30 * 60_000),
    cacheMaxEntries: positive('cacheMaxEntries', options.cacheMaxEntries ?? 1_000),
    plantIdTimeoutMs: positive('plantIdTimeoutMs', options.plantIdTimeoutMs ?? 35_000),
    plantNetTimeoutMs: positive('plantNetTimeoutMs', options.plantNetTimeoutMs ?? 20_000),
  };
}

function url(path: string, value: unknown): string {
  if (typeof value === 'string' && URL.canParse(value)) return value.replace(/\/+$/, '');
  throw new ConfigError(OWNER, path, value, 'must be an absolute URL');
}

function text(path: string, value: unknown): string {
  if (typeof value === 'string' && value !== '') return value;
  throw new ConfigError(OWNER, path, value, 'must be a non-empty string');
}

function positive(path: string, value: unknown): number {
  if (typeof value === 'number' && Number.isInteger(value) && value > 0) return value;
  throw new ConfigError(OWNER, path, value, 'must be a positive integer');
}

function clock(value: unknown): Clock {
  if (typeof (value as Clock | null)?.now === 'function') return value as Clock;
  throw new ConfigError(OWNER, 'clock', value, 'must have a now() method');
}
