import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import {
  bundleWorker,
  quantile,
  startWorkers,
  until,
  type Worker,
} from './fixtures/breaker-workers';
import { redisUrl, skipReason, sleep } from './helpers';

/*
 * Four worker processes share breakers through one redis-server (the run's shared server).
 * Each test uses breaker names of its own, so tests never see each other's circuits.
 */

const describeRedis = redisUrl ? describe : describe.skip;
const WORKERS = 4;
const runId = `${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;
let nameSeq = 0;
const uniqueName = (label: string): string => `${label}-${runId}-${nameSeq++}`;

interface Transition {
  at: number;
  from: string;
  to: string;
  reason: string;
}

describeRedis(`Shared breakers across ${WORKERS} processes${skipReason}`, () => {
  let workers: Worker[] = [];
  let cleanup: () => void = () => {};

  beforeAll(async () => {
    const bundle = await bundleWorker();
    cleanup = bundle.cleanup;
    workers = await startWorkers(bundle.file, WORKERS, redisUrl!);
  }, 30_000);

  afterAll(async () => {
    await Promise.all(workers.map((w) => w.stop()));
    cleanup();
  }, 15_000);

  const all = <T>(cmd: string, args: Record<string, unknown> = {}): Promise<T[]> =>
    Promise.all(workers.map((w) => w.request<T>(cmd, args)));
  const create = (name: string, options: Record<string, unknown>): Promise<unknown[]> =>
    all('create', { name, options });
  const states = (name: string): Promise<string[]> => all<string>('state', { name });
  const everyone = async (name: string, state: string): Promise<boolean> =>
    (await states(name)).every((s) => s === state);

  it('failures spread across workers open the circuit in all of them (rate rule)', async () => {
    const name = uniqueName('spread-rate');
    // 6 failures per worker: never enough for one process (minimumCalls 20), 24 together.
    await create(name, {
      failureThreshold: false,
      failureRateThreshold: 50,
      minimumCalls: 20,
      openDurationMs: 60_000,
    });
    const outcomes = await all<{ failed: number; rejected: number }>('calls', {
      name,
      count: 6,
      fail: true,
    });
    expect(outcomes.every((o) => o.failed === 6)).toBe(true);
    await until(() => everyone(name, 'open'), 'every worker to open', 3_000);
    for (const log of await all<Transition[]>('transitions', { name })) {
      expect(log).toHaveLength(1);
      expect(log[0]).toMatchObject({ from: 'closed', to: 'open' });
      expect(log[0]!.reason).toMatch(/^failure rate 100% >= 50% over 2[0-4] calls \(cluster\)$/);
    }
  });

  it('counts consecutive failures across workers, and a reset from one worker closes all', async () => {
    const name = uniqueName('spread-consecutive');
    // 3 failures per worker: under the threshold of 10 in each process, 12 together.
    await create(name, { failureThreshold: 10, openDurationMs: 60_000 });
    await all('calls', { name, count: 3, fail: true });
    await until(() => everyone(name, 'open'), 'every worker to open', 3_000);
    const logs = await all<Transition[]>('transitions', { name });
    expect(logs.every((log) => /consecutive failures \(cluster\)$/.test(log[0]!.reason))).toBe(
      true,
    );

    const resetAt = await workers[2]!.request<number>('reset', { name });
    await until(() => everyone(name, 'closed'), 'every worker to close', 2_000);
    for (const log of await all<Transition[]>('transitions', { name })) {
      expect(log.at(-1)).toMatchObject({ from: 'open', to: 'closed', reason: 'reset' });
      expect(log.at(-1)!.at).toBeGreaterThanOrEqual(resetAt);
    }
    // Closed everywhere means calls pass everywhere.
    const after = await all<{ ok: number }>('calls', { name, count: 2 });
    expect(after.every((o) => o.ok === 2)).toBe(true);
  });

  it('lets exactly halfOpen.maxConcurrent probes through among 4 x 250 concurrent callers', async () => {
    const name = uniqueName('probes');
    const maxConcurrent = 3;
    await create(name, {
      failureThreshold: 2,
      openDurationMs: 60_000,
      halfOpen: { maxConcurrent, successThreshold: 1 },
    });
    await workers[0]!.request('openFor', { name, ms: 150 });
    await until(() => everyone(name, 'open'), 'every worker to follow', 2_000);
    await sleep(200);

    const bursts = await all<{ started: number; rejected: number; other: number }>('burst', {
      name,
      callers: 250,
    });
    const started = bursts.reduce((sum, b) => sum + b.started, 0);
    const rejected = bursts.reduce((sum, b) => sum + b.rejected, 0);
    expect(bursts.every((b) => b.other === 0)).toBe(true);
    expect(started).toBe(maxConcurrent);
    expect(rejected).toBe(WORKERS * 250 - maxConcurrent);

    // The probes succeed: the first success closes the circuit for everyone.
    await all('release', { name });
    await until(() => everyone(name, 'closed'), 'every worker to close', 2_000);
  });

  it('one sick worker among three healthy ones: the shared circuit stays closed, a local one opens', async () => {
    const shared = uniqueName('sick-shared');
    const local = uniqueName('sick-local');
    const options = {
      failureThreshold: 5,
      failureRateThreshold: 50,
      minimumCalls: 20,
      openDurationMs: 60_000,
    };
    await create(shared, options);
    await Promise.all(
      workers.map((w) =>
        w.request('create', { name: local, options: { ...options, scope: 'local' } }),
      ),
    );

    const sick = workers[3]!;
    await Promise.all(
      workers.flatMap((w) =>
        [shared, local].map((name) =>
          w.request('startLoad', { name, intervalMs: 3, fail: w === sick, maxMs: 10_000 }),
        ),
      ),
    );
    await sleep(1_500);
    const stats = await Promise.all(
      workers.flatMap((w) =>
        [shared, local].map((name) =>
          w.request<{ ok: number; failed: number; rejected: number; unexpected: number }>(
            'stopLoad',
            { name },
          ),
        ),
      ),
    );

    // The sick worker failed many times over its own threshold, in both breakers...
    const sickShared = stats[6]!;
    expect(sickShared.failed).toBeGreaterThan(50);
    // ...yet the shared circuit never left closed, anywhere: 25 % failures, and healthy
    // processes kept reporting successes.
    for (const log of await all<Transition[]>('transitions', { name: shared })) {
      expect(log).toEqual([]);
    }
    expect(await states(shared)).toEqual(['closed', 'closed', 'closed', 'closed']);
    // In local scope, only the sick worker's circuit opened.
    expect(await states(local)).toEqual(['closed', 'closed', 'closed', 'open']);
    const sickLocal = (await sick.request<Transition[]>('transitions', { name: local }))[0];
    expect(sickLocal).toMatchObject({
      from: 'closed',
      to: 'open',
      reason: '5 consecutive failures',
    });
    expect(stats.every((s) => s.unexpected === 0)).toBe(true);
  });

  it('propagates transitions to every process within milliseconds (200 transitions)', async () => {
    const name = uniqueName('latency');
    await create(name, { openDurationMs: 60_000 });
    const count = 200;
    const times = await workers[0]!.request<number[]>('toggle', { name, count, gapMs: 8 }, 20_000);
    expect(times).toHaveLength(count);
    const followers = workers.slice(1);
    await until(
      async () => {
        const logs = await Promise.all(
          followers.map((w) => w.request<Transition[]>('transitions', { name })),
        );
        return logs.every((log) => log.length >= count);
      },
      'every follower to see every transition',
      5_000,
    );
    const latencies: number[] = [];
    for (const follower of followers) {
      const log = await follower.request<Transition[]>('transitions', { name });
      expect(log).toHaveLength(count);
      log.forEach((transition, i) => {
        expect(transition.to).toBe(i % 2 === 0 ? 'forced_open' : 'closed');
        latencies.push(transition.at - times[i]!);
      });
    }
    const p50 = quantile(latencies, 0.5);
    const p99 = quantile(latencies, 0.99);
    process.stdout.write(
      `\n  transition propagation across processes (${latencies.length} samples, ${count} transitions x ${followers.length} followers): ` +
        `p50 ${p50.toFixed(2)} ms, p99 ${p99.toFixed(2)} ms, max ${Math.max(...latencies).toFixed(2)} ms\n`,
    );
    // Timings are reported, not asserted (a loaded CI machine is not a benchmark).
    expect(Number.isFinite(p99)).toBe(true);
  }, 30_000);

  it('no unhandled rejection and no store error in any worker', async () => {
    const health = await all<{ unhandled: number; storeErrors: number }>('health');
    expect(health).toEqual(workers.map(() => ({ unhandled: 0, storeErrors: 0 })));
  });
});
