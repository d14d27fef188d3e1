import {
  fullRun,
  quickRun,
  type Comparison,
  type ExternalCase,
  type ExternalField,
  type ExternalResult,
  type Group,
  type Library,
} from '../harness';
import { check } from '../work';
import { median, spreadPct } from '../stats';
import { CONNECTIONS, generateLoad, getOnce, percentile, type LoadResult } from './http-load';
import {
  HELLO,
  HTTP_LIMIT,
  LIMITER_NAME,
  startServer,
  stopAllServers,
  type AppName,
  type ServerHandle,
} from './http-server';

/** Share of the bare app's req/s an app with both Breakwater middlewares on its route keeps. */
const MIN_THROUGHPUT_RATIO = 0.95;

type Framework = 'express' | 'koa';

interface AppCase {
  app: AppName;
  framework: Framework;
  label: string;
  library: Library;
  baseline?: boolean;
  compare?: Comparison[];
  /** The rate-limit headers the app must send. */
  limiter?: 'breakwater' | 'express-rate-limit';
  /** The route's Breakwater breaker, which must have seen the calls. */
  breaker?: string;
}

const APPS: readonly AppCase[] = [
  {
    app: 'express-bare',
    framework: 'express',
    label: 'Express 5, hello world',
    library: 'express',
    baseline: true,
  },
  {
    app: 'express-breakwater',
    framework: 'express',
    label: 'Express 5 + circuitBreaker() + rateLimit()',
    library: 'breakwater',
    compare: [{ vs: 'express-bare', min: MIN_THROUGHPUT_RATIO }],
    limiter: 'breakwater',
    breaker: 'GET /',
  },
  {
    app: 'express-rate-limit',
    framework: 'express',
    label: 'Express 5 + express-rate-limit',
    library: 'express-rate-limit',
    compare: [{ vs: 'express-bare' }],
    limiter: 'express-rate-limit',
  },
  {
    app: 'koa-bare',
    framework: 'koa',
    label: 'Koa 3 + @koa/router, hello world',
    library: 'koa',
    compare: [{ vs: 'express-bare' }],
  },
  {
    app: 'koa-breakwater',
    framework: 'koa',
    label: 'Koa 3 + @koa/router + circuitBreaker() + rateLimit()',
    library: 'breakwater',
    compare: [{ vs: 'koa-bare', min: MIN_THROUGHPUT_RATIO }],
    limiter: 'breakwater',
    breaker: 'GET /',
  },
];

/** What the app's Breakwater limiter has counted in its current window. */
interface Counted {
  count: number;
  /** Seconds until the window ends. */
  resetS: number;
}

/** Reads {@link Counted} from a `RateLimit: "bench";r=<remaining>;t=<seconds>` header. */
function counted(header: string | string[] | undefined): Counted {
  const value = Array.isArray(header) ? header.join(', ') : (header ?? '');
  const match = /;r=(\d+);t=(\d+)/.exec(value);
  check(match !== null, `no remaining count in RateLimit: ${JSON.stringify(value)}`);
  return { count: HTTP_LIMIT - Number(match[1]), resetS: Number(match[2]) };
}

/** Checks that the app answers and that the middleware named by the case runs. */
async function verifyApp(c: AppCase, server: ServerHandle): Promise<Counted | undefined> {
  const res = await getOnce(server.port);
  check(res.status === 200, `${c.app}: GET / answered ${res.status}`);
  check(res.body === HELLO, `${c.app}: GET / answered ${JSON.stringify(res.body)}`);
  const policy = res.headers['ratelimit-policy'];
  if (c.limiter === 'breakwater') {
    check(
      String(policy).includes(`"${LIMITER_NAME}"`),
      `${c.app}: no RateLimit-Policy of the Breakwater limiter`,
    );
    return counted(res.headers.ratelimit);
  }
  if (c.limiter === 'express-rate-limit') {
    check(policy !== undefined, `${c.app}: express-rate-limit sent no RateLimit-Policy`);
  } else {
    check(policy === undefined, `${c.app}: a bare app sent rate-limit headers`);
  }
  return undefined;
}

function checkLoad(c: AppCase, phase: string, load: LoadResult): void {
  check(
    load.non2xx === 0 && load.errors === 0 && load.timeouts === 0,
    `${c.app} (${phase}): ${load.non2xx} non-2xx responses, ${load.errors} errors, ` +
      `${load.timeouts} timeouts`,
  );
  check(load.responses > 0, `${c.app} (${phase}): no response`);
}

/** Checks, after the runs, that every request went through the case's middleware. */
async function checkAfter(c: AppCase, live: LiveApp): Promise<void> {
  const after = await verifyApp(c, live.server);
  const before = live.counted;
  if (before !== undefined && after !== undefined) {
    const sent = live.sent + 1;
    // A window that ended during the run restarted the count (the windows are an hour long).
    const seen = after.resetS <= before.resetS ? after.count - before.count : after.count;
    const expected = after.resetS <= before.resetS ? sent : 1;
    check(seen >= expected, `${c.app}: the limiter counted ${seen} of ${sent} requests`);
  }
  if (c.breaker !== undefined) {
    const { breakers } = await live.server.stats();
    const breaker = breakers.find((b) => b.name === c.breaker);
    check(breaker !== undefined, `${c.app}: no breaker "${c.breaker}" was created`);
    check(
      breaker.state === 'closed' && breaker.calls > 0,
      `${c.app}: breaker "${c.breaker}" is ${breaker.state} with ${breaker.calls} calls`,
    );
  }
}

const ms = (value: number): string => (value < 10 ? value.toFixed(2) : value.toFixed(1));
const pct = (value: number | undefined): string => (value === undefined ? '' : value.toFixed(0));
const round = (value: number, digits: number): number => Number(value.toFixed(digits));

/** Time-weighted mean of the rounds' wait shares, or undefined where unknown. */
function meanWait(rounds: readonly LoadResult[], pick: (r: LoadResult) => number | undefined) {
  let weighted = 0;
  let seconds = 0;
  for (const r of rounds) {
    const wait = pick(r);
    if (wait === undefined) return undefined;
    weighted += wait * r.seconds;
    seconds += r.seconds;
  }
  return seconds > 0 ? weighted / seconds : undefined;
}

/** The case's result over its rounds: median req/s, and latencies of every round together. */
function summarize(rounds: readonly LoadResult[]): ExternalResult {
  const rates = rounds.map((r) => r.reqPerSec);
  const reqPerSec = median(rates);
  const all = new Float64Array(rounds.reduce((n, r) => n + r.latencies.length, 0));
  let at = 0;
  for (const r of rounds) {
    all.set(r.latencies, at);
    at += r.latencies.length;
  }
  all.sort();
  const p50 = percentile(all, 50);
  const p99 = percentile(all, 99);
  const serverWait = meanWait(rounds, (r) => r.serverWaitPct);
  const clientWait = meanWait(rounds, (r) => r.clientWaitPct);
  const spread = spreadPct(rates);
  const cpuNs = rounds.reduce<number | undefined>(
    (sum, r) =>
      sum === undefined || r.serverCpuNs === undefined ? undefined : sum + r.serverCpuNs,
    0,
  );
  const responses = rounds.reduce((n, r) => n + r.responses, 0);
  const cpuUs = cpuNs === undefined || responses === 0 ? undefined : cpuNs / responses / 1e3;
  const fields: ExternalField[] = [
    {
      key: 'reqPerSec',
      header: 'req/s',
      value: Math.round(reqPerSec),
      text: Math.round(reqPerSec).toLocaleString('en-US'),
    },
    { key: 'spreadPct', header: '±%', value: round(spread, 2), text: spread.toFixed(1) },
    { key: 'p50Ms', header: 'p50 ms', value: round(p50, 3), text: ms(p50) },
    { key: 'p99Ms', header: 'p99 ms', value: round(p99, 3), text: ms(p99) },
    {
      key: 'serverCpuUsPerReq',
      header: 'srv CPU µs/req',
      value: cpuUs === undefined ? null : round(cpuUs, 2),
      text: cpuUs === undefined ? '' : cpuUs.toFixed(1),
    },
    {
      key: 'serverWaitPct',
      header: 'srv wait%',
      value: serverWait === undefined ? null : round(serverWait, 2),
      text: pct(serverWait),
    },
    {
      key: 'clientWaitPct',
      header: 'cli wait%',
      value: clientWait === undefined ? null : round(clientWait, 2),
      text: pct(clientWait),
    },
    {
      key: 'rounds',
      header: 'rounds',
      value: rounds.length,
      text: String(rounds.length),
    },
    {
      key: 'requests',
      header: 'requests',
      value: all.length,
      text: all.length.toLocaleString('en-US'),
    },
  ];
  return { kind: 'external', value: reqPerSec, unit: 'req/s', higherIsBetter: true, fields };
}

/** An app being measured: its server, and what its limiter had counted before the runs. */
interface LiveApp {
  server: ServerHandle;
  counted: Counted | undefined;
  /** 2xx responses received under load (warm-up included). */
  sent: number;
  rounds: LoadResult[];
}

/**
 * Rounds a measurement is split into: 10 of 0.5 s in a full run, 4 with --quick. Short rounds,
 * many of them: a burst of other load then spoils a few rounds of every app, not one app.
 */
function roundsFor(loadMs: number): number {
  return Math.max(4, Math.round(loadMs / 500));
}

type Outcome = { result: ExternalResult } | { error: unknown };

/**
 * Measures the apps of one framework together: each is started in its own child and warmed up,
 * then every round loads each app in turn (`loadMs / rounds` each, the order rotating from round
 * to round), so a change in the machine's load reaches an app and its bare counterpart alike.
 * Only one app is under load at any time; the others wait idle.
 */
async function measureFramework(
  apps: readonly AppCase[],
  loadMs: number,
): Promise<Map<AppName, Outcome>> {
  const outcomes = new Map<AppName, Outcome>();
  const live = new Map<AppCase, LiveApp>();
  const fail = (c: AppCase, error: unknown): void => {
    outcomes.set(c.app, { error });
    live.delete(c);
  };
  try {
    // Started together (each loads the bench bundle), then checked and warmed up one by one.
    const started = await Promise.allSettled(apps.map((c) => startServer(c.app)));
    for (const [i, c] of apps.entries()) {
      const start = started[i]!;
      if (start.status === 'rejected') {
        fail(c, start.reason);
        continue;
      }
      const server = start.value;
      const entry: LiveApp = { server, counted: undefined, sent: 0, rounds: [] };
      live.set(c, entry);
      try {
        entry.counted = await verifyApp(c, server);
        const warm = await generateLoad(server.port, Math.max(300, loadMs / 5), server.pid);
        checkLoad(c, 'warm-up', warm);
        entry.sent += warm.responses;
      } catch (error) {
        fail(c, error);
      }
    }
    const rounds = roundsFor(loadMs);
    for (let r = 0; r < rounds; r++) {
      const order = [...live.keys()];
      for (let i = 0; i < order.length; i++) {
        const c = order[(i + r) % order.length]!;
        const entry = live.get(c)!;
        try {
          const load = await generateLoad(entry.server.port, loadMs / rounds, entry.server.pid);
          checkLoad(c, `round ${r + 1}`, load);
          entry.sent += load.responses;
          entry.rounds.push(load);
        } catch (error) {
          fail(c, error);
        }
      }
    }
    for (const [c, entry] of live) {
      try {
        await checkAfter(c, entry);
        outcomes.set(c.app, { result: summarize(entry.rounds) });
      } catch (error) {
        fail(c, error);
      }
    }
  } finally {
    for (const c of apps) {
      const entry = live.get(c);
      if (entry) await entry.server.stop();
    }
    await stopAllServers();
  }
  return outcomes;
}

/**
 * Hello-world apps under load, with and without Breakwater's middleware: autocannon in the
 * bench's process, each server in a child process of its own.
 */
export const http: Group = {
  name: 'http',
  description:
    `autocannon, ${CONNECTIONS} connections on 127.0.0.1, GET / of a hello-world app, each app in ` +
    "a child process of its own; a framework's apps are loaded in turn, in " +
    `${roundsFor(fullRun.loadMs)} interleaved rounds of ${fullRun.loadMs / roundsFor(fullRun.loadMs) / 1000} s ` +
    `(${roundsFor(quickRun.loadMs)} of ${quickRun.loadMs / roundsFor(quickRun.loadMs) / 1000} s with --quick) ` +
    'after a warm-up; req/s is the median round. Rate limits in memory, never reached. ' +
    "ratio = req/s ÷ the named app's req/s (higher is better).",
  setup: () => {
    // One measurement per framework, shared by its cases (started by the first one measured).
    const sessions = new Map<Framework, Promise<Map<AppName, Outcome>>>();
    return {
      cases: APPS.map((c): ExternalCase => ({
        id: c.app,
        label: c.label,
        library: c.library,
        kind: 'external',
        ...(c.baseline === true ? { baseline: true } : {}),
        ...(c.compare === undefined ? {} : { compare: c.compare }),
        measure: async (options) => {
          let session = sessions.get(c.framework);
          if (session === undefined) {
            const apps = APPS.filter((a) => a.framework === c.framework);
            session = measureFramework(apps, options.loadMs);
            sessions.set(c.framework, session);
          }
          const outcome = (await session).get(c.app);
          if (outcome === undefined) throw new Error(`${c.app} was not measured`);
          if ('error' in outcome) throw outcome.error;
          return outcome.result;
        },
      })),
      teardown: stopAllServers,
    };
  },
};
