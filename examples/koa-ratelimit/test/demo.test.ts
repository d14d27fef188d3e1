import { describe, expect, it } from '@jest/globals';
import { spawn } from 'node:child_process';
import path from 'node:path';

// `pnpm start --demo`, end to end, in a child process (its own process group, so that a run
// that hangs is killed with the redis-server it started).

const EXAMPLE = path.resolve(__dirname, '..');
const KILL_AFTER_MS = 60_000;
const redisAvailable = process.env.BREAKWATER_TEST_REDIS_URL !== undefined;

interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

function runDemo(): Promise<Run> {
  const env: NodeJS.ProcessEnv = { ...process.env, NO_COLOR: '1' };
  delete env.REDIS_URL;
  const child = spawn(process.execPath, ['../../scripts/run-ts.mjs', 'src/main.ts', '--demo'], {
    cwd: EXAMPLE,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const killer = setTimeout(() => {
    try {
      process.kill(-child.pid!, 'SIGKILL');
    } catch {
      // Already gone.
    }
  }, KILL_AFTER_MS);
  return new Promise((resolve) => {
    child.on('close', (code, signal) => {
      clearTimeout(killer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

/** The lines of one numbered step: from its heading to the next blank line. */
function step(stdout: string, heading: RegExp): string[] {
  const lines = stdout.split('\n');
  const start = lines.findIndex((line) => heading.test(line));
  if (start < 0) return [];
  const end = lines.indexOf('', start);
  return lines.slice(start + 1, end < 0 ? undefined : end);
}

const request = (status: number, source: 'Redis' | 'memory'): RegExp =>
  new RegExp(
    `^\\s+\\+\\d+\\.\\d{2}s\\s+GET /api/plants\\s+${status}\\s+RateLimit: "api";r=\\d+;t=\\d+.*\\(decided from ${source}\\)$`,
  );
const has = (lines: string[], pattern: RegExp): boolean => lines.some((line) => pattern.test(line));

describe('pnpm start --demo', () => {
  it(
    redisAvailable
      ? 'exits 0 after showing the limiter on Redis, on memory while redis-server is killed, and on Redis again'
      : 'exits 0 and says that it needs redis-server (none is installed)',
    async () => {
      const run = await runDemo();
      const context = `stdout:\n${run.stdout}\nstderr:\n${run.stderr}`;
      expect({ code: run.code, signal: run.signal, context }).toEqual({
        code: 0,
        signal: null,
        context,
      });
      expect(run.stderr).toBe('');

      if (!redisAvailable) {
        expect(run.stdout).toMatch(/^redis-server is not on the PATH/m);
        return;
      }

      const up = step(run.stdout, /^1\. Redis is up: requests are limited through Redis$/);
      const down = step(run.stdout, /^2\. redis-server is killed \(SIGKILL\)/);
      const back = step(run.stdout, /^3\. redis-server is restarted/);
      const found = {
        up: {
          policy: has(up, /RateLimit-Policy: "api";q=5;w=60$/),
          allowed: has(up, request(200, 'Redis')),
          refused: has(up, request(429, 'Redis')),
          key: has(up, /redis key bw:rl:\{api:key:demo\}: present/),
          health: has(up, /GET \/health {2}200 {2}pass: /),
        },
        down: {
          log: has(down, /log: \[RATELIMIT\] api store failing -> answering from fallback/),
          allowed: has(down, request(200, 'memory')),
          refused: has(down, request(429, 'memory')),
          health: has(
            down,
            /GET \/health {2}200 {2}warn: .*api:rate-limit-store warn \(fallback\)/,
          ),
        },
        back: {
          emptied: has(back, /redis key bw:rl:\{api:key:demo\}: absent/),
          log: has(back, /log: \[RATELIMIT\] api store recovered$/),
          allowed: has(back, request(200, 'Redis')),
          refused: has(back, request(429, 'Redis')),
          key: has(back, /redis key bw:rl:\{api:key:demo\}: present/),
          health: has(back, /GET \/health {2}200 {2}pass: .*api:rate-limit-store pass \(primary\)/),
        },
        done: /^Done: limited through Redis, from memory while Redis was down/m.test(run.stdout),
      };
      const all = (group: Record<string, boolean>): boolean => Object.values(group).every(Boolean);
      const ok = all(found.up) && all(found.down) && all(found.back) && found.done;
      expect({ found: ok ? 'every key line' : found, context }).toEqual({
        found: 'every key line',
        context,
      });
      // Nothing decided from memory while Redis was up, nor after it came back.
      expect(has(up, /decided from memory/)).toBe(false);
      expect(has(back, /decided from memory/)).toBe(false);
      expect(has(down, /decided from Redis/)).toBe(false);
    },
    KILL_AFTER_MS + 10_000,
  );
});
