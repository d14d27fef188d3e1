import { isBranded } from '../brand';
import { ConfigError } from '../errors';
import { log, loggerOption, type Logger } from '../internal/log';
import { checkObject, functionOption, integerOption } from '../internal/validate';
import { RateLimiter, type RateLimiterOptions } from '../rate-limit/rate-limiter';
import type { RateLimitDecision } from '../rate-limit/rate-limit-store';
import { addressKey } from './client-address';
import {
  booleanOption,
  headerOption,
  requestPropertyOption,
  type DynamicHttpRateLimitOptions,
  type HttpRateLimitOptions,
  type RateLimitMessage,
} from './http-rate-limit-options';
import { HookErrors } from './hook-errors';
import {
  problemResponse,
  rateLimitedResponse,
  retryAfterSeconds,
  type HttpResponse,
} from './http-response';
import {
  RateLimitHeaderWriter,
  recordTarget,
  type HeaderTarget,
  type RateLimitHeaderOptions,
} from './rate-limit-headers';

/** The verdict for one request: headers to set, and the answer when refused. */
export interface HttpRateLimitVerdict {
  headers: Record<string, string>;
  /** Present when the request is refused. */
  refusal?: HttpResponse;
}

/** One limit in use: its limiter and header writer. */
class Lane {
  readonly writer: RateLimitHeaderWriter;
  constructor(
    readonly limiter: RateLimiter,
    headers: RateLimitHeaderOptions,
  ) {
    const rule = limiter.rule;
    const capacity = rule.algorithm === 'token-bucket' ? rule.burst : rule.limit;
    this.writer = new RateLimitHeaderWriter(rule.name, rule.windowMs, capacity, headers);
  }
}

/**
 * The rate-limit decision on a request, as express-rate-limit's `req.rateLimit` has it (`limit`,
 * `used`, `remaining`, `resetTime`, `key`) plus the limiter's name and the decision's details.
 * Adapters put it on `req.rateLimit` (Express) and `ctx.state.rateLimit` (Koa).
 */
export class RateLimitInfo {
  /** The limiter's name. */
  readonly limiter: string;
  /** Whether the request was allowed. */
  readonly allowed: boolean;
  /** The limit (the bucket capacity for a token bucket). */
  readonly limit: number;
  /** What is left after this request. */
  readonly remaining: number;
  /** Milliseconds until the quota is fully available again. */
  readonly resetMs: number;
  /** Milliseconds until a refused request could be allowed (0 when allowed). */
  readonly retryAfterMs: number;
  /** @internal */
  readonly lane: Lane;

  constructor(
    lane: Lane,
    /** The key the request counted under. */
    readonly key: string,
    /** What the request cost. */
    readonly cost: number,
    decision: RateLimitDecision,
  ) {
    this.lane = lane;
    this.limiter = lane.limiter.name;
    this.allowed = decision.allowed;
    this.limit = decision.limit;
    this.remaining = decision.remaining;
    this.resetMs = decision.resetMs;
    this.retryAfterMs = decision.retryAfterMs;
  }

  /** What the key has used of the limit. */
  get used(): number {
    return this.limit - this.remaining;
  }

  /** When the quota is fully available again (`resetMs` from now: read it while handling). */
  get resetTime(): Date {
    return new Date(Date.now() + this.resetMs);
  }
}

export type {
  DynamicHttpRateLimitOptions,
  HttpRateLimitOptions,
  RateLimitMessage,
} from './http-rate-limit-options';

const OWNER = 'rateLimit';
/** Options of the middleware that are not limiter options. */
const OWN_KEYS = [
  'limiter',
  'key',
  'skip',
  'cost',
  'headers',
  'statusCode',
  'message',
  'handler',
  'skipSuccessfulRequests',
  'skipFailedRequests',
  'requestWasSuccessful',
  'ipv6Subnet',
  'requestPropertyName',
] as const;
/** Most distinct limits a `limit(req)` function may use (each one is a limiter). */
const MAX_LANES = 100;

type Hook<Req, T> = (req: Req) => T | Promise<T>;

/**
 * The framework-free part of the `rateLimit()` middleware: resolves the key, the cost, the limit
 * and the skip rule, consumes from the limiter, writes the headers, builds the refusal and gives
 * back the cost of requests `skipSuccessfulRequests` / `skipFailedRequests` leave out. A limiter
 * or hook that fails lets the request through without headers and reaches the logger: our
 * failure never becomes a 500.
 *
 * @throws ConfigError at construction when an option is invalid
 */
export class HttpRateLimit<Req = unknown, Res = unknown, Handler = never> {
  /** The limiter decisions come from (with `limit(req)`, the one the other limits derive from). */
  readonly limiter: RateLimiter;
  /** The adapter's 429 handler, if one was given. */
  readonly handler: Handler | undefined;
  /** Whether a request's outcome must be reported through {@link settle}. */
  readonly settles: boolean;
  /** Whether the default key (the client address) is used. */
  readonly byAddress: boolean;
  /** The property the adapter puts each decision on (`requestPropertyName`); undefined: none. */
  readonly requestProperty: string | undefined;
  /** Where failing hooks are reported. @internal */
  readonly hookErrors: HookErrors;
  private readonly key: Hook<Req, string> | undefined;
  private readonly skip: Hook<Req, boolean> | undefined;
  private readonly cost: Hook<Req, number> | undefined;
  private readonly limitOf: Hook<Req, number> | undefined;
  private readonly headerOptions: RateLimitHeaderOptions;
  private readonly lane: Lane;
  private readonly lanes = new Map<number, Lane>();
  private readonly simple: boolean;
  private readonly statusCode: number;
  private readonly message: RateLimitMessage | Hook<Req, RateLimitMessage> | undefined;
  private readonly skipSuccessful: boolean;
  private readonly skipFailed: boolean;
  private readonly wasSuccessful: ((req: Req, res: Res) => boolean | Promise<boolean>) | undefined;
  private readonly ipv6Subnet: number | false;
  private readonly logger: Logger | undefined;
  private readonly derive: ((limit: number) => RateLimiter) | undefined;
  private forwardedWarned = false;

  constructor(
    input:
      | HttpRateLimitOptions<Req, Res, Handler>
      | DynamicHttpRateLimitOptions<Req, Res, Handler>
      | RateLimiter,
  ) {
    if (isBranded(OWNER, 'options', input, 'RateLimiter')) input = { limiter: input };
    checkObject(OWNER, 'options', input);
    const own: Record<string, unknown> = {};
    const limiterOptions: Record<string, unknown> = {};
    for (const name of Object.keys(input)) {
      const value = input[name];
      if ((OWN_KEYS as readonly string[]).includes(name)) own[name] = value;
      else limiterOptions[name] = value;
    }
    const options = input as DynamicHttpRateLimitOptions<Req, Res, Handler>;
    const limitFn = typeof options.limit === 'function' ? options.limit : undefined;
    if (limitFn !== undefined) delete limiterOptions.limit;
    const { limiter } = options;
    this.logger = options.logger === undefined ? undefined : loggerOption(OWNER, options.logger);
    if (limiter !== undefined) {
      if (!isBranded(OWNER, 'limiter', limiter, 'RateLimiter'))
        throw new ConfigError(OWNER, 'limiter', limiter, 'must be a RateLimiter');
      // With a limiter given, `logger` only receives the middleware's own lines (failing hooks).
      const extra = Object.keys(limiterOptions).filter((key) => key !== 'logger');
      if (extra.length > 0) {
        throw new ConfigError(
          OWNER,
          extra[0]!,
          limiterOptions[extra[0]!],
          'cannot be combined with limiter',
        );
      }
      this.limiter = limiter;
    } else {
      this.limiter = new RateLimiter({
        name: 'http',
        ...(limiterOptions as Partial<RateLimiterOptions>),
        ...(limitFn === undefined ? {} : { limit: 1 }),
      });
    }
    const hook = <T>(name: string, value: unknown): Hook<Req, T> | undefined =>
      value === undefined ? undefined : functionOption<Hook<Req, T>>(OWNER, name, value);
    this.key = hook('key', own.key);
    this.skip = hook('skip', own.skip);
    this.cost = hook('cost', own.cost);
    this.limitOf = limitFn;
    this.wasSuccessful = hook('requestWasSuccessful', own.requestWasSuccessful);
    this.handler = hook('handler', own.handler) as Handler | undefined;
    this.headerOptions = headerOption(own.headers);
    this.statusCode =
      own.statusCode === undefined
        ? 429
        : integerOption(OWNER, 'statusCode', own.statusCode, 400, 599);
    const message = own.message;
    if (
      message !== undefined &&
      typeof message !== 'string' &&
      typeof message !== 'function' &&
      (typeof message !== 'object' || message === null)
    ) {
      throw new ConfigError(OWNER, 'message', message, 'must be a string, an object or a function');
    }
    this.message = message as HttpRateLimit<Req, Res>['message'];
    this.skipSuccessful = booleanOption('skipSuccessfulRequests', own.skipSuccessfulRequests);
    this.skipFailed = booleanOption('skipFailedRequests', own.skipFailedRequests);
    this.settles = this.skipSuccessful || this.skipFailed;
    const subnet = own.ipv6Subnet;
    this.ipv6Subnet =
      subnet === undefined
        ? 56
        : subnet === false
          ? false
          : integerOption(OWNER, 'ipv6Subnet', subnet, 1, 128);
    this.byAddress = this.key === undefined;
    this.requestProperty = requestPropertyOption(own.requestPropertyName);
    this.simple =
      this.key === undefined &&
      this.skip === undefined &&
      this.cost === undefined &&
      this.limitOf === undefined;
    this.lane = new Lane(this.limiter, this.headerOptions);
    this.hookErrors = new HookErrors('RATELIMIT', this.limiter.name, this.logger);
    if (limitFn !== undefined) {
      const base = this.limiter;
      const { rule } = base;
      const burst: number | undefined = options.burst;
      this.derive = (limit) =>
        new RateLimiter({
          name: rule.name,
          algorithm: rule.algorithm,
          limit,
          window: rule.windowMs,
          ...(rule.algorithm === 'token-bucket' ? { burst: burst ?? limit } : {}),
          blockDurationMs: rule.blockDurationMs,
          store: base.store,
          onStoreFailure: base.onStoreFailure,
          ...(base.fallbackStore === undefined ? {} : { fallbackStore: base.fallbackStore }),
          ...(base.breaker === undefined
            ? {}
            : { breaker: base.breaker, storeTimeoutMs: base.storeTimeoutMs }),
        });
    }
  }

  /**
   * Decides one request and returns its {@link RateLimitInfo}, synchronously when it can (no
   * hooks and a memory store), else as a promise. `address` is the client address the adapter
   * resolved (honouring its framework's trust-proxy setting), the key unless `key` is given.
   * @returns `undefined` when the request is skipped or the decision could not be made
   */
  decideNow(
    req: Req,
    address: string | undefined,
  ): RateLimitInfo | undefined | Promise<RateLimitInfo | undefined> {
    if (this.simple) {
      const key = address === undefined ? 'unknown' : addressKey(address, this.ipv6Subnet);
      const decision = this.limiter.consumeNow(key, 1);
      if (decision !== undefined) return new RateLimitInfo(this.lane, key, 1, decision);
    }
    return this.decideLater(req, address);
  }

  /** Writes the request's rate-limit headers to `target` (after other limiters' headers). */
  writeHeaders(target: HeaderTarget, info: RateLimitInfo): void {
    info.lane.writer.write(target, info);
  }

  /** The names of the headers {@link writeHeaders} may set (to carry them onto an error). */
  headerNames(info: RateLimitInfo): readonly string[] {
    return info.lane.writer.names;
  }

  /** The answer to a refused request: `message` and `statusCode`, or the problem+json 429. */
  refusal(req: Req, info: RateLimitInfo): HttpResponse | Promise<HttpResponse> {
    const message = this.message;
    if (typeof message !== 'function') return this.refusalWith(info, message);
    try {
      const value = message(req);
      if (!isPromiseLike(value)) return this.refusalWith(info, value);
      return Promise.resolve(value).then(
        (resolved) => this.refusalWith(info, resolved),
        (error: unknown) => this.refusalAfterHookError('message', error, info),
      );
    } catch (error) {
      return this.refusalAfterHookError('message', error, info);
    }
  }

  /**
   * Reports how an allowed request ended, and gives its cost back when `skipSuccessfulRequests`
   * or `skipFailedRequests` leaves it out. `finished` is false when the client went away first;
   * `res` is passed to `requestWasSuccessful`. Never throws.
   */
  settle(req: Req, res: Res, info: RateLimitInfo, finished: boolean, status: number): void {
    if (!this.settles || !info.allowed || info.cost === 0) return;
    if (!finished || this.wasSuccessful === undefined) {
      this.refundIf(info, finished && status < 400);
      return;
    }
    try {
      const ok = this.wasSuccessful(req, res);
      if (!isPromiseLike(ok)) return this.refundIf(info, ok);
      Promise.resolve(ok).then(
        (value) => this.refundIf(info, value),
        (error: unknown) =>
          this.hookErrors.report('requestWasSuccessful', error, 'the request stays counted'),
      );
    } catch (error) {
      this.hookErrors.report('requestWasSuccessful', error, 'the request stays counted');
    }
  }

  /**
   * Warns once that `X-Forwarded-For` arrived while the framework does not trust proxies: every
   * client behind the proxy then shares the proxy's address as its key. Adapters call it only
   * while {@link watchingForwarded}.
   */
  forwardedUntrusted(): void {
    if (this.forwardedWarned) return;
    this.forwardedWarned = true;
    const line =
      `[RATELIMIT] ${this.limiter.name}: X-Forwarded-For arrived but the app does not trust ` +
      'proxies, so every client behind the proxy shares its address as the rate-limit key; ' +
      "trust the proxy (Express 'trust proxy', Koa app.proxy + maxIpsCount) or give key()";
    if (this.logger !== undefined) log(this.logger, 'warn', line);
    else process.emitWarning(line, { code: 'BREAKWATER_FORWARDED_UNTRUSTED' });
  }

  /** Whether adapters should look for an untrusted `X-Forwarded-For` (until the first warning). */
  get watchingForwarded(): boolean {
    return this.byAddress && !this.forwardedWarned;
  }

  /**
   * Decides one request and returns its headers as a record and, when refused, the answer (the
   * form frameworks that cannot write to the response early use).
   * @returns `undefined` when the request is skipped or the decision could not be made
   */
  async decide(req: Req, address: string | undefined): Promise<HttpRateLimitVerdict | undefined> {
    const info = await this.decideNow(req, address);
    if (info === undefined) return undefined;
    const headers: Record<string, string> = {};
    this.writeHeaders(recordTarget(headers), info);
    return info.allowed ? { headers } : { headers, refusal: await this.refusal(req, info) };
  }

  private async decideLater(
    req: Req,
    address: string | undefined,
  ): Promise<RateLimitInfo | undefined> {
    let stage = 'skip';
    try {
      if (this.skip !== undefined && (await this.skip(req)) === true) return undefined;
      stage = 'key';
      const key =
        this.key === undefined
          ? address === undefined
            ? 'unknown'
            : addressKey(address, this.ipv6Subnet)
          : await this.key(req);
      if (typeof key !== 'string') throw new TypeError(`returned ${typeof key}, not a string`);
      stage = 'cost';
      const cost = this.cost === undefined ? 1 : await this.cost(req);
      if (typeof cost !== 'number' || !(cost >= 0) || !Number.isSafeInteger(cost))
        throw new TypeError(`returned ${String(cost)}, not an integer >= 0`);
      stage = 'limit';
      const lane = this.limitOf === undefined ? this.lane : this.laneFor(await this.limitOf(req));
      stage = 'limiter';
      const decision = await lane.limiter.consume(key, cost);
      return new RateLimitInfo(lane, key, cost, decision);
    } catch (error) {
      this.hookErrors.report(stage, error, 'the request was let through');
      return undefined;
    }
  }

  private laneFor(limit: unknown): Lane {
    if (typeof limit !== 'number' || !Number.isSafeInteger(limit) || limit < 1)
      throw new TypeError(`returned ${String(limit)}, not an integer >= 1`);
    let lane = this.lanes.get(limit);
    if (lane === undefined) {
      if (this.lanes.size >= MAX_LANES)
        throw new RangeError(`more than ${MAX_LANES} distinct limits`);
      lane = new Lane(this.derive!(limit), this.headerOptions);
      this.lanes.set(limit, lane);
    }
    return lane;
  }

  private refundIf(info: RateLimitInfo, succeeded: boolean): void {
    if (succeeded ? !this.skipSuccessful : !this.skipFailed) return;
    info.lane.limiter.refund(info.key, info.cost).catch((error: unknown) => {
      this.hookErrors.report('refund', error, 'the request stays counted');
    });
  }

  private refusalAfterHookError(hook: string, error: unknown, info: RateLimitInfo): HttpResponse {
    this.hookErrors.report(hook, error, 'the default answer was sent');
    return this.refusalWith(info, undefined);
  }

  private refusalWith(info: RateLimitInfo, message: unknown): HttpResponse {
    const retryAfter = String(retryAfterSeconds(info.retryAfterMs));
    const status = this.statusCode;
    if (message === undefined || message === null) {
      if (status === 429) return rateLimitedResponse(info.limiter, info);
      return problemResponse(
        status,
        'Too Many Requests',
        `Rate limit "${info.limiter}" exceeded`,
        { limiter: info.limiter, retryAfter: Number(retryAfter) },
        { 'retry-after': retryAfter },
      );
    }
    const text = typeof message === 'string';
    return {
      kind: 'response',
      status,
      headers: {
        'content-type': text ? 'text/plain; charset=utf-8' : 'application/json; charset=utf-8',
        'cache-control': 'no-store',
        'retry-after': retryAfter,
      },
      body: text ? message : JSON.stringify(message),
    };
  }
}

/** Whether `value` is a thenable. @internal */
export function isPromiseLike<T>(value: unknown): value is PromiseLike<T> {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as { then?: unknown }).then === 'function'
  );
}
