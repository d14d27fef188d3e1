import { ConfigError } from '../errors';
import { checkObject, checkKnownKeys, functionOption } from '../internal/validate';
import { RateLimiter, type RateLimiterOptions } from '../rate-limit/rate-limiter';
import { rateLimitedResponse, type HttpResponse } from './http-response';
import { rateLimitHeaders, type RateLimitHeaderOptions } from './rate-limit-headers';

/** Options of the `rateLimit()` middleware of every HTTP adapter. */
export interface HttpRateLimitOptions<Req = unknown> extends Partial<RateLimiterOptions> {
  /** A limiter built elsewhere; otherwise one is built from the other options. */
  limiter?: RateLimiter;
  /** The key a request counts under. @defaultValue the client address (honouring trust proxy) */
  key?: (req: Req) => string | Promise<string>;
  /** Requests for which this returns true are not counted and get no headers. @defaultValue none */
  skip?: (req: Req) => boolean | Promise<boolean>;
  /** What a request costs. @defaultValue 1 */
  cost?: (req: Req) => number | Promise<number>;
  /** Which headers to send. @defaultValue `{ standard: true, legacy: false }` */
  headers?: RateLimitHeaderOptions;
}

/** The verdict for one request: headers to set, and the 429 answer when refused. */
export interface HttpRateLimitVerdict {
  headers: Record<string, string>;
  /** Present when the request is refused. */
  refusal?: HttpResponse;
}

const OWNER = 'rateLimit';
const HEADER_KEYS = ['standard', 'legacy'] as const;

/**
 * The framework-free part of the `rateLimit()` middleware: resolves the key, the cost and the
 * skip rule, consumes from the limiter and returns the headers and, when refused, the 429 answer.
 * A limiter or hook that fails lets the request through without headers: our failure never
 * becomes a 500.
 *
 * @throws ConfigError at construction when an option is invalid
 */
export class HttpRateLimit<Req = unknown> {
  /** The limiter decisions come from. */
  readonly limiter: RateLimiter;
  private readonly key: ((req: Req) => string | Promise<string>) | undefined;
  private readonly skip: ((req: Req) => boolean | Promise<boolean>) | undefined;
  private readonly cost: ((req: Req) => number | Promise<number>) | undefined;
  private readonly headerOptions: RateLimitHeaderOptions;

  constructor(input: HttpRateLimitOptions<Req> | RateLimiter) {
    if (input instanceof RateLimiter) {
      this.limiter = input;
      this.headerOptions = {};
      return;
    }
    checkObject(OWNER, 'options', input);
    const { limiter, key, skip, cost, headers, ...limiterOptions } = input;
    if (limiter !== undefined) {
      if (!(limiter instanceof RateLimiter))
        throw new ConfigError(OWNER, 'limiter', limiter, 'must be a RateLimiter');
      const extra = Object.keys(limiterOptions);
      if (extra.length > 0) {
        throw new ConfigError(
          OWNER,
          extra[0]!,
          limiterOptions[extra[0] as keyof typeof limiterOptions],
          'cannot be combined with limiter',
        );
      }
      this.limiter = limiter;
    } else {
      this.limiter = new RateLimiter({ name: 'http', ...limiterOptions });
    }
    this.key =
      key === undefined ? undefined : functionOption<(req: Req) => string>(OWNER, 'key', key);
    this.skip =
      skip === undefined ? undefined : functionOption<(req: Req) => boolean>(OWNER, 'skip', skip);
    this.cost =
      cost === undefined ? undefined : functionOption<(req: Req) => number>(OWNER, 'cost', cost);
    const headerOptions = headers ?? {};
    checkObject(OWNER, 'headers', headerOptions);
    checkKnownKeys(OWNER, 'headers', headerOptions, HEADER_KEYS);
    for (const name of HEADER_KEYS) {
      const value = headerOptions[name];
      if (value !== undefined && typeof value !== 'boolean')
        throw new ConfigError(OWNER, `headers.${name}`, value, 'must be a boolean');
    }
    this.headerOptions = headerOptions;
  }

  /**
   * Decides one request. `address` is the client address the adapter resolved (honouring its
   * framework's trust-proxy setting); it is the key unless a `key` function is given.
   * @returns `undefined` when the request is skipped or the decision could not be made
   */
  async decide(req: Req, address: string | undefined): Promise<HttpRateLimitVerdict | undefined> {
    try {
      if (this.skip !== undefined && (await this.skip(req))) return undefined;
      const key = this.key === undefined ? (address ?? 'unknown') : await this.key(req);
      const cost = this.cost === undefined ? 1 : await this.cost(req);
      if (typeof key !== 'string')
        throw new TypeError(`key() returned ${typeof key}, not a string`);
      if (typeof cost !== 'number' || !(cost >= 0))
        throw new TypeError(`cost() returned ${String(cost)}`);
      const decision = await this.limiter.consume(key, cost);
      const limiter = this.limiter;
      const headers = rateLimitHeaders(
        limiter.name,
        limiter.rule.windowMs,
        decision,
        this.headerOptions,
      );
      return decision.allowed
        ? { headers }
        : { headers, refusal: rateLimitedResponse(limiter.name, decision) };
    } catch (error) {
      this.warnOnce(error);
      return undefined;
    }
  }

  private warned = false;

  private warnOnce(error: unknown): void {
    if (this.warned) return;
    this.warned = true;
    const reason = error instanceof Error ? error.message : String(error);
    process.emitWarning(
      `rateLimit: a request was let through because its decision failed (${reason}); further failures are not reported`,
      { code: 'BREAKWATER_RATE_LIMIT_DECISION' },
    );
  }
}
