/*
 * The servers of the `http` group, each run in a child process of its own so the load generator
 * (in the bench's process) never shares an event loop with the server it measures.
 *
 * A child is the bench bundle itself, forked with BREAKWATER_BENCH_HTTP_SERVER naming the app:
 * this module's top-level await then serves that app and never returns, so the bench's own
 * main module never runs in the child. Parent and child talk over the IPC channel.
 */
import { fork, type ChildProcess } from 'node:child_process';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { CircuitBreakerRegistry } from '@breakwater/core';
import { circuitBreaker as expressBreaker, rateLimit as expressLimit } from '@breakwater/express';
import { circuitBreaker as koaBreaker, rateLimit as koaLimit } from '@breakwater/koa';
import Router from '@koa/router';
import express, { type RequestHandler } from 'express';
import { rateLimit as expressRateLimit } from 'express-rate-limit';
import Koa from 'koa';

const ROLE_ENV = 'BREAKWATER_BENCH_HTTP_SERVER';

/** The body every app answers `GET /` with. */
export const HELLO = 'Hello World!';

/** Far above what a run sends from one address: every request is allowed. */
export const HTTP_LIMIT = 1_000_000_000;

/** The name of the Breakwater limiter in the apps that have one (seen in its headers). */
export const LIMITER_NAME = 'bench';

/** The apps the group measures. */
export type AppName =
  'express-bare' | 'express-breakwater' | 'express-rate-limit' | 'koa-bare' | 'koa-breakwater';

/** What a child reports about its Breakwater breakers (none for the other apps). */
export interface ServerStats {
  breakers: { name: string; state: string; calls: number }[];
}

type ToChild = { type: 'stats' } | { type: 'stop' };
type FromChild = { type: 'ready'; port: number } | ({ type: 'stats' } & ServerStats);

interface App {
  listen: () => Server;
  registry?: CircuitBreakerRegistry;
}

const hello: RequestHandler = (_req, res) => {
  res.send(HELLO);
};

function expressApp(middleware: RequestHandler[]): App['listen'] {
  const app = express();
  app.get('/', ...middleware, hello);
  return () => app.listen(0, '127.0.0.1');
}

function koaApp(middleware: Koa.Middleware[]): App['listen'] {
  const app = new Koa();
  const router = new Router();
  router.get('/', ...middleware, (ctx) => {
    ctx.body = HELLO;
  });
  app.use(router.routes());
  return () => app.listen(0, '127.0.0.1');
}

function buildApp(name: AppName): App {
  const registry = new CircuitBreakerRegistry();
  const limit = { name: LIMITER_NAME, limit: HTTP_LIMIT, window: '1h' } as const;
  switch (name) {
    case 'express-bare':
      return { listen: expressApp([]) };
    case 'express-breakwater':
      return {
        listen: expressApp([expressBreaker({ registry }), expressLimit(limit)]),
        registry,
      };
    case 'express-rate-limit':
      return {
        listen: expressApp([
          expressRateLimit({
            windowMs: 3_600_000,
            limit: HTTP_LIMIT,
            standardHeaders: 'draft-8',
            legacyHeaders: false,
          }),
        ]),
      };
    case 'koa-bare':
      return { listen: koaApp([]) };
    case 'koa-breakwater':
      return { listen: koaApp([koaBreaker({ registry }), koaLimit(limit)]), registry };
  }
}

function send(message: FromChild): void {
  process.send?.(message);
}

/** Child side: serves `name` on a free loopback port until told to stop or orphaned. */
function serve(name: AppName): Promise<never> {
  const app = buildApp(name);
  const server = app.listen();
  server.on('listening', () => {
    send({ type: 'ready', port: (server.address() as AddressInfo).port });
  });
  process.on('message', (raw) => {
    const message = raw as ToChild;
    if (message.type === 'stats') {
      const breakers = (app.registry?.snapshot() ?? []).map((s) => ({
        name: s.name,
        state: s.state,
        calls: s.calls,
      }));
      send({ type: 'stats', breakers });
    } else {
      server.close();
      server.closeAllConnections();
      process.exit(0);
    }
  });
  process.on('disconnect', () => process.exit(0));
  return new Promise<never>(() => {});
}

const role = process.env[ROLE_ENV];
if (role !== undefined) await serve(role as AppName);

/** A server running in a child process. */
export interface ServerHandle {
  port: number;
  /** The child's process id. */
  pid: number;
  /** The breakers of the child's app, as they are now. */
  stats(): Promise<ServerStats>;
  /** Stops the child and waits for it to exit. */
  stop(): Promise<void>;
}

const live = new Set<ChildProcess>();

function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once('exit', () => resolve()));
}

function reply<T extends FromChild['type']>(
  child: ChildProcess,
  type: T,
  timeoutMs: number,
): Promise<Extract<FromChild, { type: T }>> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      done();
      reject(new Error(`the ${type} message of the server did not come in ${timeoutMs} ms`));
    }, timeoutMs);
    const onMessage = (raw: unknown): void => {
      const message = raw as FromChild;
      if (message.type !== type) return;
      done();
      resolve(message as Extract<FromChild, { type: T }>);
    };
    const onExit = (code: number | null, signal: string | null): void => {
      done();
      reject(new Error(`the server exited (${signal ?? `code ${String(code)}`})`));
    };
    const done = (): void => {
      clearTimeout(timer);
      child.off('message', onMessage);
      child.off('exit', onExit);
    };
    child.on('message', onMessage);
    child.once('exit', onExit);
  });
}

/** Parent side: starts `name` in a child process and resolves once it listens. */
export async function startServer(name: AppName): Promise<ServerHandle> {
  // The running bundle (dist/main.js) is the child's entry point.
  const entry = fileURLToPath(import.meta.url);
  const child = fork(entry, [], {
    env: { ...process.env, [ROLE_ENV]: name },
    execArgv: [],
    stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
  });
  live.add(child);
  child.once('exit', () => live.delete(child));
  try {
    const { port } = await reply(child, 'ready', 15_000);
    return {
      port,
      pid: child.pid!,
      async stats() {
        const answer = reply(child, 'stats', 5_000);
        child.send({ type: 'stats' } satisfies ToChild);
        const { breakers } = await answer;
        return { breakers };
      },
      async stop() {
        if (child.connected) child.send({ type: 'stop' } satisfies ToChild);
        const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
        await exited(child);
        clearTimeout(timer);
      },
    };
  } catch (error) {
    child.kill('SIGKILL');
    throw error;
  }
}

/** Kills every server child still running (after a failed case). */
export async function stopAllServers(): Promise<void> {
  const children = [...live];
  for (const child of children) child.kill('SIGKILL');
  await Promise.all(children.map(exited));
}
