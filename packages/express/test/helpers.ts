import http, { type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Express } from 'express';
import express4 from 'express4';
import express5 from 'express5';
import type {
  Clock,
  Logger,
  RateLimitDecision,
  RateLimitRule,
  RateLimitStore,
} from '@breakwater/core';

/** Both Express majors, for `describe.each`. */
export const expressVersions: [string, 4 | 5, () => Express][] = [
  ['Express 4', 4, () => express4()],
  ['Express 5', 5, () => express5()],
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

/** Starts `app` on a free loopback port. */
export async function listen(app: Express): Promise<{ server: Server; url: string }> {
  const server = http.createServer(app);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return { server, url: `http://127.0.0.1:${port}` };
}

/** Closes a server, dropping idle and open connections. */
export async function close(server: Server): Promise<void> {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
}

/** Opens a request and resolves with the response as soon as its headers arrive. */
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

/** Collects a streamed body until `done(text)` is true, with a time bound. */
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
    const onData = (chunk: string): void => {
      text += chunk;
      if (done(text)) finish();
    };
    const finish = (): void => {
      clearTimeout(timer);
      response.off('data', onData);
      response.off('end', finish);
      resolve(text);
    };
    response.setEncoding('utf8');
    response.on('data', onData);
    response.once('end', finish);
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
