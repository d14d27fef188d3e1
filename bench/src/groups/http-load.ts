import { readFileSync } from 'node:fs';
import { get, type IncomingHttpHeaders } from 'node:http';
import autocannon from 'autocannon';

/** Connections autocannon keeps busy, one request at a time on each (no pipelining). */
export const CONNECTIONS = 10;

/** What one autocannon run measured. */
export interface LoadResult {
  /** 2xx responses received. */
  responses: number;
  seconds: number;
  reqPerSec: number;
  /** Latencies of the 2xx responses in milliseconds, sorted. */
  latencies: Float64Array;
  non2xx: number;
  errors: number;
  timeouts: number;
  /**
   * Share of the run the server's and the load generator's main threads were ready to run but
   * waited for a CPU (other processes' load), in percent; undefined where the OS does not tell.
   */
  serverWaitPct: number | undefined;
  clientWaitPct: number | undefined;
  /**
   * CPU time the server's main thread (where the app's JavaScript runs) used during the run, in
   * ns; undefined where the OS does not tell. Unlike req/s, hardly moved by other processes.
   */
  serverCpuNs: number | undefined;
}

interface SchedStat {
  /** Time on a CPU. */
  cpuNs: number;
  /** Time ready to run, waiting for a CPU. */
  waitNs: number;
}

/** A thread's Linux schedstat (first two fields), or undefined where there is none. */
function schedStat(path: string): SchedStat | undefined {
  try {
    const [cpu, wait] = readFileSync(path, 'latin1').split(' ').map(Number);
    return Number.isFinite(cpu) && Number.isFinite(wait)
      ? { cpuNs: cpu!, waitNs: wait! }
      : undefined;
  } catch {
    return undefined;
  }
}

function delta(
  before: SchedStat | undefined,
  after: SchedStat | undefined,
  field: keyof SchedStat,
): number | undefined {
  return before === undefined || after === undefined ? undefined : after[field] - before[field];
}

function waitPct(before: SchedStat | undefined, after: SchedStat | undefined, wallNs: number) {
  const wait = delta(before, after, 'waitNs');
  return wait === undefined ? undefined : (wait / wallNs) * 100;
}

/** Nearest-rank percentile of sorted values. */
export function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

/**
 * Runs autocannon against `GET http://127.0.0.1:<port>/` for `durationMs` with
 * {@link CONNECTIONS} connections. Latencies come from autocannon's per-response times
 * (fractions of a millisecond kept), throughput from the responses counted over the run.
 */
export function generateLoad(
  port: number,
  durationMs: number,
  serverPid: number,
): Promise<LoadResult> {
  const serverStat = `/proc/${serverPid}/schedstat`;
  const clientStat = '/proc/thread-self/schedstat';
  let latencies = new Float64Array(1 << 16);
  let count = 0;
  return new Promise((resolve, reject) => {
    const start = process.hrtime.bigint();
    const serverBefore = schedStat(serverStat);
    const clientBefore = schedStat(clientStat);
    const instance = autocannon(
      {
        url: `http://127.0.0.1:${port}/`,
        connections: CONNECTIONS,
        pipelining: 1,
        duration: durationMs / 1000,
        // autocannon ends a run at its first sample tick past the duration (1 s by default).
        sampleInt: 50,
      },
      (error, result) => {
        const wallNs = Number(process.hrtime.bigint() - start);
        const serverAfter = schedStat(serverStat);
        const clientAfter = schedStat(clientStat);
        if (error) {
          reject(error instanceof Error ? error : new Error(String(error)));
          return;
        }
        resolve({
          responses: count,
          seconds: wallNs / 1e9,
          reqPerSec: count / (wallNs / 1e9),
          latencies: latencies.slice(0, count).sort(),
          non2xx: result.non2xx,
          errors: result.errors,
          timeouts: result.timeouts,
          serverWaitPct: waitPct(serverBefore, serverAfter, wallNs),
          clientWaitPct: waitPct(clientBefore, clientAfter, wallNs),
          serverCpuNs: delta(serverBefore, serverAfter, 'cpuNs'),
        });
      },
    );
    instance.on('response', (_client, statusCode, _bytes, responseTime) => {
      if (statusCode < 200 || statusCode >= 300) return;
      if (count === latencies.length) {
        const grown = new Float64Array(latencies.length * 2);
        grown.set(latencies);
        latencies = grown;
      }
      latencies[count++] = responseTime;
    });
  });
}

/** One `GET /` on a fresh connection: status, headers and body. */
export function getOnce(
  port: number,
): Promise<{ status: number; headers: IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const req = get({ host: '127.0.0.1', port, path: '/', agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.setTimeout(5_000, () => req.destroy(new Error('GET / took longer than 5 s')));
  });
}
