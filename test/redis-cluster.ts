import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A Redis Cluster of masters (no replicas) on free loopback ports, for tests. */
export interface RedisClusterHandle {
  /** The masters' ports, in the order they were started. */
  readonly ports: readonly number[];
  /** `{ host, port }` of every master: the startup nodes of an ioredis `Cluster`. */
  readonly nodes: readonly { host: string; port: number }[];
  /** Kills the master on `port` with SIGKILL (its slots stay unserved: no replica takes over). */
  kill(port: number): Promise<void>;
  /** Stops every node and removes their files. */
  stop(): Promise<void>;
}

/** The major version of the redis-server on the PATH (7 and later have sharded pub/sub). */
export function redisMajorVersion(): number {
  const out = spawnSync('redis-server', ['--version'], { encoding: 'utf8' }).stdout ?? '';
  const match = /v=(\d+)\./.exec(out);
  return match ? Number(match[1]) : 0;
}

function isFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.unref();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

/** A free port whose cluster bus port (port + 10000) is free too. */
async function clusterPort(taken: Set<number>): Promise<number> {
  for (let i = 0; i < 200; i++) {
    const port = 20_000 + Math.floor(Math.random() * 30_000);
    if (taken.has(port) || taken.has(port + 10_000)) continue;
    if ((await isFree(port)) && (await isFree(port + 10_000))) {
      taken.add(port);
      taken.add(port + 10_000);
      return port;
    }
  }
  throw new Error('no free port pair for a cluster node');
}

function run(command: string, args: string[]): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (out += chunk.toString()));
    child.on('exit', (code) => resolve({ code: code ?? 1, out }));
  });
}

async function waitFor(check: () => Promise<boolean>, timeoutMs: number, what: string) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`Timed out waiting for ${what}`);
}

/**
 * Starts `masters` redis-server processes with `--cluster-enabled yes` and joins them with
 * `redis-cli --cluster create` (no replicas); resolves once every node reports
 * `cluster_state:ok`.
 */
export async function startRedisCluster(masters = 3): Promise<RedisClusterHandle> {
  const dir = mkdtempSync(join(tmpdir(), 'bw-redis-cluster-'));
  const taken = new Set<number>();
  const children = new Map<number, ChildProcess>();
  const ports: number[] = [];
  for (let i = 0; i < masters; i++) ports.push(await clusterPort(taken));

  const stopAll = async (): Promise<void> => {
    await Promise.all(
      [...children.values()].map(
        (child) =>
          new Promise<void>((resolve) => {
            if (child.exitCode !== null || child.signalCode !== null) return resolve();
            child.once('exit', () => resolve());
            child.kill('SIGKILL');
          }),
      ),
    );
    children.clear();
    rmSync(dir, { recursive: true, force: true });
  };

  try {
    for (const port of ports) {
      const child = spawn(
        'redis-server',
        [
          '--port',
          String(port),
          '--bind',
          '127.0.0.1',
          '--cluster-enabled',
          'yes',
          '--cluster-config-file',
          join(dir, `nodes-${port}.conf`),
          '--cluster-node-timeout',
          '2000',
          '--dir',
          dir,
          '--save',
          '',
          '--appendonly',
          'no',
        ],
        { stdio: 'ignore' },
      );
      children.set(port, child);
    }
    for (const port of ports) {
      await waitFor(
        async () => (await run('redis-cli', ['-p', String(port), 'PING'])).out.includes('PONG'),
        10_000,
        `cluster node ${port}`,
      );
    }
    const created = await run('redis-cli', [
      '--cluster',
      'create',
      ...ports.map((port) => `127.0.0.1:${port}`),
      '--cluster-replicas',
      '0',
      '--cluster-yes',
    ]);
    if (created.code !== 0) throw new Error(`redis-cli --cluster create failed:\n${created.out}`);
    for (const port of ports) {
      await waitFor(
        async () =>
          (await run('redis-cli', ['-p', String(port), 'CLUSTER', 'INFO'])).out.includes(
            'cluster_state:ok',
          ),
        15_000,
        `cluster_state:ok on ${port}`,
      );
    }
  } catch (error) {
    await stopAll();
    throw error;
  }

  return {
    ports,
    nodes: ports.map((port) => ({ host: '127.0.0.1', port })),
    kill: async (port) => {
      const child = children.get(port);
      children.delete(port);
      if (child === undefined || child.exitCode !== null) return;
      await new Promise<void>((resolve) => {
        child.once('exit', () => resolve());
        child.kill('SIGKILL');
      });
    },
    stop: stopAll,
  };
}
