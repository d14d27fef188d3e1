import { ConfigError } from '../errors';
import { checkKnownKeys, checkObject } from '../internal/validate';
import type { RateLimiter, RateLimiterOptions } from '../rate-limit/rate-limiter';
import type { RateLimitHeaderOptions, RateLimitHeadersDraft } from './rate-limit-headers';

/** A 429 body: text, or a value sent as JSON. */
export type RateLimitMessage = string | Record<string, unknown> | unknown[];

/**
 * Options of the `rateLimit()` middleware of every HTTP adapter. `Req` is what the hooks receive
 * (Express `req`, Koa `ctx`), `Res` the second argument of `requestWasSuccessful`, `Handler` the
 * adapter's 429 handler type.
 */
export interface HttpRateLimitOptions<
  Req = unknown,
  Res = unknown,
  Handler = never,
> extends Partial<RateLimiterOptions> {
  /** A limiter built elsewhere; otherwise one is built from the other options. */
  limiter?: RateLimiter;
  /**
   * The key a request counts under. @defaultValue the client address (honouring trust proxy),
   * IPv6 grouped by `ipv6Subnet`
   */
  key?: (req: Req) => string | Promise<string>;
  /** Requests for which this returns true are not counted and get no headers. @defaultValue none */
  skip?: (req: Req) => boolean | Promise<boolean>;
  /** What a request costs. @defaultValue 1 */
  cost?: (req: Req) => number | Promise<number>;
  /**
   * Which headers to send: a draft name (`'draft-11'`, `'draft-8'`, `'draft-7'`, `'draft-6'`),
   * `false` for none, or `{ standard, legacy }` (`legacy` adds `X-RateLimit-*`).
   * @defaultValue `'draft-11'` without the legacy headers
   */
  headers?: RateLimitHeaderOptions | RateLimitHeadersDraft | boolean;
  /** Status of a refused request. @defaultValue 429 */
  statusCode?: number;
  /**
   * Body of a refused request: a string (sent as text/plain), a value sent as JSON, or a function
   * of the request returning either (sync or async). @defaultValue an `application/problem+json`
   * body naming the limiter
   */
  message?: RateLimitMessage | ((req: Req) => RateLimitMessage | Promise<RateLimitMessage>);
  /**
   * The adapter's handler that answers a refused request instead of `message` / `statusCode`
   * (the rate-limit headers and `Retry-After` are already set). One that throws or rejects is
   * logged and the default answer is sent.
   * @defaultValue none
   */
  handler?: Handler;
  /** Give back a request's cost when it succeeds (see `requestWasSuccessful`). @defaultValue false */
  skipSuccessfulRequests?: boolean;
  /**
   * Give back a request's cost when it fails (status >= 400, a thrown error, or a client that goes
   * away first). @defaultValue false
   */
  skipFailedRequests?: boolean;
  /** Whether a finished request succeeded. @defaultValue `status < 400` */
  requestWasSuccessful?: (req: Req, res: Res) => boolean | Promise<boolean>;
  /**
   * The prefix length IPv6 client addresses are grouped by for the default key (a client usually
   * holds a /64 or more); `false` keeps whole addresses. IPv4-mapped addresses always count as
   * their IPv4 address. @defaultValue 56
   */
  ipv6Subnet?: number | false;
  /**
   * Where the adapter puts each decision for the next handlers: `req[name]` on Express,
   * `ctx.state[name]` on Koa; `false` shares it nowhere (on Express that saves about 2 µs per
   * request). A name is letters, digits, `_` or `$`, not starting with a digit, up to 64
   * characters. @defaultValue `'rateLimit'`
   */
  requestPropertyName?: string | false;
}

/**
 * {@link HttpRateLimitOptions} whose `limit` may also be a function of the request (what the
 * Express and Koa middleware take).
 */
export interface DynamicHttpRateLimitOptions<
  Req = unknown,
  Res = unknown,
  Handler = never,
> extends Omit<HttpRateLimitOptions<Req, Res, Handler>, 'limit'> {
  /**
   * Requests (or cost units) per window, or a function of the request (sync or async) for limits
   * that depend on the client, e.g. its plan. Every limit counts in the same store under the same
   * name, so a key's count carries over when its limit changes. A function that throws or returns
   * something else than an integer >= 1 lets the request through (at most 100 distinct limits).
   */
  limit?: number | ((req: Req) => number | Promise<number>);
}

const OWNER = 'rateLimit';
const HEADER_KEYS = ['standard', 'legacy'] as const;
const DRAFTS: readonly RateLimitHeadersDraft[] = ['draft-11', 'draft-8', 'draft-7', 'draft-6'];

const PROPERTY_NAME = /^[A-Za-z_$][\w$]{0,63}$/;
const RESERVED_NAMES: readonly string[] = ['__proto__', 'constructor', 'prototype'];

/** The `requestPropertyName` option: a property name, or undefined for `false`. @internal */
export function requestPropertyOption(value: unknown): string | undefined {
  if (value === undefined) return 'rateLimit';
  if (value === false) return undefined;
  if (typeof value === 'string' && PROPERTY_NAME.test(value) && !RESERVED_NAMES.includes(value)) {
    return value;
  }
  throw new ConfigError(
    OWNER,
    'requestPropertyName',
    value,
    "must be false or a property name (letters, digits, _ or $, not starting with a digit, up to 64 characters; not '__proto__', 'constructor' or 'prototype')",
  );
}

/** An optional boolean option (`undefined` is false). @internal */
export function booleanOption(path: string, value: unknown): boolean {
  if (value === undefined) return false;
  if (typeof value !== 'boolean') throw new ConfigError(OWNER, path, value, 'must be a boolean');
  return value;
}

/** The `headers` option: `true`, `false`, a draft name, or `{ standard, legacy }`. @internal */
export function headerOption(value: unknown): RateLimitHeaderOptions {
  if (value === undefined || value === true) return {};
  if (value === false) return { standard: false };
  if (typeof value === 'string') {
    if (!(DRAFTS as readonly string[]).includes(value)) {
      throw new ConfigError(OWNER, 'headers', value, `must be one of ${DRAFTS.join(', ')}`);
    }
    return { standard: value as RateLimitHeadersDraft };
  }
  checkObject(OWNER, 'headers', value);
  checkKnownKeys(OWNER, 'headers', value, HEADER_KEYS);
  const { standard, legacy } = value;
  if (
    standard !== undefined &&
    typeof standard !== 'boolean' &&
    !(DRAFTS as readonly unknown[]).includes(standard)
  ) {
    throw new ConfigError(OWNER, 'headers.standard', standard, 'must be a boolean or a draft name');
  }
  if (legacy !== undefined && typeof legacy !== 'boolean')
    throw new ConfigError(OWNER, 'headers.legacy', legacy, 'must be a boolean');
  return value;
}
