import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { createHistogram, type RecordableHistogram } from 'node:perf_hooks';
import { Agent, request } from 'node:http';
import { CircuitBreakerRegistry, type CircuitBreaker } from '@breakwater/core';
import { circuitBreaker } from '@breakwater/express';
import { cannon, statusCounts, type CannonResult } from '../support/autocannon';
import { express5 } from '../support/frameworks';
import { mb, settledHeapUsed } from '../support/heap';
import { close, listen, send, type Listening } from '../support/http';
import { LONG } from '../support/paths';
import { report } from '../support/report';

/**
 * An Express 5 gateway with `circuitBreaker` in front of an upstream that flaps (fails for 1.5 s,
 * recovers for 1.5 s, again and again), under autocannon load: 10 connections for 15 s (10 min
 * with BREAKWATER_LONG=1). No unhandled rejection, no 500, the circuit opens and recovers with
 * the upstream, the heap grows by less than 10 %, and while the circuit is open the 503s are
 * answered fast. Latency is reported; it is asserted only in the long run, on a quiet machine.
 */

const CONNECTIONS = 10;
const DURATION_S = LONG ? 600 : 15;
const FAIL_MS = 1_500;
const RECOVER_MS = 1_500;
const OPEN_PHASE_S = LONG ? 30 : 3;

describe('load with a flapping upstream', () => {
  let upstream: Listening;
  let gateway: Listening;
  let breaker: CircuitBreaker;
  let flap: ReturnType<typeof setInterval>;
  let failing = false;
  const upstreamAgent = new Agent({ keepAlive: true, maxSockets: 64 });
  const unhandled: unknown[] = [];
  const onUnhandled = (reason: unknown): void => {
    unhandled.push(reason);
  };
  /** Server-side time from the request's arrival to the end of its 503, in nanoseconds. */
  let fastFail: RecordableHistogram = createHistogram();
  const transitions: string[] = [];

  beforeAll(async () => {
    process.on('unhandledRejection', onUnhandled);
    upstream = await listen((_req, res) => {
      if (failing) {
        res.writeHead(500, { 'content-type': 'text/plain' }).end('upstream down');
      } else {
        res.writeHead(200, { 'content-type': 'application/json' }).end('{"plants":["monstera"]}');
      }
    });
    flap = setInterval(() => {
      failing = !failing;
    }, FAIL_MS);

    const registry = new CircuitBreakerRegistry();
    const app = express5();
    app.set('env', 'production');
    app.use((_req, res, next) => {
      const start = process.hrtime.bigint();
      res.once('finish', () => {
        if (res.statusCode === 503) {
          fastFail.record(Math.max(1, Number(process.hrtime.bigint() - start)));
        }
      });
      next();
    });
    app.get(
      '/api/plants',
      circuitBreaker({ registry, name: 'plants', failureThreshold: 5, openDurationMs: 200 }),
      (_req, res) => {
        const call = request(`${upstream.url}/plants`, { agent: upstreamAgent }, (answer) => {
          const chunks: Buffer[] = [];
          answer.on('data', (chunk: Buffer) => chunks.push(chunk));
          answer.on('end', () => {
            if (answer.statusCode === 200) {
              res.type('json').send(Buffer.concat(chunks));
            } else {
              res.status(502).json({ error: 'bad gateway' });
            }
          });
        });
        call.on('error', () => {
          if (!res.headersSent) res.status(502).json({ error: 'bad gateway' });
        });
        call.end();
      },
    );
    gateway = await listen((req, res) => {
      app(req, res);
    });
    breaker = registry.find('plants')!;
    registry.on('stateChange', ({ to }) => transitions.push(to));
  }, 30_000);

  afterAll(async () => {
    clearInterval(flap);
    upstreamAgent.destroy();
    await close(gateway.server);
    await close(upstream.server);
    process.off('unhandledRejection', onUnhandled);
  });

  let warmup: CannonResult;
  let main: CannonResult;
  let open: CannonResult;
  let heapStart = 0;
  let heapEnd = 0;
  let heapPeak = 0;
  let mainFastFail: RecordableHistogram;

  it(
    `serves ${DURATION_S} s of load through the flapping upstream with no 500 and no leak`,
    async () => {
      const url = `${gateway.url}/api/plants`;
      warmup = await cannon(url, { connections: CONNECTIONS, durationSeconds: 2 });
      heapStart = settledHeapUsed();
      fastFail = createHistogram();
      transitions.length = 0;
      const sampler = setInterval(() => {
        heapPeak = Math.max(heapPeak, process.memoryUsage().heapUsed);
      }, 250);
      try {
        main = await cannon(url, { connections: CONNECTIONS, durationSeconds: DURATION_S });
      } finally {
        clearInterval(sampler);
      }
      mainFastFail = fastFail;
      heapEnd = settledHeapUsed();

      const statuses = statusCounts(main);
      expect(Object.keys(statuses)).toEqual(expect.arrayContaining(['200', '503']));
      for (const status of Object.keys(statuses)) expect(['200', '502', '503']).toContain(status);
      expect(statuses['500']).toBeUndefined();
      expect(main.errors).toBe(0);
      expect(main.timeouts).toBe(0);
      expect(unhandled).toEqual([]);
      // The circuit followed the upstream: opened in its outages, closed after its recoveries.
      const cycles = Math.floor((DURATION_S * 1_000) / (FAIL_MS + RECOVER_MS));
      expect(transitions.filter((to) => to === 'open').length).toBeGreaterThanOrEqual(cycles - 1);
      expect(transitions.filter((to) => to === 'closed').length).toBeGreaterThanOrEqual(cycles - 1);
      expect((heapEnd - heapStart) / heapStart).toBeLessThan(0.1);
    },
    (DURATION_S + 60) * 1_000,
  );

  it(
    'answers every request with a fast 503 problem while the circuit is open',
    async () => {
      breaker.open(); // forced open: every request is refused by the middleware alone
      try {
        const sample = await send(`${gateway.url}/api/plants`);
        expect(sample.status).toBe(503);
        expect(sample.headers['content-type']).toBe('application/problem+json');
        expect(Number(sample.headers['retry-after'])).toBeGreaterThanOrEqual(1);
        expect(JSON.parse(sample.body)).toMatchObject({ status: 503, breaker: 'plants' });

        fastFail = createHistogram();
        open = await cannon(`${gateway.url}/api/plants`, {
          connections: CONNECTIONS,
          durationSeconds: OPEN_PHASE_S,
        });
        expect(statusCounts(open)).toEqual({ 503: open.requests.total });
        expect(open.errors).toBe(0);
        const p99Ms = fastFail.percentile(99) / 1e6;
        if (LONG) expect(p99Ms).toBeLessThan(1);
        report('load-flapping-upstream', [
          {
            phase: `flapping upstream, ${DURATION_S} s`,
            requests: main.requests.total,
            'req/s': Math.round(main.requests.average),
            statuses: JSON.stringify(statusCounts(main)),
            'client p50 / p99 / max ms': `${main.latency.p50} / ${main.latency.p99} / ${main.latency.max}`,
            '503 server p50 / p99 ms': `${(mainFastFail.percentile(50) / 1e6).toFixed(3)} / ${(mainFastFail.percentile(99) / 1e6).toFixed(3)}`,
            transitions: transitions.length,
            'heap start / end / peak': `${mb(heapStart)} / ${mb(heapEnd)} / ${mb(heapPeak)}`,
            'heap growth': `${(((heapEnd - heapStart) / heapStart) * 100).toFixed(1)} %`,
          },
          {
            phase: `circuit forced open, ${OPEN_PHASE_S} s`,
            requests: open.requests.total,
            'req/s': Math.round(open.requests.average),
            statuses: JSON.stringify(statusCounts(open)),
            'client p50 / p99 / max ms': `${open.latency.p50} / ${open.latency.p99} / ${open.latency.max}`,
            '503 server p50 / p99 ms': `${(fastFail.percentile(50) / 1e6).toFixed(3)} / ${p99Ms.toFixed(3)}`,
            transitions: '',
            'heap start / end / peak': '',
            'heap growth': '',
          },
          {
            phase: 'warm-up, 2 s',
            requests: warmup.requests.total,
            'req/s': Math.round(warmup.requests.average),
            statuses: JSON.stringify(statusCounts(warmup)),
            'client p50 / p99 / max ms': `${warmup.latency.p50} / ${warmup.latency.p99} / ${warmup.latency.max}`,
            '503 server p50 / p99 ms': '',
            transitions: '',
            'heap start / end / peak': '',
            'heap growth': '',
          },
        ]);
      } finally {
        breaker.reset();
      }
    },
    (OPEN_PHASE_S + 60) * 1_000,
  );
});
