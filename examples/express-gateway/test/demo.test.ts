import { describe, expect, it } from '@jest/globals';
import { spawn } from 'node:child_process';
import path from 'node:path';

// The scripted demo, end to end, as `pnpm demo --duration 8` runs it.

const EXAMPLE = path.resolve(__dirname, '..');
const KILL_AFTER_MS = 60_000;

interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

function runDemo(args: string[]): Promise<Run> {
  const env: NodeJS.ProcessEnv = { ...process.env, NO_COLOR: '1' };
  delete env.REDIS_URL; // the demo needs nothing but Node
  const child = spawn(process.execPath, ['../../scripts/run-ts.mjs', 'src/main.ts', ...args], {
    cwd: EXAMPLE,
    env,
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

describe('pnpm demo (scripted)', () => {
  it(
    "exits 0, shows plant-id's breaker opening and closing again as it happens, and prints the summary",
    async () => {
      const run = await runDemo(['--duration', '8']);
      const context = `stdout:\n${run.stdout}\nstderr:\n${run.stderr}`;
      expect({ code: run.code, signal: run.signal, context }).toEqual({
        code: 0,
        signal: null,
        context,
      });

      const lines = run.stdout.split('\n');
      const index = (pattern: RegExp, from = 0): number =>
        lines.findIndex((line, i) => i >= from && pattern.test(line));
      // "  +1.63s  plant-id        closed -> open        3 consecutive failures"
      const failing = index(/^\s+\+\d+\.\d{2}s\s+plant-id\s+\* upstream starts failing/);
      const opened = index(/^\s+\+\d+\.\d{2}s\s+plant-id\s+closed -> open\s+\S/);
      const closed = index(/^\s+\+\d+\.\d{2}s\s+plant-id\s+half_open -> closed\s+\S/, opened);
      const summary = index(/^Summary after \d+\.\d s: \d+ requests/);
      // Each found, in this order: the failure, the breaker opening, closing again, the summary.
      const order = { failing, opened, closed, summary };
      const inOrder = failing >= 0 && opened > failing && closed > opened && summary > closed;
      expect({ order: inOrder ? 'as expected' : order, context }).toEqual({
        order: 'as expected',
        context,
      });

      // Weather's quota runs out at 60 %: the next fetch is answered 429 and its Retry-After
      // opens the circuit, then the new day closes it again.
      const usedUp = index(/^\s+\+\d+\.\d{2}s\s+weather\s+\* daily quota used up/);
      const answered429 = index(/^\s+\+\d+\.\d{2}s\s+weather\s+\* upstream answered 429/, usedUp);
      const weatherOpened = index(/^\s+\+\d+\.\d{2}s\s+weather\s+closed -> open\s/, usedUp);
      const weatherOrder = { usedUp, answered429, weatherOpened, summary };
      const weatherInOrder =
        usedUp >= 0 && answered429 > usedUp && weatherOpened > usedUp && summary > weatherOpened;
      expect({ weather: weatherInOrder ? 'as expected' : weatherOrder, context }).toEqual({
        weather: 'as expected',
        context,
      });

      // The table: a header, then one row per service and a total, numbers in every column.
      const table = lines.slice(summary);
      expect(table.join('\n')).toMatch(
        /service\s+calls\s+successes\s+failures\s+rejected\s+fallbacks\s+rate-limited\s+retries\s+breaker/,
      );
      const row = (name: string): number[] => {
        const line = table.find((l) => l.trimStart().startsWith(`${name} `));
        expect(line).toBeDefined();
        return line!.trim().split(/\s+/).slice(1, 8).map(Number);
      };
      const plantId = row('plant-id');
      const weather = row('weather');
      const inventory = row('inventory');
      const total = row('total');
      for (const numbers of [plantId, weather, inventory, total]) {
        expect(numbers).toHaveLength(7);
        for (const n of numbers) expect(Number.isInteger(n)).toBe(true);
      }
      const [calls, successes, failures, rejected, fallbacks, rateLimited] = plantId;
      expect(calls).toBeGreaterThan(0);
      expect(failures! + rejected!).toBeGreaterThan(0); // the outage was felt...
      expect(fallbacks).toBeGreaterThan(0); // ...and softened by the cache
      expect(rateLimited).toBeGreaterThan(0); // the scraper hit its limit
      expect(successes).toBeGreaterThan(0);
      expect(table.join('\n')).toMatch(/^\s+plant-id(\s+\d+){7}\s+closed$/m);
      expect(total[0]).toBe(plantId[0]! + weather[0]! + inventory[0]!);
      expect(run.stderr).toBe('');
    },
    KILL_AFTER_MS + 10_000,
  );
});
