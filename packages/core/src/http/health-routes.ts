import { describeError, log } from '../internal/log';
import type { CircuitBreakerRegistry } from '../breaker/registry';
import { DASHBOARD_CSP, dashboardPage } from './dashboard-page';
import { DashboardHistory } from './dashboard/history';
import {
  criticalPredicate,
  healthReport,
  isReady,
  type HealthReportSources,
  type HealthSources,
} from './health-report';
import {
  resolveHealthRoutesOptions,
  type AuthorizeResult,
  type HealthRoutesOptions,
} from './health-routes-options';
import { jsonResponse, problemResponse, type HttpResponse } from './http-response';

export type { AuthorizeResult, HealthRoutesOptions } from './health-routes-options';

/**
 * A server-sent events answer. The adapter writes `status` and `headers`, then calls `start`
 * at once with a function that writes to the connection and one that ends it; `start` returns
 * the function to call when the client goes away. `write` returns what Node's `writable.write()`
 * does: `false` when the connection's buffer is full, which bounds what a client that stops
 * reading can hold (see `stream.maxBufferBytes`).
 */
export interface SseStream {
  readonly kind: 'sse';
  readonly status: 200;
  readonly headers: Readonly<Record<string, string>>;
  start(write: (chunk: string) => unknown, end: () => void): () => void;
}

/** What the health routes answer: a response, a stream, or `undefined` for a path they do not serve. */
export type HealthRouteResult = HttpResponse | SseStream;

interface Client {
  write(chunk: string): void;
  end(): void;
}

/** A hook's error, for the log line. */
type HookErrorReporter = (hook: string, error: unknown) => void;

const MAX_NAME_LENGTH = 512;
const SSE_HEADERS = {
  'content-type': 'text/event-stream; charset=utf-8',
  'cache-control': 'no-store',
  connection: 'keep-alive',
  'x-accel-buffering': 'no',
} as const;
const HISTORY_WINDOW_MS = 15 * 60_000;

/**
 * The health routes of DESIGN section 6, independent of any framework: adapters pass the method,
 * the URL and their request object, and write what comes back.
 *
 * - `GET /health/live`: 200 while the process serves (never depends on downstreams)
 * - `GET /health/ready`: 503 while a critical breaker is open
 * - `GET /health`: `application/health+json`, `pass`/`warn`/`fail`, 503 on `fail`
 * - `GET /health/circuit-breakers` and `/health/circuit-breakers/:name`
 * - `GET /health/circuit-breakers/stream`: server-sent events (a snapshot, then every change)
 * - `GET /health/dashboard`: the live page
 * - `POST /health/circuit-breakers/:name/reset`: only with `admin.authorize`
 *
 * @throws ConfigError at construction when an option is invalid
 */
export class HealthRoutes<Req = unknown> {
  /** The path the routes live under. */
  readonly basePath: string;
  private readonly sources: HealthReportSources;
  private readonly registry: CircuitBreakerRegistry | undefined;
  private readonly authorize:
    ((req: Req) => AuthorizeResult | Promise<AuthorizeResult>) | undefined;
  private readonly maxClients: number;
  private readonly maxBufferBytes: number;
  private readonly onHookError: HookErrorReporter;
  private readonly heartbeatMs: number;
  private readonly dashboard: string | undefined;
  private readonly history: DashboardHistory | undefined;
  private readonly isCritical: (name: string) => boolean;
  private readonly clients = new Set<Client>();
  private unsubscribe: (() => void) | undefined;
  private heartbeat: ReturnType<typeof setInterval> | undefined;
  private eventId = 0;

  constructor(options: HealthRoutesOptions<Req>) {
    const o = resolveHealthRoutesOptions(options);
    const logger = o.logger;
    this.onHookError = (hook, error) => {
      if (logger !== undefined) {
        log(logger, 'error', `[HEALTH] ${hook} hook failed: ${describeError(error)}`);
      }
    };
    this.registry = o.registry;
    this.sources = {
      registry: o.registry,
      limiters: o.limiters,
      loadShedders: o.loadShedders,
      critical: guardCritical(o.critical, this.onHookError),
    };
    this.basePath = o.basePath;
    this.authorize = o.authorize;
    this.maxClients = o.maxClients;
    this.maxBufferBytes = o.maxBufferBytes;
    this.heartbeatMs = o.heartbeatMs;
    this.isCritical = criticalPredicate(this.sources.critical);
    const dashboard = o.dashboard;
    if (dashboard === false) {
      this.dashboard = undefined;
      this.history = undefined;
    } else {
      this.dashboard = dashboardPage({ basePath: o.basePath, admin: o.authorize !== undefined });
      this.history = new DashboardHistory(
        this.registry,
        o.limiters ?? [],
        this.isCritical,
        dashboard.sampleIntervalMs,
        HISTORY_WINDOW_MS,
      );
      this.sampleHistory();
    }
  }

  /** Number of event streams open now. */
  get streams(): number {
    return this.clients.size;
  }

  /**
   * Answers a request, or returns `undefined` when the path is not one of the routes (the
   * adapter passes it on).
   * @param method - the HTTP method
   * @param url - the request target relative to where the adapter is mounted (path and query)
   * @param req - the framework's request, handed to `admin.authorize`
   */
  handle(
    method: string,
    url: string,
    req: Req,
  ): HealthRouteResult | Promise<HealthRouteResult> | undefined {
    const query = url.indexOf('?');
    const path = query === -1 ? url : url.slice(0, query);
    const base = this.basePath;
    if (!path.startsWith(base)) return undefined;
    const rest = path.slice(base.length);
    if (rest !== '' && rest[0] !== '/') return undefined;
    const head = method === 'HEAD';
    const read = method === 'GET' || head;

    switch (rest) {
      case '':
      case '/': {
        if (!read) return methodNotAllowed('GET, HEAD');
        const report = healthReport(this.sources);
        return bodyless(
          jsonResponse(report.status === 'fail' ? 503 : 200, report, 'application/health+json'),
          head,
        );
      }
      case '/live':
        if (!read) return methodNotAllowed('GET, HEAD');
        return bodyless(jsonResponse(200, { status: 'pass' }, 'application/health+json'), head);
      case '/ready': {
        if (!read) return methodNotAllowed('GET, HEAD');
        const ready = isReady(this.sources);
        return bodyless(
          jsonResponse(
            ready ? 200 : 503,
            { status: ready ? 'pass' : 'fail' },
            'application/health+json',
          ),
          head,
        );
      }
      case '/dashboard/history':
        if (this.history === undefined) return undefined;
        if (!read) return methodNotAllowed('GET, HEAD');
        this.sampleHistory();
        this.history.watchLimiters();
        return bodyless(jsonResponse(200, this.history.document()), head);
      case '/dashboard':
        if (this.dashboard === undefined) return undefined;
        if (!read) return methodNotAllowed('GET, HEAD');
        this.history?.watchLimiters();
        return {
          kind: 'response',
          status: 200,
          headers: {
            'content-type': 'text/html; charset=utf-8',
            'cache-control': 'no-store',
            'content-security-policy': DASHBOARD_CSP,
            'x-content-type-options': 'nosniff',
          },
          body: head ? '' : this.dashboard,
        };
      case '/circuit-breakers':
      case '/circuit-breakers/':
        if (!read) return methodNotAllowed('GET, HEAD');
        return bodyless(jsonResponse(200, this.registry?.snapshot() ?? []), head);
      case '/circuit-breakers/stream':
        if (method !== 'GET') return methodNotAllowed('GET');
        return this.openStream();
    }

    if (!rest.startsWith('/circuit-breakers/')) return undefined;
    let raw = rest.slice('/circuit-breakers/'.length);
    const reset = raw.endsWith('/reset') && method === 'POST';
    if (reset) raw = raw.slice(0, -'/reset'.length);
    let name: string;
    try {
      name = decodeURIComponent(raw);
    } catch {
      return problemResponse(400, 'Bad Request', 'The breaker name is not valid percent-encoding');
    }
    if (reset) return this.reset(name, req);
    if (!read) {
      return this.authorize !== undefined && raw.endsWith('/reset')
        ? methodNotAllowed('POST')
        : methodNotAllowed('GET, HEAD');
    }
    const breaker = name.length <= MAX_NAME_LENGTH ? this.registry?.find(name) : undefined;
    if (breaker === undefined) return notFound(name);
    return bodyless(jsonResponse(200, breaker.snapshot()), head);
  }

  /** Starts the dashboard's sampler (again after `close()`, when the routes are used again). */
  private sampleHistory(): void {
    this.history?.start((sample) => {
      if (this.clients.size > 0) this.broadcast('sample', sample);
    });
  }

  /**
   * Ends every open event stream and stops the heartbeat and the dashboard's sampling (which
   * resume if the stream or the dashboard is used again).
   */
  close(): void {
    for (const client of [...this.clients]) client.end();
    this.clients.clear();
    this.stopFeed();
    this.history?.stop();
  }

  private async reset(name: string, req: Req): Promise<HttpResponse> {
    if (this.authorize === undefined) return notFound(name);
    let verdict: AuthorizeResult;
    try {
      verdict = await this.authorize(req);
    } catch (error) {
      this.onHookError('admin.authorize', error);
      verdict = false;
    }
    if (verdict === 'unauthenticated') {
      return problemResponse(
        401,
        'Unauthorized',
        'Authentication is required to reset a circuit breaker',
      );
    }
    if (verdict !== true)
      return problemResponse(403, 'Forbidden', 'Not allowed to reset circuit breakers');
    const breaker = name.length <= MAX_NAME_LENGTH ? this.registry?.find(name) : undefined;
    if (breaker === undefined) return notFound(name);
    breaker.reset();
    return jsonResponse(200, breaker.snapshot());
  }

  private openStream(): HealthRouteResult {
    if (this.clients.size >= this.maxClients) {
      return problemResponse(503, 'Service Unavailable', 'Too many open event streams', undefined, {
        'retry-after': '5',
      });
    }
    return {
      kind: 'sse',
      status: 200,
      headers: SSE_HEADERS,
      start: (write, end) => {
        let open = true;
        /** Bytes written since the connection last reported back-pressure; -1 while it flows. */
        let backlog = -1;
        const maxBufferBytes = this.maxBufferBytes;
        const client: Client = {
          write: (chunk) => {
            if (!open) return;
            let flowing: unknown;
            try {
              flowing = write(chunk);
            } catch {
              client.end();
              return;
            }
            if (flowing !== false) {
              backlog = -1;
              return;
            }
            // A client that stops reading is dropped once its backlog passes the bound.
            backlog = backlog === -1 ? 0 : backlog + chunk.length;
            if (backlog > maxBufferBytes) client.end();
          },
          end: () => {
            if (!open) return;
            open = false;
            this.clients.delete(client);
            if (this.clients.size === 0) this.stopFeed();
            try {
              end();
            } catch {
              // The connection is already gone.
            }
          },
        };
        this.clients.add(client);
        this.startFeed();
        const snapshots = (this.registry?.snapshot() ?? []).map((snapshot) =>
          this.isCritical(snapshot.name) ? { ...snapshot, critical: true } : snapshot,
        );
        client.write(
          `retry: 5000\nid: ${this.eventId}\nevent: snapshot\ndata: ${JSON.stringify(snapshots)}\n\n`,
        );
        return () => {
          if (!open) return;
          open = false;
          this.clients.delete(client);
          if (this.clients.size === 0) this.stopFeed();
        };
      },
    };
  }

  private broadcast(event: string, data: unknown): void {
    const chunk = `id: ${++this.eventId}\nevent: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
    for (const client of [...this.clients]) client.write(chunk);
  }

  private startFeed(): void {
    this.sampleHistory();
    if (this.unsubscribe !== undefined) return;
    const registry = this.registry;
    const offs: (() => void)[] = [];
    if (registry !== undefined) {
      offs.push(
        registry.on('stateChange', ({ breaker, from, to, reason }) => {
          const found = registry.find(breaker);
          if (found === undefined) return;
          const snapshot = found.snapshot();
          this.broadcast('state', {
            ...snapshot,
            critical: this.isCritical(breaker),
            transition: { at: Date.now(), from, to, reason },
          });
        }),
        registry.on('add', ({ breaker }) => this.broadcast('state', breaker.snapshot())),
        registry.on('remove', ({ breaker }) => this.broadcast('removed', { name: breaker.name })),
      );
    }
    this.unsubscribe = () => offs.forEach((off) => off());
    this.heartbeat = setInterval(() => {
      for (const client of [...this.clients]) client.write(': heartbeat\n\n');
    }, this.heartbeatMs);
    this.heartbeat.unref?.();
  }

  private stopFeed(): void {
    this.unsubscribe?.();
    this.unsubscribe = undefined;
    if (this.heartbeat !== undefined) clearInterval(this.heartbeat);
    this.heartbeat = undefined;
  }
}

/**
 * Wraps a `critical` predicate so that a hook that throws never breaks a health answer: the breaker
 * counts as critical (an open circuit is not hidden by a broken hook) and the error is reported.
 */
function guardCritical(
  critical: HealthSources['critical'],
  onError: HookErrorReporter,
): HealthSources['critical'] {
  if (typeof critical !== 'function') return critical;
  return (name) => {
    try {
      return Boolean(critical(name));
    } catch (error) {
      onError('critical', error);
      return true;
    }
  };
}

function bodyless(response: HttpResponse, head: boolean): HttpResponse {
  return head ? { ...response, body: '' } : response;
}

function methodNotAllowed(allow: string): HttpResponse {
  return problemResponse(405, 'Method Not Allowed', `Allowed: ${allow}`, undefined, { allow });
}

function notFound(name: string): HttpResponse {
  const shown = name.length > 100 ? `${name.slice(0, 100)}…` : name;
  return problemResponse(404, 'Not Found', `No circuit breaker named "${shown}"`);
}
