import type { ServerResponse } from 'node:http';
import type { HttpResponse } from '@breakwater/core';

/** An Express response, a Fastify reply, or a bare Node.js response. */
interface PlatformResponse {
  raw?: ServerResponse;
  status?(code: number): unknown;
  header?(name: string, value: string): unknown;
  send?(body?: string): unknown;
}

/** The Node.js response behind a platform response (`reply.raw` on Fastify). */
export function rawResponse(res: unknown): ServerResponse {
  return (res as PlatformResponse).raw ?? (res as ServerResponse);
}

/** Sets headers on an Express response, a Fastify reply or a Node.js response. */
export function setHeaders(res: unknown, headers: Readonly<Record<string, string>>): void {
  const platform = res as PlatformResponse;
  if (typeof platform.header === 'function') {
    for (const name of Object.keys(headers)) platform.header(name, headers[name]!);
  } else {
    const raw = rawResponse(res);
    for (const name of Object.keys(headers)) raw.setHeader(name, headers[name]!);
  }
}

/** Writes a response decided by core through the platform's own API (or the bare response). */
export function writeResponse(res: unknown, response: HttpResponse): void {
  const raw = rawResponse(res);
  if (raw.headersSent) {
    if (!raw.writableEnded) raw.end();
    return;
  }
  const platform = res as PlatformResponse;
  if (typeof platform.status === 'function' && typeof platform.send === 'function') {
    setHeaders(res, response.headers);
    platform.status(response.status);
    platform.send(response.body);
    return;
  }
  raw.writeHead(response.status, response.headers);
  raw.end(response.body);
}
