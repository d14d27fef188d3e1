import http, { type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type Koa from 'koa';
import Koa2 from 'koa2';
import Koa3 from 'koa3';
import type {
  Clock,
  Logger,
  RateLimitDecision,
  RateLimitRule,
  RateLimitStore,
} from '@breakwater/core';

/** Both Koa majors, for `describe.each`; apps do not log the errors tests throw on purpose. */
export const koaVersions: [string, () => Koa][] = [
  ['Koa 2', () => Object.assign(new Koa2(), { silent: true })],
  ['Koa 3', () => Object.assign(new Koa3(), { silent: true })],
];

/** A clock the test moves by hand. */
export class ManualClock implements Clock {
  constructor(public time = 0) {}
  now(): number {
    return this.time;
  }
  advance(ms: number): void {
    this.time += ms;
  }
}

/** A shared (non-local) store whose every call fails, as a Redis that is down would. */
export class FailingStore implements RateLimitStore {
  readonly local = false;
  calls = 0;
  consume(_key: string, _cost: number, _rule: RateLimitRule): Promise<RateLimitDecision> {
    this.calls++;
    return Promise.reject(new Error('connection refused'));
  }
  reset(): Promise<void> {
    this.calls++;
    return Promise.reject(new Error('connection refused'));
  }
}

/** A promise with its resolve function. */
export function deferred<T = void>(): { promise: Promise<T>; resolve: (value: T) => void } {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

/** Starts `app` on a free loopback port. */
export async function listen(app: Koa): Promise<{ server: Server; url: string }> {
  const handle = app.callback();
  const server = http.createServer((req, res) => void handle(req, res));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return { server, url: `http://127.0.0.1:${port}` };
}

/** Closes a server, dropping idle and open connections. */
export async function close(server: Server): Promise<void> {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
}

/** Opens a GET request and resolves with the response as soon as its headers arrive. */
export function openRequest(
  url: string,
  headers: Record<string, string> = {},
): { request: http.ClientRequest; response: Promise<IncomingMessage> } {
  const request = http.get(url, { headers });
  const response = new Promise<IncomingMessage>((resolve, reject) => {
    request.once('response', resolve);
    request.once('error', reject);
  });
  return { request, response };
}

/** Collects a streamed body until `done(text)` is true or the body ends, with a time bound. */
export function readUntil(
  response: IncomingMessage,
  done: (text: string) => boolean,
  timeoutMs = 5_000,
): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    const timer = setTimeout(
      () => reject(new Error(`timed out; received so far: ${JSON.stringify(text)}`)),
      timeoutMs,
    );
    const finish = (): void => {
      clearTimeout(timer);
      response.off('data', onData);
      response.off('end', finish);
      resolve(text);
    };
    const onData = (chunk: string): void => {
      text += chunk;
      if (done(text)) finish();
    };
    response.setEncoding('utf8');
    response.on('data', onData);
    response.once('end', finish);
  });
}

/** Resolves when the response body has ended, with a time bound. */
export function ended(response: IncomingMessage, timeoutMs = 5_000): Promise<void> {
  if (response.readableEnded) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('the response did not end')), timeoutMs);
    response.once('end', () => {
      clearTimeout(timer);
      resolve();
    });
    response.resume();
  });
}

/** A logger that keeps its lines. */
export function memoryLogger(): Logger & { lines: string[] } {
  const lines: string[] = [];
  const push = (line: string): void => {
    lines.push(line);
  };
  return { lines, info: push, warn: push, error: push };
}
