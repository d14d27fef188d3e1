import { isBranded } from '../brand';
import { durationOption, type Duration } from '../time/duration';
import { checkKnownKeys, checkObject, functionOption, integerOption } from '../internal/validate';
import { ConfigError } from '../errors';
import { loggerOption, type Logger } from '../internal/log';
import type { CircuitBreakerRegistry } from '../breaker/registry';
import type {
  HealthReporter,
  HealthReportSources,
  HealthSources,
  LoadShedReporter,
} from './health-report';

/** The answer of an admin `authorize` hook: `true` allows, `false` → 403, `'unauthenticated'` → 401. */
export type AuthorizeResult = boolean | 'unauthenticated';

/** Options of the health routes, shared by every HTTP adapter. */
export interface HealthRoutesOptions<Req = unknown> extends HealthReportSources {
  /** Path the routes live under. @defaultValue `'/health'` */
  basePath?: string;
  /**
   * Enables `POST <basePath>/circuit-breakers/:name/reset`. Without it that route does not exist
   * (404). `authorize` receives the framework's request; a hook that throws refuses (403).
   */
  admin?: { authorize(req: Req): AuthorizeResult | Promise<AuthorizeResult> };
  /** Server-sent events stream settings. */
  stream?: {
    /** Most streams open at once; further ones get 503. @defaultValue 100 */
    maxClients?: number;
    /**
     * Bytes a stream may be written while its connection reports back-pressure (the adapter's
     * `write` returned `false`) before the client is dropped: a reader that stops reading costs
     * at most this much (plus the connection's own buffer), however many events follow.
     * @defaultValue 65 536
     */
    maxBufferBytes?: number;
    /** Interval of the keep-alive comment. @defaultValue 15 000 */
    heartbeatMs?: Duration;
  };
  /**
   * Serve `<basePath>/dashboard` (and its `<basePath>/dashboard/history`), or `false`. Its
   * sparklines cover the last 15 minutes, sampled every `sampleIntervalMs` by one unref'd timer
   * from each breaker's totals (no cost per call); rate limiters' decisions are counted from the
   * first time the dashboard is opened. @defaultValue true (sampled every 5 s)
   */
  dashboard?: boolean | { sampleIntervalMs?: Duration };
  /**
   * Where the errors of user hooks (`critical`, `admin.authorize`) go, one line each (`error`).
   * A hook error is never shown to the client. @defaultValue none (hook errors are dropped)
   */
  logger?: Logger;
}

/** {@link HealthRoutesOptions} checked once, defaults filled in. Frozen. */
export interface ResolvedHealthRoutesOptions<Req> {
  readonly registry: CircuitBreakerRegistry | undefined;
  readonly limiters: readonly HealthReporter[] | undefined;
  readonly loadShedders: readonly LoadShedReporter[] | undefined;
  readonly critical: HealthSources['critical'];
  readonly basePath: string;
  readonly authorize: ((req: Req) => AuthorizeResult | Promise<AuthorizeResult>) | undefined;
  readonly maxClients: number;
  readonly maxBufferBytes: number;
  readonly heartbeatMs: number;
  /** `false`, or the dashboard's sampling interval. */
  readonly dashboard: false | { readonly sampleIntervalMs: number };
  readonly logger: Logger | undefined;
}

const OWNER = 'healthRoutes';
const KNOWN = Object.keys({
  registry: true,
  limiters: true,
  loadShedders: true,
  critical: true,
  basePath: true,
  admin: true,
  stream: true,
  dashboard: true,
  logger: true,
} satisfies Record<keyof HealthRoutesOptions, true>);

/**
 * Checks the health routes' options once.
 * @throws ConfigError naming the option path and value when one is invalid
 * @internal
 */
export function resolveHealthRoutesOptions<Req>(
  options: HealthRoutesOptions<Req>,
): ResolvedHealthRoutesOptions<Req> {
  checkObject(OWNER, 'options', options);
  checkKnownKeys(OWNER, '', options, KNOWN);
  const logger = options.logger === undefined ? undefined : loggerOption(OWNER, options.logger);
  if (
    options.registry !== undefined &&
    !isBranded(OWNER, 'registry', options.registry, 'CircuitBreakerRegistry')
  ) {
    throw new ConfigError(OWNER, 'registry', options.registry, 'must be a CircuitBreakerRegistry');
  }
  checkList(options.limiters, 'limiters', 'health', 'rate limiter');
  checkList(options.loadShedders, 'loadShedders', 'snapshot', 'load shedder');
  const critical = options.critical;
  if (
    critical !== undefined &&
    typeof critical !== 'function' &&
    !(Array.isArray(critical) && critical.every((c) => typeof c === 'string'))
  ) {
    throw new ConfigError(
      OWNER,
      'critical',
      critical,
      'must be an array of breaker names or a function',
    );
  }

  const basePath = options.basePath ?? '/health';
  if (
    typeof basePath !== 'string' ||
    !/^(\/[A-Za-z0-9._~-]+)*$/.test(basePath) ||
    basePath === ''
  ) {
    throw new ConfigError(
      OWNER,
      'basePath',
      basePath,
      "must be a path such as '/health' (no trailing slash)",
    );
  }

  let authorize: ResolvedHealthRoutesOptions<Req>['authorize'];
  const admin = options.admin;
  if (admin !== undefined) {
    checkObject(OWNER, 'admin', admin);
    checkKnownKeys(OWNER, 'admin', admin, ['authorize']);
    const hook = functionOption<(req: Req) => AuthorizeResult | Promise<AuthorizeResult>>(
      OWNER,
      'admin.authorize',
      admin.authorize,
    );
    authorize = (req) => hook.call(admin, req);
  }

  const stream = options.stream ?? {};
  checkObject(OWNER, 'stream', stream);
  checkKnownKeys(OWNER, 'stream', stream, ['maxClients', 'maxBufferBytes', 'heartbeatMs']);
  const maxClients =
    stream.maxClients === undefined
      ? 100
      : integerOption(OWNER, 'stream.maxClients', stream.maxClients, 1, 100_000);
  const maxBufferBytes =
    stream.maxBufferBytes === undefined
      ? 65_536
      : integerOption(OWNER, 'stream.maxBufferBytes', stream.maxBufferBytes, 1024, 64 * 2 ** 20);
  const heartbeatMs =
    stream.heartbeatMs === undefined
      ? 15_000
      : durationOption(OWNER, 'stream.heartbeatMs', stream.heartbeatMs, {
          min: 1000,
          timer: true,
        });

  return Object.freeze({
    registry: options.registry,
    limiters: options.limiters as readonly HealthReporter[] | undefined,
    loadShedders: options.loadShedders as readonly LoadShedReporter[] | undefined,
    critical: critical as HealthSources['critical'],
    basePath,
    authorize,
    maxClients,
    maxBufferBytes,
    heartbeatMs,
    dashboard: dashboardOption(options.dashboard),
    logger,
  });
}

function dashboardOption(value: unknown): ResolvedHealthRoutesOptions<unknown>['dashboard'] {
  const dashboard: unknown = value ?? true;
  if (dashboard === false) return false;
  if (dashboard === true) return { sampleIntervalMs: 5_000 };
  if (typeof dashboard !== 'object' || dashboard === null || Array.isArray(dashboard)) {
    throw new ConfigError(OWNER, 'dashboard', value, 'must be a boolean or { sampleIntervalMs }');
  }
  const settings = dashboard as { sampleIntervalMs?: unknown };
  checkKnownKeys(OWNER, 'dashboard', settings, ['sampleIntervalMs']);
  if (settings.sampleIntervalMs === undefined) return { sampleIntervalMs: 5_000 };
  const sampleIntervalMs = durationOption(
    OWNER,
    'dashboard.sampleIntervalMs',
    settings.sampleIntervalMs,
    { min: 1000, timer: true },
  );
  if (sampleIntervalMs > 60_000) {
    throw new ConfigError(
      OWNER,
      'dashboard.sampleIntervalMs',
      settings.sampleIntervalMs,
      'must be at most 60 s (the sparklines cover 15 minutes)',
    );
  }
  return { sampleIntervalMs };
}

/** Checks an optional array whose every item has a `method` function. */
function checkList(value: unknown, path: string, method: string, noun: string): void {
  if (value === undefined) return;
  if (!Array.isArray(value))
    throw new ConfigError(OWNER, path, value, `must be an array of ${noun}s`);
  value.forEach((item: unknown, i) => {
    if (
      typeof item !== 'object' ||
      item === null ||
      typeof (item as Record<string, unknown>)[method] !== 'function'
    ) {
      throw new ConfigError(OWNER, `${path}[${i}]`, item, `must be a ${noun} (with ${method}())`);
    }
  });
}
