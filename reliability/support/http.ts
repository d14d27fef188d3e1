import http, { type IncomingHttpHeaders, type RequestListener, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { connect } from 'node:net';

/** A server listening on a free loopback port. */
export interface Listening {
  server: Server;
  port: number;
  url: string;
}

/** Starts `handler` on a free loopback port. */
export async function listen(handler: RequestListener): Promise<Listening> {
  const server = http.createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return { server, port, url: `http://127.0.0.1:${port}` };
}

/** Closes a server, dropping idle and open connections. */
export async function close(server: Server): Promise<void> {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
}

/** A response read to its end. */
export interface Reply {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

/** Options of {@link send}. */
export interface SendOptions {
  method?: string;
  headers?: Record<string, string>;
  body?: string;
  /** Reject when no complete answer came in this time. @defaultValue 5 000 */
  timeoutMs?: number;
  agent?: http.Agent | false;
}

/** Sends one request and reads the whole answer, with a time bound. */
export function send(url: string, options: SendOptions = {}): Promise<Reply> {
  const { method = 'GET', headers = {}, body, timeoutMs = 5_000, agent = false } = options;
  return new Promise((resolve, reject) => {
    const request = http.request(url, { method, headers, agent });
    const timer = setTimeout(() => {
      request.destroy(new Error(`${method} ${url}: no complete answer in ${timeoutMs} ms`));
    }, timeoutMs);
    request.once('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    request.once('response', (response) => {
      let text = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => (text += chunk));
      response.once('error', (error) => {
        clearTimeout(timer);
        reject(error);
      });
      response.once('end', () => {
        clearTimeout(timer);
        resolve({ status: response.statusCode ?? 0, headers: response.headers, body: text });
      });
    });
    request.end(body);
  });
}

/** A raw answer to bytes written on a socket: the status line's code and everything received. */
export interface RawReply {
  status: number;
  text: string;
}

/**
 * Writes `bytes` as they are on a new loopback connection and collects what comes back until the
 * server closes the connection, the answer is complete (`Connection: close` is not assumed), or
 * `timeoutMs` passes.
 */
export function sendRaw(port: number, bytes: string, timeoutMs = 3_000): Promise<RawReply> {
  return new Promise((resolve, reject) => {
    const socket = connect({ port, host: '127.0.0.1' });
    let text = '';
    const finish = (): void => {
      clearTimeout(timer);
      socket.destroy();
      const match = /^HTTP\/1\.[01] (\d{3})/.exec(text);
      if (match === null) reject(new Error(`no HTTP answer; received ${JSON.stringify(text)}`));
      else resolve({ status: Number(match[1]), text });
    };
    const timer = setTimeout(finish, timeoutMs);
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => {
      text += chunk;
      if (isComplete(text)) finish();
    });
    socket.once('end', finish);
    socket.once('error', (error) => {
      if (text === '') {
        clearTimeout(timer);
        reject(error);
      } else finish();
    });
    socket.write(bytes, 'latin1');
  });
}

/** Whether a raw HTTP/1.1 answer has arrived in full (by Content-Length). */
function isComplete(text: string): boolean {
  const end = text.indexOf('\r\n\r\n');
  if (end === -1) return false;
  const length = /\r\ncontent-length: *(\d+)/i.exec(text.slice(0, end));
  if (length === null) return false;
  return Buffer.byteLength(text.slice(end + 4), 'latin1') >= Number(length[1]);
}
