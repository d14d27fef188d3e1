import { describe, expect, it } from '@jest/globals';
import { spawn } from 'node:child_process';
import path from 'node:path';

// Ctrl-C on each example's serve mode, as a terminal delivers it: SIGINT to the whole process
// group (pnpm, the TypeScript runner and the example). The example stops cleanly and pnpm ends
// with status 0, printing no error of its own.

const ROOT = path.resolve(__dirname, '..', '..', '..');
const KILL_AFTER_MS = 45_000;

interface Run {
  code: number | null;
  output: string;
}

function serveThenCtrlC(args: string[], ready: RegExp): Promise<Run> {
  const child = spawn('pnpm', args, {
    cwd: ROOT,
    // Its own process group, like a terminal's foreground job.
    detached: true,
    env: { ...process.env, NO_COLOR: '1', REDIS_URL: process.env.BREAKWATER_TEST_REDIS_URL ?? '' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  let interrupted = false;
  const onData = (chunk: string): void => {
    output += chunk;
    if (!interrupted && ready.test(output)) {
      interrupted = true;
      process.kill(-child.pid!, 'SIGINT');
    }
  };
  child.stdout.setEncoding('utf8').on('data', onData);
  child.stderr.setEncoding('utf8').on('data', onData);
  const killer = setTimeout(() => process.kill(-child.pid!, 'SIGKILL'), KILL_AFTER_MS);
  return new Promise((resolve) => {
    child.on('close', (code) => {
      clearTimeout(killer);
      resolve({ code, output });
    });
  });
}

describe('Ctrl-C on an example in serve mode', () => {
  const examples: [name: string, args: string[], ready: RegExp, stopped: RegExp][] = [
    ['pnpm demo --serve', ['demo', '--serve'], /Ctrl-C stops/, /^Summary after/m],
    [
      'nest-plant-id --serve',
      ['--filter', '@breakwater/example-nest-plant-id', 'start', '--serve'],
      /Ctrl-C stops/,
      /stopping\.\.\./,
    ],
  ];
  if (process.env.BREAKWATER_TEST_REDIS_URL) {
    examples.push([
      'koa-ratelimit (serving until Ctrl-C)',
      ['--filter', '@breakwater/example-koa-ratelimit', 'start', '--port', '0'],
      /Ctrl-C stops it/,
      /\bstopping$/m,
    ]);
  }

  it.each(examples)(
    '%s stops cleanly and pnpm exits 0',
    async (_name, args, ready, stopped) => {
      const run = await serveThenCtrlC(args, ready);
      expect({ code: run.code, output: run.output }).toEqual({ code: 0, output: run.output });
      expect(run.output).toMatch(stopped);
      expect(run.output).not.toMatch(/ERR_PNPM|ELIFECYCLE|Command failed/);
    },
    60_000,
  );
});
