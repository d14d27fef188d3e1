/*
 * Overload: what happens to a service driven past its capacity, with and without load shedding,
 * and to a caller in front of a dependency that slows down as it gets busier.
 *
 * Server side: an Express 5 app whose handler needs one of SLOTS slots of a modelled downstream
 * for SERVICE_MS (a FIFO queue in front of it), so its capacity is SLOTS / SERVICE_MS. The app
 * runs in a child process (the bench bundle forked with OVERLOAD_ENV set) and is driven
 * open-loop: requests leave at a fixed rate whatever the answers, as real clients do, and each
 * gives up after CLIENT_TIMEOUT_MS. Client side: in-process calls to a dependency whose latency
 * grows with the calls it serves at once, through adaptiveConcurrency() or a fixed bulkhead.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { Agent, request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { adaptiveConcurrency, bulkhead, type Policy } from '@breakwater/core';
import { loadShed } from '@breakwater/express';
import express from 'express';
import type { ExternalCase, ExternalField, ExternalResult, Group } from '../harness';
import { percentile } from './http-load';

const OVERLOAD_ENV = 'BREAKWATER_BENCH_OVERLOAD_SERVER';
/** Slots of the modelled downstream, and how long a request holds one. */
const SLOTS = 4;
const SERVICE_MS = 20;
/** Requests per second the server can serve. */
const CAPACITY = (SLOTS * 1000) / SERVICE_MS;
/** A client gives up on a request after this long. */
const CLIENT_TIMEOUT_MS = 1_000;
const LOADS = [0.5, 1, 2, 3] as const;

/** Client side: the dependency serves DEP_SLOTS calls at once in DEP_BASE_MS; more, slower. */
const DEP_SLOTS = 4;
const DEP_BASE_MS = 20;
const DEP_CAPACITY = (DEP_SLOTS * 1000) / DEP_BASE_MS;
const DEP_LOAD = 3;

/** A downstream with `slots` slots, each held for `serviceMs`, and a FIFO queue without bound. */
class Downstream {
  private busy = 0;
  private readonly queue: (() => void)[] = [];

  constructor(
    private readonly slots: number,
    private readonly serviceMs: number,
  ) {}

  async use(): Promise<void> {
    if (this.busy < this.slots) this.busy++;
    else await new Promise<void>((resolve) => this.queue.push(resolve));
    await new Promise((resolve) => setTimeout(resolve, this.serviceMs));
    const next = this.queue.shift();
    if (next === undefined) this.busy--;
    else next(); // the slot passes to the next request
  }
}

/** Child side: serves the app, reports its port, exits when told. */
async function serve(shed: boolean): Promise<never> {
  const app = express();
  if (shed) app.use(loadShed({ name: 'overload' }));
  const downstream = new Downstream(SLOTS, SERVICE_MS);
  app.get('/', (_req, res, next) => {
    downstream.use().then(() => res.send('ok'), next);
  });
  const server = app.listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  process.send?.({ port: (server.address() as AddressInfo).port });
  process.on('message', () => process.exit(0));
  process.on('disconnect', () => process.exit(0));
  return new Promise<never>(() => undefined);
}

const role = process.env[OVERLOAD_ENV];
if (role !== undefined) await serve(role === 'shed');

const live = new Set<ChildProcess>();

async function startServer(shed: boolean): Promise<{ port: number; stop(): Promise<void> }> {
  const child = fork(fileURLToPath(import.meta.url), [], {
    env: { ...process.env, [OVERLOAD_ENV]: shed ? 'shed' : 'bare' },
    execArgv: [],
    stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
  });
  live.add(child);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  void exited.then(() => live.delete(child));
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('the overload server did not start')), 15_000);
    child.once('message', (message: { port: number }) => {
      clearTimeout(timer);
      resolve(message.port);
    });
    child.once('exit', () => reject(new Error('the overload server exited')));
  });
  return {
    port,
    async stop() {
      if (child.connected) child.send('stop');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

function stopAll(): void {
  for (const child of live) child.kill('SIGKILL');
}

/** What an open-loop run saw. */
interface OpenLoopResult {
  sent: number;
  /** Latencies of the successful calls, in ms, sorted. */
  latencies: Float64Array;
  /** Calls answered at once with a refusal (503, or the policy's rejection). */
  shed: number;
  /** Calls that failed otherwise or were given up on. */
  lost: number;
  seconds: number;
}

/**
 * Starts `call` at `rate` per second for `durationMs`, whatever the answers (open loop), and
 * waits for the calls still out (each bounded by its own timeout).
 */
async function openLoop(
  rate: number,
  durationMs: number,
  call: () => Promise<'ok' | 'shed' | 'lost'>,
): Promise<OpenLoopResult> {
  const latencies: number[] = [];
  let sent = 0;
  let shed = 0;
  let lost = 0;
  const pending = new Set<Promise<void>>();
  const start = performance.now();
  const fire = (): void => {
    sent++;
    const t0 = performance.now();
    const done = call().then((outcome) => {
      if (outcome === 'ok') latencies.push(performance.now() - t0);
      else if (outcome === 'shed') shed++;
      else lost++;
    });
    pending.add(done);
    void done.then(() => pending.delete(done));
  };
  await new Promise<void>((resolve) => {
    const timer = setInterval(() => {
      const elapsed = performance.now() - start;
      const due = Math.floor((rate * Math.min(elapsed, durationMs)) / 1000);
      while (sent < due) fire();
      if (elapsed >= durationMs) {
        clearInterval(timer);
        resolve();
      }
    }, 2);
  });
  await Promise.all(pending);
  return {
    sent,
    latencies: Float64Array.from(latencies).sort(),
    shed,
    lost,
    seconds: durationMs / 1000,
  };
}

/** One GET / with a client timeout: ok (2xx), shed (503) or lost. */
function get(port: number, agent: Agent): Promise<'ok' | 'shed' | 'lost'> {
  return new Promise((resolve) => {
    const req = request({ host: '127.0.0.1', port, path: '/', agent }, (res) => {
      res.resume();
      res.once('end', () => {
        const status = res.statusCode ?? 0;
        resolve(status >= 200 && status < 300 ? 'ok' : status === 503 ? 'shed' : 'lost');
      });
      res.once('error', () => resolve('lost'));
    });
    req.setTimeout(CLIENT_TIMEOUT_MS, () => req.destroy());
    req.once('error', () => resolve('lost'));
    req.end();
  });
}

const ms = (value: number): string =>
  Number.isNaN(value) ? '' : value < 10 ? value.toFixed(2) : value.toFixed(1);

function summarize(offered: number, run: OpenLoopResult): ExternalResult {
  const goodput = run.latencies.length / run.seconds;
  const p50 = percentile(run.latencies, 50);
  const p99 = percentile(run.latencies, 99);
  const shedPct = run.sent === 0 ? 0 : (run.shed / run.sent) * 100;
  const lostPct = run.sent === 0 ? 0 : (run.lost / run.sent) * 100;
  const number = (value: number): number | null =>
    Number.isNaN(value) ? null : Number(value.toFixed(3));
  const fields: ExternalField[] = [
    { key: 'offeredPerSec', header: 'offered/s', value: offered, text: String(offered) },
    {
      key: 'goodputPerSec',
      header: 'goodput/s',
      value: Math.round(goodput),
      text: String(Math.round(goodput)),
    },
    { key: 'p50Ms', header: 'p50 ms', value: number(p50), text: ms(p50) },
    { key: 'p99Ms', header: 'p99 ms', value: number(p99), text: ms(p99) },
    { key: 'shedPct', header: 'shed %', value: number(shedPct), text: shedPct.toFixed(1) },
    { key: 'lostPct', header: 'lost %', value: number(lostPct), text: lostPct.toFixed(1) },
    { key: 'requests', header: 'requests', value: run.sent, text: String(run.sent) },
  ];
  return { kind: 'external', value: goodput, unit: 'goodput/s', higherIsBetter: true, fields };
}

/** Server side: a fresh server per case, warmed up at the same rate, then measured. */
async function measureServer(load: number, shed: boolean, loadMs: number): Promise<ExternalResult> {
  const server = await startServer(shed);
  const agent = new Agent({ keepAlive: true, maxSockets: Infinity });
  try {
    const rate = Math.round(CAPACITY * load);
    await openLoop(rate, Math.max(500, loadMs / 2), () => get(server.port, agent));
    return summarize(rate, await openLoop(rate, loadMs, () => get(server.port, agent)));
  } finally {
    agent.destroy();
    await server.stop();
  }
}

/** Client side: a dependency whose latency grows with the calls it serves at once. */
class SlowingDependency {
  private inFlight = 0;

  async call(): Promise<void> {
    this.inFlight++;
    const delay = DEP_BASE_MS * Math.max(1, this.inFlight / DEP_SLOTS);
    try {
      await new Promise((resolve) => setTimeout(resolve, delay));
    } finally {
      this.inFlight--;
    }
  }
}

async function measureClient(policy: () => Policy, loadMs: number): Promise<ExternalResult> {
  const dependency = new SlowingDependency();
  const guard = policy();
  const rate = DEP_CAPACITY * DEP_LOAD;
  const call = (): Promise<'ok' | 'shed' | 'lost'> =>
    guard
      .execute(() => dependency.call())
      .then(
        () => 'ok' as const,
        () => 'shed' as const,
      );
  await openLoop(rate, Math.max(500, loadMs / 2), call);
  return summarize(rate, await openLoop(rate, loadMs, call));
}

const serverCases = LOADS.flatMap((load): ExternalCase[] =>
  [false, true].map((shed) => ({
    id: `${shed ? 'shed' : 'no-shed'}-${load}x`,
    label: `Express 5 at ${load}x capacity (${CAPACITY * load} req/s)${shed ? ' + loadShed()' : ''}`,
    library: shed ? 'breakwater' : 'express',
    kind: 'external',
    ...(load === 1 && !shed ? { baseline: true } : {}),
    ...(shed && load >= 2 ? { compare: [{ vs: 'no-shed-1x', min: 0.9 }] } : {}),
    ...(!shed && load >= 2 ? { compare: [{ vs: 'no-shed-1x' }] } : {}),
    measure: (options) => measureServer(load, shed, options.loadMs),
  })),
);

const clientCases: ExternalCase[] = [
  {
    id: `client-bulkhead-${DEP_SLOTS}`,
    label: `caller at ${DEP_LOAD}x a slowing dependency, bulkhead({ maxConcurrent: ${DEP_SLOTS} }) (the right size)`,
    library: 'breakwater',
    kind: 'external',
    measure: (options) =>
      measureClient(() => bulkhead({ maxConcurrent: DEP_SLOTS }), options.loadMs),
  },
  {
    id: 'client-bulkhead-64',
    label: `caller at ${DEP_LOAD}x a slowing dependency, bulkhead({ maxConcurrent: 64 })`,
    library: 'breakwater',
    kind: 'external',
    measure: (options) => measureClient(() => bulkhead({ maxConcurrent: 64 }), options.loadMs),
  },
  {
    id: 'client-adaptive-vegas',
    label: `caller at ${DEP_LOAD}x a slowing dependency, adaptiveConcurrency() (vegas)`,
    library: 'breakwater',
    kind: 'external',
    compare: [{ vs: 'client-bulkhead-64' }],
    measure: (options) => measureClient(() => adaptiveConcurrency(), options.loadMs),
  },
  {
    id: 'client-adaptive-gradient2',
    label: `caller at ${DEP_LOAD}x a slowing dependency, adaptiveConcurrency({ algorithm: 'gradient2' })`,
    library: 'breakwater',
    kind: 'external',
    compare: [{ vs: 'client-bulkhead-64' }],
    measure: (options) =>
      measureClient(() => adaptiveConcurrency({ algorithm: 'gradient2' }), options.loadMs),
  },
];

/**
 * Open-loop overload on loopback: a server of fixed capacity at 0.5x to 3x, with and without
 * loadShed(); and a caller in front of a slowing dependency, adaptive limit against a bulkhead.
 */
export const overload: Group = {
  name: 'overload',
  description:
    `open loop (fixed arrival rate) on 127.0.0.1; the server's handler needs one of ${SLOTS} ` +
    `downstream slots for ${SERVICE_MS} ms (capacity ${CAPACITY} req/s), clients give up after ` +
    `${CLIENT_TIMEOUT_MS} ms; goodput = 2xx per second, percentiles of 2xx only. Client rows: a ` +
    `dependency taking ${DEP_BASE_MS} ms × max(1, in flight / ${DEP_SLOTS}), called at ` +
    `${DEP_LOAD}x its capacity. ratio = goodput ÷ the named row's goodput.`,
  setup: () => ({ cases: [...serverCases, ...clientCases], teardown: stopAll }),
};
