import { describe, expect, it } from '@jest/globals';
import { spawn } from 'node:child_process';
import path from 'node:path';

// The scripted run, end to end, as `pnpm --filter @breakwater/example-nest-plant-id start` runs it.

const EXAMPLE = path.resolve(__dirname, '..');
const KILL_AFTER_MS = 60_000;

interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

function start(args: string[]): Promise<Run> {
  const child = spawn(process.execPath, ['../../scripts/run-ts.mjs', 'src/main.ts', ...args], {
    cwd: EXAMPLE,
    env: { ...process.env, NO_COLOR: '1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const killer = setTimeout(() => child.kill('SIGKILL'), KILL_AFTER_MS);
  return new Promise((resolve) => {
    child.on('close', (code, signal) => {
      clearTimeout(killer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

describe('pnpm start (scripted)', () => {
  it(
    'exits 0 and shows the transitions, partial answers, the both-open 503 and the recovery in order',
    async () => {
      const run = await start([]);
      const context = `stdout:\n${run.stdout}\nstderr:\n${run.stderr}`;
      expect({ code: run.code, signal: run.signal, context }).toEqual({
        code: 0,
        signal: null,
        context,
      });

      // Each expected line, found after the previous one.
      const expected: [what: string, pattern: RegExp][] = [
        ['a complete answer', /^\s+\+\d+\.\ds\s+POST monstera #1\s+200\s+complete\s+Monstera/],
        ['a cache hit', /^\s+\+\d+\.\ds\s+POST monstera #1\s+200\s+cached\s/],
        ['a business 404', /POST pebble #1\s+404\s+no plant/],
        ['404s not counted', /consecutive failures plant-id 0, plantnet 0/],
        ['a partial answer while plant-id fails', /200\s+partial\s+Ficus lyrata .*plant-id failed/],
        [
          "plant-id's circuit opening",
          /^\s+\+\d+\.\ds\s+plant-id\s+closed -> open\s+3 consecutive/,
        ],
        [
          'a partial answer, circuit open',
          /200\s+partial\s+.*plant-id circuit open, probe in 60 s/,
        ],
        [
          "plantnet's circuit opening",
          /^\s+\+\d+\.\ds\s+plantnet\s+closed -> open\s+5 consecutive/,
        ],
        [
          'both open: 503, Retry-After the shorter time',
          /503\s+both open\s+Retry-After: 30\s+\(plant-id circuit open, probe in 45 s; plantnet circuit open, probe in 30 s\)/,
        ],
        ['still the shorter one later', /503\s+both open\s+Retry-After: 15\s/],
        ['plantnet probing', /plantnet\s+open -> half_open\s+open time elapsed/],
        ['plantnet closing', /plantnet\s+half_open -> closed\s+2 probe successes/],
        ['a failed probe', /plant-id\s+half_open -> open\s+probe failed/],
        ['plant-id closing', /plant-id\s+half_open -> closed\s+2 probe successes/],
        ['complete answers again', /200\s+complete\s+Dracaena trifasciata/],
        ['the summary', /^Summary: \d+ s of scenario time/],
        [
          'every kind of answer',
          /answers\s+complete 3, partial 7, cached 3, no plant 1, failed 5, both open 2/,
        ],
        ['the spared quota', /15 requests, only 4 reached the failing API/],
        ['both closed at the end', /breakers\s+plant-id closed, plantnet closed/],
      ];
      const lines = run.stdout.split('\n');
      let from = 0;
      const missing: string[] = [];
      for (const [what, pattern] of expected) {
        const index = lines.findIndex((line, i) => i >= from && pattern.test(line));
        if (index === -1) missing.push(what);
        else from = index + 1;
      }
      expect({ missing, context }).toEqual({ missing: [], context });
      expect(run.stderr).toBe('');
    },
    KILL_AFTER_MS + 10_000,
  );
});
