import { createHook } from 'node:async_hooks';
import { readFileSync } from 'node:fs';
import { setImmediate as nextMacrotask } from 'node:timers/promises';
import { median, spreadPct } from './stats';

/** A library whose code a case runs. */
export type Library =
  | 'node'
  | 'breakwater'
  | 'opossum'
  | 'cockatiel'
  | 'rate-limiter-flexible'
  | 'express-rate-limit'
  | 'express'
  | 'koa';

/**
 * A ratio this case is compared on: its measure divided by the measure of case `vs`
 * (`"group/id"`, or `"id"` inside the same group). With `max` (or `min`, for measures where
 * more is better, such as requests per second), the ratio is a target.
 */
export interface Comparison {
  vs: string;
  max?: number;
  min?: number;
}

interface CaseBase {
  /** Short kebab-case id, unique inside its group. */
  id: string;
  /** What the row shows. */
  label: string;
  library: Library;
  /** The reference row of the group (at most one per group). */
  baseline?: boolean;
  /** Ratios to report; the first is shown on the case's own row. */
  compare?: Comparison[];
}

/** A call measured in ns/op. */
export interface TimedCase extends CaseBase {
  kind: 'async' | 'sync';
  /** One call. An async case is awaited once per iteration, one after another. */
  fn: () => unknown;
  /** `'reject'`: every call must reject (async) or throw (sync); counted, and checked. */
  expect?: 'resolve' | 'reject';
  /** Checks once, before warm-up, that the case does what its label says; throws if not. */
  verify?: () => unknown;
  /** Absolute target on ns/op. */
  maxNs?: number;
  /** Operations one call performs (e.g. 64 requests in flight): ns/op is per operation. @defaultValue 1 */
  opsPerCall?: number;
  /** Warm-up calls instead of the run's (slow cases, e.g. network round trips). */
  warmupCalls?: number;
  /** Checks, after the rounds, that the case measured what it claims (e.g. no fallback); throws if not. */
  check?: () => void;
}

/** Heap and timers held by many idle instances. */
export interface MemoryCase extends CaseBase {
  kind: 'memory';
  /** How many instances to create and keep. */
  count: number;
  /** Creates instance `i`. Inputs the caller would hold anyway (names) come from `prepare`. */
  create: (i: number, prepared: readonly string[]) => unknown;
  /** Per-instance inputs created before the heap is measured. */
  prepare?: (count: number) => string[];
  /** Releases what the instances hold (timers). */
  dispose?: (instances: readonly unknown[]) => void;
  maxBytes?: number;
  maxTimers?: number;
}

/**
 * A case that takes its own measurement instead of the harness's rounds (a load generator
 * against a server, say). `measure` runs once, after the timed and memory cases.
 */
export interface ExternalCase extends CaseBase {
  kind: 'external';
  measure: (options: RunOptions) => Promise<ExternalResult>;
}

export type Case = TimedCase | MemoryCase | ExternalCase;

/** What a group's setup returns: its cases and how to release what they hold. */
export interface GroupInstance {
  cases: Case[];
  teardown?: () => unknown;
}

/** A benchmark group; each lives in its own file under src/groups/. */
export interface Group {
  name: string;
  /** One line shown under the table: what the group measures. */
  description: string;
  /** Why the group cannot run here (missing service), or undefined when it can. */
  unavailable?: () => string | undefined | Promise<string | undefined>;
  setup: () => GroupInstance | Promise<GroupInstance>;
  /**
   * Time the cases in the main process, not one process each (cases that hold connections or
   * servers set up once).
   */
  shareProcess?: boolean;
}

/** How long to measure. */
export interface RunOptions {
  warmupCalls: number;
  rounds: number;
  /** Time one round aims at; the batch size follows from the calibration. */
  roundNs: number;
  /** Wall time after which a slow case stops warming up early. */
  maxWarmupNs: number;
  /** Shortest wall time of the calibration probe. */
  minProbeNs: number;
  minBatch: number;
  maxBatch: number;
  /** Memory cases: rounds (median taken) and cap on instances (quick mode). */
  memoryRounds: number;
  memoryCountCap?: number;
  /** External cases that generate load: how long one measurement lasts, in ms. */
  loadMs: number;
}

export const fullRun: RunOptions = {
  warmupCalls: 50_000,
  rounds: 7,
  roundNs: 100e6,
  minProbeNs: 20e6,
  maxWarmupNs: 1e9,
  minBatch: 50,
  maxBatch: 100_000_000,
  memoryRounds: 3,
  loadMs: 5_000,
};

export const quickRun: RunOptions = {
  warmupCalls: 5_000,
  rounds: 5,
  roundNs: 20e6,
  minProbeNs: 5e6,
  maxWarmupNs: 0.2e9,
  minBatch: 20,
  maxBatch: 10_000_000,
  memoryRounds: 1,
  memoryCountCap: 2_000,
  loadMs: 2_000,
};

export interface TimedResult {
  kind: 'timed';
  /** Median over the rounds of (wall time − run-queue wait) per op; wall time where unknown. */
  nsPerOp: number;
  opsPerSec: number;
  /** Median over the rounds of the wall time per op, as measured. */
  wallNsPerOp: number;
  /** ns/op of each round (corrected as `nsPerOp`). */
  samples: number[];
  /**
   * Share of the rounds' wall time the process's main thread was ready to run but waited for a
   * CPU (other processes' load), in percent; undefined where the OS does not tell.
   */
  waitPct: number | undefined;
  /** Calls per round. */
  batch: number;
  /** Median absolute deviation of the rounds, in percent of the median. */
  spreadPct: number;
}

export interface MemoryResult {
  kind: 'memory';
  count: number;
  bytesPerInstance: number;
  /** Every live timer (ref'd or unref'd) per instance. */
  timersPerInstance: number;
  /** Timers that keep the process alive (process.getActiveResourcesInfo()) per instance. */
  refTimersPerInstance: number;
}

/** One measure of an external case: a column of its table and a field of its JSON line. */
export interface ExternalField {
  /** JSON key, e.g. `reqPerSec`. */
  key: string;
  /** Column header, e.g. `req/s`. */
  header: string;
  value: number | null;
  /** The cell as shown. */
  text: string;
}

export interface ExternalResult {
  kind: 'external';
  /** The measure ratios are taken on. */
  value: number;
  /** What `value` counts, e.g. `req/s` (shown in the ratio column's header). */
  unit: string;
  /** More is better: ratio targets are then minimums (`min`). */
  higherIsBetter: boolean;
  /** The row's measures, in column order (the same for every case of a group). */
  fields: ExternalField[];
}

export type Result = TimedResult | MemoryResult | ExternalResult;

const now = process.hrtime.bigint;

const SCHEDSTAT = '/proc/thread-self/schedstat';

/**
 * Nanoseconds the calling thread has spent runnable but waiting for a CPU (Linux schedstat,
 * second field), or undefined where the file does not exist.
 */
function readRunQueueWaitNs(): number | undefined {
  try {
    const fields = readFileSync(SCHEDSTAT, 'latin1').split(' ');
    const wait = Number(fields[1]);
    return Number.isFinite(wait) ? wait : undefined;
  } catch {
    return undefined;
  }
}

/** Whether run-queue wait can be read here; decided once. */
export const canCorrectForLoad = readRunQueueWaitNs() !== undefined;

/** Wall time of a batch and the part of it the main thread spent waiting for a CPU. */
interface BatchTime {
  wallNs: number;
  waitNs: number;
}

function gc(): void {
  const collect = (globalThis as { gc?: () => void }).gc;
  if (!collect) throw new Error('run node with --expose-gc');
  collect();
  collect();
}

type AsyncRunner = (fn: () => unknown, n: number) => Promise<number>;
type SyncRunner = (fn: () => unknown, n: number) => number;

/*
 * Each case gets its own freshly compiled loop, so one case's call-site feedback (inline
 * caches, inlining decisions) never leaks into the next case's measurement.
 */
function compileRunner(
  kind: 'async' | 'sync',
  expect: 'resolve' | 'reject',
): AsyncRunner | SyncRunner {
  const call = kind === 'async' ? 'await fn()' : 'fn()';
  const body =
    expect === 'reject'
      ? `let thrown = 0;
         for (let i = 0; i < n; i++) { try { ${call}; } catch { thrown++; } }
         return thrown;`
      : `let settled = 0;
         for (let i = 0; i < n; i++) { if (${call} !== sentinel) settled++; }
         return settled;`;
  const source = `const sentinel = Symbol('sentinel');
    return ${kind === 'async' ? 'async ' : ''}function run(fn, n) { ${body} };`;
  // eslint-disable-next-line @typescript-eslint/no-implied-eval
  const factory = new Function(source) as () => AsyncRunner | SyncRunner;
  return factory();
}

async function runBatch(
  run: AsyncRunner | SyncRunner,
  c: TimedCase,
  n: number,
): Promise<BatchTime> {
  // The wait is read inside the timed interval: a wait accounted between a reading and the
  // clock would otherwise count in one and not the other.
  const start = now();
  const waitBefore = canCorrectForLoad ? readRunQueueWaitNs()! : 0;
  const counted = await run(c.fn, n);
  const waitAfter = canCorrectForLoad ? readRunQueueWaitNs()! : 0;
  const elapsed = now() - start;
  if (counted !== n) {
    const what = c.expect === 'reject' ? 'to reject' : 'to settle';
    throw new Error(`${c.id}: expected all ${n} calls ${what}, got ${counted}`);
  }
  const wallNs = Number(elapsed);
  return { wallNs, waitNs: Math.min(wallNs, Math.max(0, waitAfter - waitBefore)) };
}

/** A timed case after warm-up and calibration: ready to run rounds of `batch` calls. */
export interface PreparedCase {
  readonly batch: number;
  /** Runs one timed round (a full collection first, so no case pays for another's garbage). */
  round(): Promise<void>;
  /** The result over the rounds run so far. */
  result(): TimedResult;
}

/** Checks the case, warms it up, and sizes its batch so one round takes about `roundNs`. */
export async function prepareTimed(c: TimedCase, options: RunOptions): Promise<PreparedCase> {
  await c.verify?.();
  const run = compileRunner(c.kind, c.expect ?? 'resolve');
  gc();
  // Warm up in chunks: `warmupCalls` calls, or fewer when a slow case reaches maxWarmupNs.
  const warmupCalls = Math.min(c.warmupCalls ?? options.warmupCalls, options.warmupCalls);
  const chunk = Math.max(1, Math.ceil(warmupCalls / 10));
  const warmupStart = now();
  for (let done = 0; done < warmupCalls; done += chunk) {
    await runBatch(run, c, chunk);
    if (Number(now() - warmupStart) > options.maxWarmupNs) break;
  }
  // Calibrate on a probe long enough to be measured (it grows until it takes minProbeNs of
  // wall time), on CPU time where known, so a loaded machine does not shrink the batch.
  let probe = Math.max(20, Math.floor(warmupCalls / 10));
  let probeTime = await runBatch(run, c, probe);
  while (probeTime.wallNs < options.minProbeNs && probe < options.maxBatch) {
    probe = Math.min(options.maxBatch, probe * 4);
    probeTime = await runBatch(run, c, probe);
  }
  const probeNs = Math.max(probeTime.wallNs - probeTime.waitNs, probeTime.wallNs / 10) / probe;
  const batch = Math.min(
    options.maxBatch,
    Math.max(options.minBatch, Math.round(options.roundNs / Math.max(probeNs, 0.1))),
  );
  // Calls run untimed after each collection, so a round does not pay for the sweeping and the
  // cold caches a forced collection leaves behind.
  const settle = Math.max(10, Math.round(batch / 20));
  const ops = batch * (c.opsPerCall ?? 1);
  const samples: number[] = [];
  const wall: number[] = [];
  let wallTotal = 0;
  let waitTotal = 0;
  return {
    batch,
    async round() {
      gc();
      await runBatch(run, c, settle);
      const time = await runBatch(run, c, batch);
      wall.push(time.wallNs / ops);
      samples.push((time.wallNs - time.waitNs) / ops);
      wallTotal += time.wallNs;
      waitTotal += time.waitNs;
    },
    result() {
      c.check?.();
      const nsPerOp = median(samples);
      return {
        kind: 'timed',
        nsPerOp,
        opsPerSec: 1e9 / nsPerOp,
        wallNsPerOp: median(wall),
        samples: [...samples],
        waitPct: canCorrectForLoad ? (waitTotal / wallTotal) * 100 : undefined,
        batch,
        spreadPct: spreadPct(samples),
      };
    },
  };
}

function refTimers(): number {
  return process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
}

/**
 * Creates `count` instances, keeps them, and reports heap bytes and timers per instance.
 * The heap is read after full collections; inputs from `prepare` and the array holding the
 * instances exist before the first reading, so only the instances themselves are counted.
 */
export async function measureMemory(c: MemoryCase, options: RunOptions): Promise<MemoryResult> {
  const count = Math.min(c.count, options.memoryCountCap ?? c.count);
  const prepared = c.prepare?.(count) ?? [];
  // Compile the constructors and create their hidden classes outside the measurement.
  const warm: unknown[] = [];
  for (let i = 0; i < Math.min(100, count); i++) warm.push(c.create(i, prepared));
  c.dispose?.(warm);
  warm.length = 0;

  const bytes: number[] = [];
  const ref: number[] = [];
  for (let r = 0; r < options.memoryRounds; r++) {
    const keep: unknown[] = new Array<unknown>(count).fill(null);
    gc();
    const timersBefore = refTimers();
    const heapBefore = process.memoryUsage().heapUsed;
    for (let i = 0; i < count; i++) keep[i] = c.create(i, prepared);
    gc();
    const heapAfter = process.memoryUsage().heapUsed;
    ref.push((refTimers() - timersBefore) / count);
    bytes.push((heapAfter - heapBefore) / count);
    c.dispose?.(keep);
    keep.fill(null);
  }

  // Every timer, unref'd ones included (getActiveResourcesInfo() leaves those out).
  const live = new Set<number>();
  const hook = createHook({
    init(id, type) {
      if (type === 'Timeout') live.add(id);
    },
    destroy(id) {
      live.delete(id);
    },
  });
  const keep: unknown[] = [];
  hook.enable();
  try {
    for (let i = 0; i < count; i++) keep.push(c.create(i, prepared));
    await nextMacrotask();
  } finally {
    hook.disable();
  }
  const timersPerInstance = live.size / count;
  c.dispose?.(keep);
  keep.length = 0;
  gc();

  return {
    kind: 'memory',
    count,
    bytesPerInstance: median(bytes),
    timersPerInstance,
    refTimersPerInstance: median(ref),
  };
}
