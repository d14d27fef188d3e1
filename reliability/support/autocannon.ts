import { spawn } from 'node:child_process';
import { repoPath } from './paths';

/** The part of autocannon's JSON result the reliability tests read. */
export interface CannonResult {
  requests: { total: number; average: number };
  /** Milliseconds. */
  latency: { average: number; p50: number; p90: number; p99: number; max: number };
  statusCodeStats: Record<string, { count: number }>;
  errors: number;
  timeouts: number;
  duration: number;
}

/** Options of {@link cannon}. */
export interface CannonOptions {
  connections: number;
  durationSeconds: number;
}

/**
 * Runs autocannon against `url` in a child process (so that its own allocations and CPU do not
 * count against the server under test) and resolves with its JSON result.
 */
export function cannon(url: string, options: CannonOptions): Promise<CannonResult> {
  const cli = repoPath('node_modules', 'autocannon', 'autocannon.js');
  const args = [
    cli,
    '--connections',
    String(options.connections),
    '--duration',
    String(options.durationSeconds),
    '--json',
    '--no-progress',
    url,
  ];
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    child.once('error', reject);
    child.once('exit', (code) => {
      if (code !== 0) {
        reject(new Error(`autocannon exited with ${code}: ${stderr.slice(-500)}`));
        return;
      }
      try {
        resolve(JSON.parse(stdout.slice(stdout.indexOf('{'))) as CannonResult);
      } catch (error) {
        reject(new Error(`autocannon printed no JSON: ${stdout.slice(0, 200)}`, { cause: error }));
      }
    });
  });
}

/** Requests per status code, e.g. `{ 200: 1234, 503: 567 }`. */
export function statusCounts(result: CannonResult): Record<string, number> {
  return Object.fromEntries(
    Object.entries(result.statusCodeStats).map(([status, { count }]) => [status, count]),
  );
}
