import { Agent } from 'node:http';
import { send } from './http';

/** One request of a {@link drive} run. */
export interface Sample {
  /** When it started, in ms since the run started. */
  at: number;
  /** Status, or 0 when it failed or got no complete answer within the time bound. */
  status: number;
  /** Time to the complete answer, in ms. */
  ms: number;
  /** Whether it carried a `RateLimit` header. */
  limited: boolean;
  /** The worker that sent it. */
  worker: number;
}

/** A running load; `stop()` waits for the requests in flight and returns every sample. */
export interface Drive {
  readonly samples: readonly Sample[];
  /** Milliseconds since the run started. */
  elapsed(): number;
  stop(): Promise<Sample[]>;
}

/** Options of {@link drive}. */
export interface DriveOptions {
  /** Requests in flight at once (one sequential loop each). */
  workers: number;
  /** Headers of a worker's requests. */
  headers?: (worker: number) => Record<string, string>;
  /** A request with no complete answer after this long counts as hanging. @defaultValue 2 000 */
  timeoutMs?: number;
}

/**
 * Sends requests to `url` from `workers` sequential loops over keep-alive connections until
 * stopped, recording status and time of each: a bounded, measurable load.
 */
export function drive(url: string, options: DriveOptions): Drive {
  const { workers, headers = () => ({}), timeoutMs = 2_000 } = options;
  const agent = new Agent({ keepAlive: true, maxSockets: workers });
  const samples: Sample[] = [];
  const started = performance.now();
  let running = true;
  const loop = async (worker: number): Promise<void> => {
    while (running) {
      const at = performance.now() - started;
      try {
        const reply = await send(url, { headers: headers(worker), agent, timeoutMs });
        samples.push({
          at,
          status: reply.status,
          ms: performance.now() - started - at,
          limited: reply.headers.ratelimit !== undefined,
          worker,
        });
      } catch {
        samples.push({
          at,
          status: 0,
          ms: performance.now() - started - at,
          limited: false,
          worker,
        });
      }
    }
  };
  const loops = Array.from({ length: workers }, (_, worker) => loop(worker));
  return {
    samples,
    elapsed: () => performance.now() - started,
    async stop() {
      running = false;
      await Promise.all(loops);
      agent.destroy();
      return samples;
    },
  };
}

/** The `q`-th percentile (0–100) of `values`. */
export function percentile(values: readonly number[], q: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((q / 100) * sorted.length) - 1)]!;
}

/** Waits until `check` resolves true, polling every `everyMs`; resolves false after `timeoutMs`. */
export async function eventually(
  check: () => boolean | Promise<boolean>,
  timeoutMs: number,
  everyMs = 25,
): Promise<boolean> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    if (await check()) return true;
    if (performance.now() >= deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, everyMs));
  }
}
