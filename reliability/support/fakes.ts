import { EventEmitter } from 'node:events';
import type { Context, Request, Response } from './frameworks';

/** What a middleware called with fake objects did. */
export type MiddlewareOutcome =
  { kind: 'next' } | { kind: 'error'; error: unknown } | { kind: 'answered'; status: number };

/** The parts of an Express request the Breakwater middleware reads. */
export interface FakeRequestInit {
  method?: string;
  url?: string;
  baseUrl?: string;
  ip?: string;
  /** Present when the middleware runs inside a route (`app.get(pattern, ...)`). */
  routePath?: string;
  headers?: Record<string, string>;
}

/** An Express request with just what the middleware reads. */
export function fakeRequest(init: FakeRequestInit = {}): Request {
  const url = init.url ?? '/';
  const headers = init.headers ?? {};
  const query = url.indexOf('?');
  return {
    method: init.method ?? 'GET',
    url,
    originalUrl: url,
    path: query === -1 ? url : url.slice(0, query),
    baseUrl: init.baseUrl ?? '',
    ip: init.ip ?? '127.0.0.1',
    headers,
    route: init.routePath === undefined ? undefined : { path: init.routePath },
    socket: { setTimeout: () => undefined },
    get: (name: string) => headers[name.toLowerCase()],
  } as unknown as Request;
}

/** An Express response that records what is written and emits `finish` and `close` on `end()`. */
export class FakeResponse extends EventEmitter {
  statusCode = 200;
  headersSent = false;
  writableEnded = false;
  readonly headers: Record<string, string> = {};
  body: string | undefined;

  setHeader(name: string, value: unknown): this {
    this.headers[name.toLowerCase()] = String(value);
    return this;
  }

  getHeader(name: string): string | undefined {
    return this.headers[name.toLowerCase()];
  }

  writeHead(status: number, headers?: Record<string, string>): this {
    this.statusCode = status;
    for (const [name, value] of Object.entries(headers ?? {})) this.setHeader(name, value);
    this.headersSent = true;
    return this;
  }

  flushHeaders(): void {
    this.headersSent = true;
  }

  write(_chunk: string): boolean {
    this.headersSent = true;
    return true;
  }

  end(body?: string): this {
    this.headersSent = true;
    this.body = body ?? '';
    this.writableEnded = true;
    this.emit('finish');
    this.emit('close');
    return this;
  }

  /** This response as the Express type the middleware expects. */
  get express(): Response {
    return this as unknown as Response;
  }
}

type ExpressMiddleware = (req: Request, res: Response, next: (error?: unknown) => void) => unknown;

/**
 * Runs an Express middleware with fake objects until it calls `next` or answers, within
 * `timeoutMs` (a middleware that does neither has left the request hanging).
 */
export function runExpress(
  middleware: ExpressMiddleware,
  req: Request,
  res: FakeResponse,
  timeoutMs = 2_000,
): Promise<MiddlewareOutcome> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(
      () =>
        reject(new Error(`the middleware neither called next() nor answered in ${timeoutMs} ms`)),
      timeoutMs,
    );
    const done = (outcome: MiddlewareOutcome): void => {
      clearTimeout(timer);
      res.off('finish', onFinish);
      resolve(outcome);
    };
    const onFinish = (): void => done({ kind: 'answered', status: res.statusCode });
    res.once('finish', onFinish);
    try {
      void middleware(req, res.express, (error?: unknown) =>
        done(error === undefined ? { kind: 'next' } : { kind: 'error', error }),
      );
    } catch (error) {
      clearTimeout(timer);
      reject(error instanceof Error ? error : new Error(String(error)));
    }
  });
}

/** The parts of a Koa context the Breakwater middleware reads and writes. */
export interface FakeContext {
  method: string;
  url: string;
  path: string;
  ip: string;
  status: number;
  body: unknown;
  readonly response: Record<string, string>;
  req: EventEmitter & { socket: { setTimeout(ms: number): void; destroyed: boolean } };
  /** The Node response: headers written to it land in `response` too. */
  res: {
    writableFinished: boolean;
    writableEnded: boolean;
    getHeader(name: string): string | undefined;
    setHeader(name: string, value: string): void;
  };
  readonly headers: Record<string, string>;
  readonly state: Record<string, unknown>;
  readonly app: { proxy: boolean };
  set(field: string | Record<string, string>, value?: string): void;
  get(field: string): string;
  /** This context as the Koa type the middleware expects. */
  readonly koa: Context;
}

/** A Koa context with just what the middleware reads. */
export function fakeContext(init: FakeRequestInit = {}): FakeContext {
  const url = init.url ?? '/';
  const query = url.indexOf('?');
  const headers = init.headers ?? {};
  const req = Object.assign(new EventEmitter(), {
    socket: { setTimeout: () => undefined, destroyed: false },
  });
  const response: Record<string, string> = {};
  const ctx: FakeContext = {
    method: init.method ?? 'GET',
    url,
    path: query === -1 ? url : url.slice(0, query),
    ip: init.ip ?? '127.0.0.1',
    status: 404,
    body: undefined,
    response,
    req,
    res: {
      writableFinished: false,
      writableEnded: false,
      getHeader: (name) => response[name.toLowerCase()],
      setHeader: (name, value) => {
        response[name.toLowerCase()] = String(value);
      },
    },
    headers,
    state: {},
    app: { proxy: false },
    set(field, value) {
      if (typeof field === 'string') this.response[field.toLowerCase()] = String(value);
      else for (const [name, v] of Object.entries(field)) this.response[name.toLowerCase()] = v;
    },
    get: (field) => headers[field.toLowerCase()] ?? '',
    get koa(): Context {
      return ctx as unknown as Context;
    },
  };
  return ctx;
}
