import { ConfigError, isConfigError } from '@breakwater/core';

/** Throws unless `value` is a plain object (not an array, not null). */
export function checkObject(owner: string, path: string, value: unknown): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new ConfigError(owner, path, value, 'must be an object');
  }
  return value as Record<string, unknown>;
}

/** Throws on the first key of `value` that is not in `known`. */
export function checkKnownKeys(
  owner: string,
  path: string,
  value: Record<string, unknown>,
  known: readonly string[],
): void {
  for (const key of Object.keys(value)) {
    if (!known.includes(key)) {
      const at = path === '' ? key : `${path}.${key}`;
      throw new ConfigError(owner, at, value[key], `is not a known option (${known.join(', ')})`);
    }
  }
}

/** Throws unless `value` is a non-empty string. */
export function checkName(owner: string, path: string, value: unknown): string {
  if (typeof value !== 'string' || value === '') {
    throw new ConfigError(owner, path, value, 'must be a non-empty string');
  }
  return value;
}

/** Throws unless `value` is a string; returns it as a normalised route path. */
export function checkPath(owner: string, path: string, value: unknown): string {
  if (typeof value !== 'string') throw new ConfigError(owner, path, value, 'must be a string');
  return normalizePath(value);
}

/** Throws unless `value` is an array. */
export function checkArray(owner: string, path: string, value: unknown): readonly unknown[] {
  if (!Array.isArray(value)) throw new ConfigError(owner, path, value, 'must be an array');
  return value;
}

/** Normalises a route path to `/a/b` (leading slash, no trailing slash). */
export function normalizePath(path: string): string {
  const trimmed = path.replace(/^\/+|\/+$/g, '');
  return `/${trimmed}`;
}

/**
 * Runs `build` and rethrows a `ConfigError` it throws with the option's full path: `prefix`
 * joined to the inner path (`limiters.login` + `rate` → `limiters.login.rate`). `rename` maps an
 * inner path that does not match the outer name (core's `basePath` is the module's `path`).
 */
export function nested<T>(
  owner: string,
  prefix: string,
  build: () => T,
  rename: Readonly<Record<string, string>> = {},
): T {
  try {
    return build();
  } catch (error) {
    if (!isConfigError(error)) throw error;
    const inner = rename[error.path] ?? error.path;
    const path = inner === '' || inner === 'options' ? prefix : `${prefix}.${inner}`;
    throw new ConfigError(owner, path, error.value, error.expected);
  }
}

/**
 * Runs `build` and rethrows a `ConfigError` it throws as one of `decorator` at
 * `<where>.<inner path>` (`@RateLimit: option "Api.login.rate" is invalid (...)`).
 */
export function nestedDecorator<T>(decorator: string, where: string, build: () => T): T {
  try {
    return build();
  } catch (error) {
    if (!isConfigError(error)) throw error;
    throw new ConfigError(
      decorator,
      `${where}.${error.path}`,
      error.value,
      `is invalid (${error.message})`,
    );
  }
}
