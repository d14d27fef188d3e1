import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createServer, connect } from 'node:net';

/** A redis-server child process on a free loopback port, for tests. */
export interface RedisServerHandle {
  readonly port: number;
  readonly url: string;
  /** Sends `signal` to the running server (SIGSTOP freezes it, SIGCONT resumes it). */
  signal(signal: NodeJS.Signals): void;
  /** Kills the server with SIGKILL (a crash, not a shutdown). */
  kill(): Promise<void>;
  /** Starts the server again on the same port after `kill()`. */
  restart(): Promise<void>;
  /** Stops the server for good. */
  stop(): Promise<void>;
}

/** Whether a redis-server binary is on the PATH. */
export function hasRedisServer(): boolean {
  return spawnSync('redis-server', ['--version'], { stdio: 'ignore' }).status === 0;
}

/** Finds a free TCP port on 127.0.0.1. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

function ping(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ port, host: '127.0.0.1' });
    let reply = '';
    const done = (ok: boolean): void => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(500, () => done(false));
    socket.on('error', () => done(false));
    socket.on('connect', () => socket.write('PING\r\n'));
    socket.on('data', (chunk) => {
      reply += chunk.toString();
      if (reply.includes('\r\n')) done(reply.startsWith('+PONG'));
    });
  });
}

async function waitFor(
  check: () => Promise<boolean>,
  timeoutMs: number,
  what: string,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`Timed out waiting for ${what}`);
}

/**
 * Starts redis-server on a free loopback port, without persistence; `extraArgs` are appended to
 * its command line (e.g. `['--enable-debug-command', 'yes']`).
 */
export async function startRedisServer(
  port?: number,
  extraArgs: readonly string[] = [],
): Promise<RedisServerHandle> {
  const chosen = port ?? (await freePort());
  let child: ChildProcess | undefined;

  const launch = async (): Promise<void> => {
    const proc = spawn(
      'redis-server',
      [
        '--port',
        String(chosen),
        '--bind',
        '127.0.0.1',
        '--save',
        '',
        '--appendonly',
        'no',
        '--protected-mode',
        'yes',
        ...extraArgs,
      ],
      { stdio: 'ignore' },
    );
    child = proc;
    const exited = new Promise<boolean>((resolve) => proc.once('exit', () => resolve(false)));
    await waitFor(
      () => Promise.race([ping(chosen), exited]),
      10_000,
      `redis-server on port ${chosen}`,
    );
  };

  const terminate = async (signal: NodeJS.Signals): Promise<void> => {
    const proc = child;
    child = undefined;
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
    proc.kill(signal);
    await exited;
  };

  await launch();
  return {
    port: chosen,
    url: `redis://127.0.0.1:${chosen}`,
    signal: (signal) => {
      child?.kill(signal);
    },
    kill: () => terminate('SIGKILL'),
    restart: launch,
    stop: () => terminate('SIGTERM'),
  };
}
