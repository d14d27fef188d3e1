/**
 * The example end to end: the two simulated providers, the Nest application in front of them, and
 * either a scripted story (one provider fails, then the other, then both recover) or a server that
 * keeps running with the dashboard.
 */
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { NestFactory } from '@nestjs/core';
import type { NestExpressApplication } from '@nestjs/platform-express';
import { CircuitBreakerRegistry } from '@breakwater/core';
import { AppModule, BREAKWATER_HEALTH_PATH, configureApp } from './app.module';
import type { IdentificationResult, ProviderStatus } from './identification.service';
import { PLANT_ID, PLANTNET, type ProviderName } from './provider-error';
import { Report } from './report';
import { ScenarioClock } from './scenario-clock';
import {
  SIMULATED_API_KEY,
  startPlantIdApi,
  startPlantNetApi,
  type SimulatedProvider,
} from './simulated-providers';

/** Options of {@link run}. */
export interface RunOptions {
  /** Keep serving (providers failing now and then) until SIGINT/SIGTERM. */
  serve: boolean;
  /** Port of the application with `serve` (0: any free one). */
  port: number;
}

interface Running {
  app: NestExpressApplication;
  base: string;
  clock: ScenarioClock;
  registry: CircuitBreakerRegistry;
  plantId: SimulatedProvider;
  plantNet: SimulatedProvider;
  close(): Promise<void>;
}

/** Runs the scripted scenario, or serves; resolves when it is over. */
export async function run(options: RunOptions): Promise<void> {
  // The scripted run's clock stands still between the story's steps, so every time it prints is
  // exact; --serve runs on the real clock.
  const startedAt = Date.now();
  const clock = options.serve ? new ScenarioClock() : new ScenarioClock(() => startedAt);
  // --serve sends two photos a second for as long as it runs: no quota would last.
  const quotas = options.serve
    ? { plantId: Infinity, plantNet: Infinity }
    : { plantId: 100, plantNet: 500 };
  const running = await start(options.serve ? options.port : 0, clock, quotas);
  const report = new Report(running.clock);
  running.registry.on('stateChange', ({ breaker, from, to, reason }) =>
    report.transition(breaker, from, to, reason),
  );
  try {
    banner(report, running);
    if (options.serve) await serve(report, running);
    else await scripted(report, running);
  } finally {
    await running.close();
  }
}

async function start(
  port: number,
  clock: ScenarioClock,
  quotas: { plantId: number; plantNet: number },
): Promise<Running> {
  const plantId = await startPlantIdApi(quotas.plantId);
  const plantNet = await startPlantNetApi(quotas.plantNet);
  const app = await NestFactory.create<NestExpressApplication>(
    AppModule.register({
      plantIdUrl: plantId.url,
      plantNetUrl: plantNet.url,
      apiKey: SIMULATED_API_KEY,
      clock,
    }),
    { logger: ['error', 'warn'] },
  );
  configureApp(app);
  await app.listen(port, '127.0.0.1');
  const server: Server = app.getHttpServer();
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    app,
    base,
    clock,
    registry: app.get(CircuitBreakerRegistry),
    plantId,
    plantNet,
    close: async () => {
      await app.close();
      await Promise.all([plantId.close(), plantNet.close()]);
    },
  };
}

function banner(report: Report, { base, plantId, plantNet }: Running): void {
  report.line();
  report.title('Breakwater example: plant identification on NestJS (Express platform)');
  report.line();
  report.field('app', `${base}  (POST /api/identify, both providers called in parallel)`);
  report.field(
    PLANT_ID,
    `paid API, ${quota(plantId, 'a month')}: opens after 3 failures for 60 s, 2 probe successes close it`,
  );
  report.field(
    PLANTNET,
    `free API, ${quota(plantNet, 'a day')}: opens after 5 failures for 30 s, 2 probe successes close it`,
  );
  report.field(
    'not counted',
    '"no plant found" (404) and other 4xx: business answers, not outages',
  );
  report.field('cache', 'complete answers by image SHA-256, 30 min');
}

function quota(provider: SimulatedProvider, period: string): string {
  return Number.isFinite(provider.quota) ? `${provider.quota} ${period}` : 'no quota here';
}

/** The scripted story, on the scenario clock: the waits skip time instead of sleeping. */
async function scripted(report: Report, running: Running): Promise<void> {
  const { clock, plantId, plantNet } = running;
  const client = new Client(running.base, report);
  const wait = (seconds: number): void => {
    clock.advance(seconds * 1_000);
    report.event('clock', `${seconds} s pass`);
  };
  report.field(
    'clock',
    'scenario time: the breakers and the cache read a clock that only the story moves',
  );
  report.heading();
  report.restart();

  report.step('both providers up');
  await client.identify('monstera', 1);
  await client.identify('monstera', 1);
  await client.identify('pebble', 1);
  report.note(
    `a business answer, not an outage: consecutive failures ${failures(running, PLANT_ID)}, ${failures(running, PLANTNET)}`,
  );

  wait(5);
  report.step('plant-id fails: answers come from plantnet alone, "partial": true');
  plantId.mode = 'failing';
  report.event(PLANT_ID, 'upstream starts failing (HTTP 500)');
  const plantIdDown = { at: report.elapsedSeconds, calls: plantId.calls, requests: client.sent };
  for (let n = 1; n <= 4; n += 1) await client.identify('ficus', n);

  wait(15);
  report.step('plantnet fails too: 502 while it is still called, 503 once both circuits are open');
  plantNet.mode = 'unreachable';
  report.event(PLANTNET, 'upstream unreachable (connections reset)');
  for (let n = 1; n <= 6; n += 1) await client.identify('pothos', n);

  wait(15);
  await client.identify('pothos', 7);
  await client.identify('monstera', 1);
  report.note('the cache still answers images it has seen');
  plantNet.mode = 'healthy';
  report.event(PLANTNET, 'upstream is healthy again');

  wait(15);
  report.step("plantnet's open time is over: 2 probe successes close its circuit");
  await client.identify('aloe', 1);
  await client.identify('aloe', 2);

  wait(15);
  report.step("plant-id's open time is over, but it still fails: the probe reopens the circuit");
  await client.identify('lavender', 1);
  plantId.mode = 'healthy';
  report.event(PLANT_ID, 'upstream is healthy again');
  const plantIdUp = { at: report.elapsedSeconds, calls: plantId.calls, requests: client.sent };

  wait(60);
  report.step('plant-id recovers: complete answers again');
  await client.identify('lavender', 2);
  await client.identify('snake plant', 1);
  await client.identify('monstera', 1);

  summary(report, running, client, {
    from: plantIdDown.at,
    to: plantIdUp.at,
    requests: plantIdUp.requests - plantIdDown.requests,
    calls: plantIdUp.calls - plantIdDown.calls,
  });
}

interface Outage {
  from: number;
  to: number;
  requests: number;
  calls: number;
}

function summary(report: Report, running: Running, client: Client, outage: Outage): void {
  const { plantId, plantNet, registry } = running;
  report.line();
  report.title(`Summary: ${report.elapsedSeconds.toFixed(0)} s of scenario time`);
  report.line();
  const answers = ANSWER_KINDS.filter((kind) => client.answers[kind] !== undefined)
    .map((kind) => `${kind} ${client.answers[kind]}`)
    .join(', ');
  report.field('answers', answers);
  report.field(
    'outage',
    `plant-id failed from +${outage.from.toFixed(1)}s to +${outage.to.toFixed(1)}s: ${outage.requests} requests, ` +
      `only ${outage.calls} reached the failing API (3 failures opened the circuit, ` +
      `then ${outage.calls - 3} probe a minute)`,
  );
  report.field(
    'quota',
    `plant-id ${plantId.quotaUsed} of ${plantId.quota} this month, plantnet ${plantNet.quotaUsed} of ${plantNet.quota} today`,
  );
  const states = registry
    .list()
    .map((breaker) => `${breaker.name} ${breaker.state}`)
    .join(', ');
  report.field('breakers', states);
}

/** Serves until SIGINT/SIGTERM, with the providers failing now and then on the real clock. */
async function serve(report: Report, running: Running): Promise<void> {
  const { base, plantId, plantNet } = running;
  const signalled = untilStopped();
  const image = Buffer.from('photo of a monstera leaf').toString('base64');
  report.line();
  report.field('dashboard', `${base}${BREAKWATER_HEALTH_PATH}/dashboard`);
  report.field(
    'breakwater',
    `${base}${BREAKWATER_HEALTH_PATH}   ${base}${BREAKWATER_HEALTH_PATH}/ready   ${base}${BREAKWATER_HEALTH_PATH}/circuit-breakers`,
  );
  report.field('terminus', `${base}/health`);
  report.field(
    'try',
    `curl -i -X POST ${base}/api/identify -H 'content-type: application/json' -d '{"image":"${image}"}'`,
  );
  report.field(
    'scenario',
    'every 4 min: plant-id fails from 0:10 to 1:10, plantnet from 0:40 to 1:30; Ctrl-C stops',
  );
  report.heading();
  report.restart();

  const client = new Client(base, undefined);
  let n = 0;
  let lastKind = '';
  let stopped = false;
  const traffic = setInterval(() => {
    n += 1;
    void client.identify(['monstera', 'ficus', 'pothos', 'aloe'][n % 4]!, n).then((kind) => {
      if (kind !== lastKind && !stopped) report.event('answers', `now ${kind}`);
      lastKind = kind;
    });
  }, 500);
  const cycle = (): NodeJS.Timeout[] => [
    at(10, () => {
      plantId.mode = 'failing';
      report.event(PLANT_ID, 'upstream starts failing (HTTP 500) for 60 s');
    }),
    at(40, () => {
      plantNet.mode = 'unreachable';
      report.event(PLANTNET, 'upstream unreachable for 50 s');
    }),
    at(70, () => {
      plantId.mode = 'healthy';
      report.event(PLANT_ID, 'upstream is healthy again');
    }),
    at(90, () => {
      plantNet.mode = 'healthy';
      report.event(PLANTNET, 'upstream is healthy again');
    }),
  ];
  let timers = cycle();
  const every = setInterval(() => (timers = cycle()), 240_000);

  await signalled;
  stopped = true;
  clearInterval(traffic);
  clearInterval(every);
  for (const timer of timers) clearTimeout(timer);
  report.line();
  report.line('  stopping...');
}

const at = (seconds: number, action: () => void): NodeJS.Timeout =>
  setTimeout(action, seconds * 1_000);

function failures(running: Running, name: ProviderName): string {
  const snapshot = running.registry.find(name)?.snapshot();
  return `${name} ${snapshot?.consecutiveFailures ?? 0}`;
}

/** What the summary counts, in its order. */
const ANSWER_KINDS = ['complete', 'partial', 'cached', 'no plant', 'failed', 'both open'];

/** Sends identifications to the app and reports each answer (when given a report). */
class Client {
  /** Answers by kind (see {@link ANSWER_KINDS}). */
  readonly answers: Record<string, number> = {};
  sent = 0;

  constructor(
    private readonly base: string,
    private readonly report: Report | undefined,
  ) {}

  /** Posts the photo `<plant> #<n>`; returns the kind of answer. */
  async identify(plant: string, n: number): Promise<string> {
    this.sent += 1;
    const subject = `POST ${plant} #${n}`;
    const image = Buffer.from(`photo of a ${plant} leaf #${n}`).toString('base64');
    let res: Response;
    let body: Record<string, unknown>;
    try {
      res = await fetch(`${this.base}/api/identify`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ image }),
      });
      body = (await res.json()) as Record<string, unknown>;
    } catch (error) {
      this.report?.event(subject, `request failed: ${String(error)}`);
      return 'error';
    }
    const { kind, text } = describe(res, body);
    this.answers[kind] = (this.answers[kind] ?? 0) + 1;
    this.report?.request(subject, res.status, kind, text);
    return kind;
  }
}

function describe(res: Response, body: Record<string, unknown>): { kind: string; text: string } {
  const providers = body.providers as Record<ProviderName, ProviderStatus> | undefined;
  const missing = providers === undefined ? '' : unavailable(providers);
  if (res.status === 200) {
    const result = body as unknown as IdentificationResult;
    const best = result.suggestions[0]!;
    const species = `${best.scientificName} ${Math.round(best.probability * 100)} % (${best.sources.join(' + ')})`;
    if (result.cached) return { kind: 'cached', text: `${species}, no provider called` };
    if (result.partial) return { kind: 'partial', text: `${species}; ${missing}` };
    return { kind: 'complete', text: species };
  }
  if (res.status === 404)
    return { kind: 'no plant', text: 'both providers answered "no plant found"' };
  if (res.status === 503) {
    return {
      kind: 'both open',
      text: `Retry-After: ${res.headers.get('retry-after')}  (${missing})`,
    };
  }
  if (res.status === 502) return { kind: 'failed', text: missing };
  return { kind: String(res.status), text: JSON.stringify(body) };
}

/** "plant-id circuit open, probe in 60 s; plantnet failed: unreachable" */
function unavailable(providers: Record<ProviderName, ProviderStatus>): string {
  const parts: string[] = [];
  for (const [name, status] of Object.entries(providers)) {
    if (status.status === 'circuit open') {
      parts.push(`${name} circuit open, probe in ${Math.ceil(status.retryAfterMs / 1_000)} s`);
    } else if (status.status === 'failed') {
      parts.push(`${name} failed: ${status.reason}`);
    }
  }
  return parts.join('; ');
}

/** Resolves on the first SIGINT (Ctrl-C) or SIGTERM; listening starts at once, before any banner. */
function untilStopped(): Promise<void> {
  return new Promise<void>((resolve) => {
    const stop = (): void => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      resolve();
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
}
