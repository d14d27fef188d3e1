import { ConfigError } from '@breakwater/core';

const MAX_PREFIX_LENGTH = 200;

/** Throws unless `options` is a plain object whose keys are all in `known`. */
export function checkOptions(owner: string, options: unknown, known: readonly string[]): void {
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    throw new ConfigError(owner, 'options', options, 'must be an object');
  }
  for (const name of Object.keys(options)) {
    if (!known.includes(name)) {
      throw new ConfigError(
        owner,
        name,
        (options as Record<string, unknown>)[name],
        'is not a known option',
      );
    }
  }
}

/**
 * A key prefix: a string of at most 200 characters, without `{` or `}` when a hash tag follows
 * it (the prefix would become the hash tag).
 */
export function prefixOption(
  owner: string,
  value: unknown,
  fallback: string,
  hashTag: boolean,
): string {
  const prefix = value ?? fallback;
  if (typeof prefix !== 'string' || prefix.length > MAX_PREFIX_LENGTH) {
    throw new ConfigError(
      owner,
      'prefix',
      prefix,
      `must be a string of at most ${MAX_PREFIX_LENGTH} characters`,
    );
  }
  if (hashTag && (prefix.includes('{') || prefix.includes('}'))) {
    throw new ConfigError(
      owner,
      'prefix',
      prefix,
      'must not contain "{" or "}" (the hash tag follows the prefix)',
    );
  }
  return prefix;
}

/** Checks by shape that `value` is an ioredis client (Redis or Cluster) with `methods`. */
export function clientOption<T>(
  owner: string,
  path: string,
  value: unknown,
  methods: readonly string[],
): T {
  const client = value as Record<string, unknown> | null;
  if (
    typeof client !== 'object' ||
    client === null ||
    typeof client.status !== 'string' ||
    methods.some((method) => typeof client[method] !== 'function')
  ) {
    throw new ConfigError(
      owner,
      path,
      value,
      'must be an ioredis client (Redis or Cluster instance)',
    );
  }
  return value as T;
}

/**
 * `text` made safe as the content of a Redis Cluster hash tag: `%` and `}` are percent-encoded
 * (a `}` would end the tag early, and an empty tag hashes the whole key, so two keys of one name
 * would land in different slots), and an empty text becomes `%` (which no encoded text equals).
 * Text without either character is returned as it is.
 */
export function hashTagContent(text: string): string {
  if (text === '') return '%';
  if (!text.includes('}') && !text.includes('%')) return text;
  return text.replace(/[%}]/g, (c) => (c === '%' ? '%25' : '%7D'));
}
