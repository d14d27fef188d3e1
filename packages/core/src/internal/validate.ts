import { ConfigError, isConfigError } from '../errors';

/**
 * Builds a nested part of an object's options; a ConfigError it throws is rethrown with the path
 * of the nested object in front (`budget.ratio`, `defaults.failureThreshold`).
 */
export function nestedOption<T>(owner: string, prefix: string, build: () => T): T {
  try {
    return build();
  } catch (error) {
    if (!isConfigError(error)) throw error;
    const inner = error.path;
    const path =
      inner === 'options' || inner === ''
        ? prefix
        : inner === prefix || inner.startsWith(`${prefix}.`)
          ? inner
          : `${prefix}.${inner}`;
    throw new ConfigError(owner, path, error.value, error.expected ?? 'is invalid');
  }
}

/** Throws unless `value` is a plain object (or undefined when optional). */
export function checkObject(
  owner: string,
  path: string,
  value: unknown,
): asserts value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new ConfigError(owner, path, value, 'must be an object');
  }
}

export function integerOption(
  owner: string,
  path: string,
  value: unknown,
  min: number,
  max = Number.MAX_SAFE_INTEGER,
): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    const range = max === Number.MAX_SAFE_INTEGER ? `>= ${min}` : `from ${min} to ${max}`;
    throw new ConfigError(owner, path, value, `must be an integer ${range}`);
  }
  return value;
}

export function numberOption(
  owner: string,
  path: string,
  value: unknown,
  min: number,
  max: number,
  minExclusive = false,
): number {
  if (
    typeof value !== 'number' ||
    !Number.isFinite(value) ||
    value > max ||
    (minExclusive ? value <= min : value < min)
  ) {
    throw new ConfigError(
      owner,
      path,
      value,
      `must be a number ${minExclusive ? 'above' : 'from'} ${min}${minExclusive ? ' and at most' : ' to'} ${max}`,
    );
  }
  return value;
}

export function percentOption(owner: string, path: string, value: unknown): number {
  return numberOption(owner, path, value, 0, 100, true);
}

export function functionOption<F extends (...args: never[]) => unknown>(
  owner: string,
  path: string,
  value: unknown,
): F {
  if (typeof value !== 'function') throw new ConfigError(owner, path, value, 'must be a function');
  return value as F;
}

export function stringOption(owner: string, path: string, value: unknown, maxLength = 200): string {
  if (typeof value !== 'string' || value.length === 0 || value.length > maxLength) {
    throw new ConfigError(
      owner,
      path,
      value,
      `must be a non-empty string of at most ${maxLength} characters`,
    );
  }
  return value;
}

export function oneOf<T extends string>(
  owner: string,
  path: string,
  value: unknown,
  allowed: readonly T[],
): T {
  if (typeof value !== 'string' || !(allowed as readonly string[]).includes(value)) {
    throw new ConfigError(
      owner,
      path,
      value,
      `must be one of ${allowed.map((a) => `'${a}'`).join(', ')}`,
    );
  }
  return value as T;
}

/** Rejects keys that the options type does not know (catches typos such as `failureTreshold`). */
export function checkKnownKeys(
  owner: string,
  prefix: string,
  value: Record<string, unknown>,
  known: readonly string[],
): void {
  for (const key of Object.keys(value)) {
    if (!known.includes(key)) {
      throw new ConfigError(
        owner,
        prefix ? `${prefix}.${key}` : key,
        value[key],
        'is not a known option',
      );
    }
  }
}

export function checkClock(owner: string, value: unknown): { now(): number } {
  if (
    typeof value !== 'object' ||
    value === null ||
    typeof (value as { now?: unknown }).now !== 'function'
  ) {
    throw new ConfigError(owner, 'clock', value, 'must be an object with a now() method');
  }
  return value as { now(): number };
}
