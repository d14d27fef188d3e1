import { afterEach, describe, expect, it } from '@jest/globals';
import { ConcurrencyLimitError, isConfigError } from '../errors';
import { healthReport } from './health-report';
import { errorResponse, type HttpResponse } from './http-response';
import { LoadShedder, loadShedResponse, type LoadShedPermit } from './load-shed';
import { processPressure, type PressureReading } from './process-pressure';
import { ManualPressureMonitor } from '../testing';

class FakeClock {
  time = 0;
  now(): number {
    return this.time;
  }
}

const isResponse = (value: LoadShedPermit | HttpResponse): value is HttpResponse => 'kind' in value;

function permit(value: LoadShedPermit | HttpResponse): LoadShedPermit {
  if (isResponse(value)) throw new Error(`shed: ${value.body}`);
  return value;
}

function configPath(fn: () => unknown): string {
  try {
    fn();
  } catch (error) {
    if (isConfigError(error)) return error.path;
    throw error;
  }
  throw new Error('expected a ConfigError');
}

const fixed = (n: number) => ({
  algorithm: 'aimd' as const,
  initialLimit: n,
  minLimit: n,
  maxLimit: n,
});
const shedders: LoadShedder<unknown>[] = [];
function shedder<Req = unknown>(options: ConstructorParameters<typeof LoadShedder<Req>>[0]) {
  const created = new LoadShedder<Req>(options);
  shedders.push(created as LoadShedder<unknown>);
  return created;
}
afterEach(() => {
  for (const s of shedders.splice(0)) s.close();
});

describe('LoadShedder', () => {
  it('admits up to the limit, then answers 503 problem+json with Retry-After at once', () => {
    const shed = shedder({ name: 'api', limit: fixed(2), retryAfterMs: '3s' });
    const a = permit(shed.admit({}, '/a'));
    permit(shed.admit({}, '/a'));
    const refused = shed.admit({}, '/a');
    expect(isResponse(refused)).toBe(true);
    const response = refused as HttpResponse;
    expect(response.status).toBe(503);
    expect(response.headers).toMatchObject({
      'retry-after': '3',
      'content-type': 'application/problem+json',
    });
    expect(JSON.parse(response.body)).toEqual({
      type: 'about:blank',
      title: 'Service Unavailable',
      status: 503,
      detail: 'The server is overloaded; retry later',
      loadShedder: 'api',
      reason: 'limit',
      retryAfter: 3,
    });
    a.finish(200);
    a.finish(200);
    expect(shed.inFlight).toBe(1);
    permit(shed.admit({}, '/a'));
    expect(shed.snapshot()).toMatchObject({ name: 'api', limit: 2, inFlight: 2, rejected: 1 });
  });

  it('sheds low priority from half the limit, normal from 90 %, critical last', () => {
    const shed = shedder<{ p: 'low' | 'normal' | 'critical' }>({
      limit: fixed(10),
      priority: (req) => req.p,
    });
    for (let i = 0; i < 5; i++) permit(shed.admit({ p: 'low' }, '/'));
    expect(isResponse(shed.admit({ p: 'low' }, '/'))).toBe(true);
    for (let i = 0; i < 4; i++) permit(shed.admit({ p: 'normal' }, '/'));
    expect(isResponse(shed.admit({ p: 'normal' }, '/'))).toBe(true);
    permit(shed.admit({ p: 'critical' }, '/'));
    expect(isResponse(shed.admit({ p: 'critical' }, '/'))).toBe(true);
  });

  it('a priority hook that throws or answers junk gives normal', () => {
    const shed = shedder<number>({
      limit: fixed(10),
      priority: (n) => {
        if (n === 1) throw new Error('hook');
        return 'urgent' as 'critical';
      },
    });
    for (let i = 0; i < 9; i++) permit(shed.admit(i % 2, '/'));
    expect(isResponse(shed.admit(1, '/'))).toBe(true);
    expect(isResponse(shed.admit(0, '/'))).toBe(true);
  });

  it('never sheds nor counts health and metrics paths', () => {
    const shed = shedder({ limit: fixed(1) });
    permit(shed.admit({}, '/work'));
    for (const path of ['/health', '/health/ready', '/metrics']) {
      permit(shed.admit({}, path)).finish(200);
    }
    expect(isResponse(shed.admit({}, '/healthz'))).toBe(true);
    expect(shed.inFlight).toBe(1);
    const custom = shedder({ limit: fixed(1), exemptPaths: ['/ops/'] });
    permit(custom.admit({}, '/x'));
    permit(custom.admit({}, '/ops/live'));
    expect(isResponse(custom.admit({}, '/health'))).toBe(true);
  });

  it('learns the limit from latency: it rises under steady latency and falls when it inflates', () => {
    const clock = new FakeClock();
    const shed = shedder({
      limit: {
        algorithm: 'vegas',
        initialLimit: 4,
        maxLimit: 40,
        vegas: { probeMultiplier: 1000 },
      },
      clock,
    });
    const changes: unknown[] = [];
    shed.on('limitChanged', (e) => changes.push(e));
    const wave = (latencyMs: number, status = 200): void => {
      const permits = Array.from({ length: Math.ceil(shed.limit * 0.9) }, () =>
        permit(shed.admit({}, '/')),
      );
      clock.time += latencyMs;
      for (const p of permits) p.finish(status);
    };
    wave(10);
    wave(10);
    wave(10);
    expect(shed.limit).toBeGreaterThan(4);
    const high = shed.limit;
    wave(50);
    wave(50);
    expect(shed.limit).toBeLessThan(high);
    expect(changes.length).toBeGreaterThan(1);
    const low = shed.limit;
    // 5xx other than 503/504 is ignored; 503 is a drop (vegas: minus log10(limit))
    wave(10, 500);
    expect(shed.limit).toBe(low);
    const p = permit(shed.admit({}, '/'));
    clock.time += 10;
    p.finish(503);
    expect(shed.limit).toBe(low - 1);
    const q = permit(shed.admit({}, '/'));
    q.abort();
    q.finish(200);
    expect(shed.limit).toBe(low - 1);
    expect(shed.inFlight).toBe(0);
    expect(shed.snapshot()).toMatchObject({ algorithm: 'vegas', noLoadRttMs: 10, process: null });
  });

  it('defaults to Vegas with half steps and a maximum of 1000', () => {
    const clock = new FakeClock();
    const shed = shedder({ limit: { initialLimit: 4 }, clock });
    const permits = [1, 2, 3].map(() => permit(shed.admit({}, '/')));
    clock.time += 10;
    for (const p of permits) p.finish(200);
    // 1st: no-load latency; 2nd (2 in flight): no queue, + beta 6 blended by 0.5 = 7
    expect(shed.limit).toBe(7);
    const own = shedder({ limit: { initialLimit: 4, vegas: { smoothing: 1 } }, clock });
    const more = [1, 2].map(() => permit(own.admit({}, '/')));
    clock.time += 10;
    for (const p of more) p.finish(200);
    expect(own.limit).toBe(10);
    expect(configPath(() => new LoadShedder({ limit: { initialLimit: 1001 } }))).toBe(
      'limit.initialLimit',
    );
  });

  it('sheds non-critical requests while a process threshold is exceeded', () => {
    const monitor = new ManualPressureMonitor();
    const shed = shedder<string>({
      limit: false,
      maxEventLoopDelayMs: 100,
      maxEventLoopUtilization: 0.9,
      maxHeapUsedBytes: 1_000,
      maxHeapUsedRatio: 0.8,
      sampleIntervalMs: '250ms',
      priority: (p) => (p === 'c' ? 'critical' : 'normal'),
      monitor,
    });
    expect(monitor.intervals).toEqual([250]);
    const reasons: string[] = [];
    shed.on('rejected', (e) => reasons.push(e.reason));
    expect(shed.on('limitChanged', () => undefined)).toBeInstanceOf(Function);
    permit(shed.admit('n', '/'));
    monitor.set({ eventLoopDelayMs: 150 });
    const refused = shed.admit('n', '/') as HttpResponse;
    expect(JSON.parse(refused.body)).toMatchObject({ reason: 'eventLoopDelay' });
    permit(shed.admit('c', '/'));
    monitor.set({ eventLoopDelayMs: 5, eventLoopUtilization: 0.95 });
    shed.admit('n', '/');
    monitor.set({ eventLoopUtilization: 0.5, heapUsedBytes: 2_000 });
    shed.admit('n', '/');
    monitor.set({ heapUsedBytes: 10, heapUsedRatio: 0.9 });
    shed.admit('n', '/');
    expect(shed.snapshot()).toMatchObject({ limit: null, pressure: 'heap', rejected: 4 });
    monitor.set({ heapUsedRatio: 0.1 });
    permit(shed.admit('n', '/'));
    expect(reasons).toEqual(['eventLoopDelay', 'eventLoopUtilization', 'heap', 'heap']);
    expect(shed.snapshot().process).toEqual(monitor.current);
    shed.close();
    expect(monitor.subscriberCount).toBe(0);
  });

  it('logs one line when shedding starts and one when it stops; a throwing logger is harmless', () => {
    const clock = new FakeClock();
    const lines: string[] = [];
    const shed = shedder({
      name: 'web',
      limit: fixed(1),
      clock,
      logger: {
        info: (m) => lines.push(m),
        warn: (m) => {
          lines.push(m);
          throw new Error('logger');
        },
        error: () => undefined,
      },
    });
    const held = permit(shed.admit({}, '/'));
    shed.admit({}, '/');
    clock.time += 500;
    shed.admit({}, '/');
    held.finish(200);
    clock.time += 1_000;
    permit(shed.admit({}, '/')).finish(200);
    expect(shed.snapshot().shedding).toBe(false);
    expect(lines).toEqual([
      '[LOADSHED] web shedding started (limit 1, 1 in flight, limit)',
      '[LOADSHED] web shedding stopped (2 requests shed over 0.5 s)',
    ]);
  });

  it('a throwing listener never breaks admission', () => {
    const errors: string[] = [];
    const shed = shedder({ limit: fixed(1), onListenerError: (_e, event) => errors.push(event) });
    shed.on('rejected', () => {
      throw new Error('listener');
    });
    permit(shed.admit({}, '/'));
    expect(isResponse(shed.admit({}, '/'))).toBe(true);
    expect(errors).toEqual(['rejected']);
  });

  it('validates every option, naming its path', () => {
    expect(configPath(() => new LoadShedder({ limit: { maxLimit: 0 } }))).toBe('limit.maxLimit');
    expect(configPath(() => new LoadShedder({ limit: 5 as never }))).toBe('limit');
    expect(
      configPath(
        () => new LoadShedder({ limit: { algorithm: 'aimd', aimd: { backoffRatio: 2 } } }),
      ),
    ).toBe('limit.aimd.backoffRatio');
    expect(configPath(() => new LoadShedder({ maxEventLoopDelayMs: -1 }))).toBe(
      'maxEventLoopDelayMs',
    );
    expect(configPath(() => new LoadShedder({ maxEventLoopUtilization: 1.5 }))).toBe(
      'maxEventLoopUtilization',
    );
    expect(configPath(() => new LoadShedder({ maxHeapUsedBytes: 0.5 }))).toBe('maxHeapUsedBytes');
    expect(configPath(() => new LoadShedder({ maxHeapUsedRatio: 0 }))).toBe('maxHeapUsedRatio');
    expect(configPath(() => new LoadShedder({ sampleIntervalMs: 1 }))).toBe('sampleIntervalMs');
    expect(configPath(() => new LoadShedder({ priority: 'high' as never }))).toBe('priority');
    expect(configPath(() => new LoadShedder({ exemptPaths: ['health'] }))).toBe('exemptPaths[0]');
    expect(configPath(() => new LoadShedder({ exemptPaths: '/health' as never }))).toBe(
      'exemptPaths',
    );
    expect(configPath(() => new LoadShedder({ retryAfterMs: 0 }))).toBe('retryAfterMs');
    expect(configPath(() => new LoadShedder({ logger: console.log as never }))).toBe('logger');
    expect(configPath(() => new LoadShedder({ clock: Date.now as never }))).toBe('clock');
    expect(configPath(() => new LoadShedder({ monitor: {} as never }))).toBe('monitor');
    expect(configPath(() => new LoadShedder({ name: '' }))).toBe('name');
    expect(configPath(() => new LoadShedder({ maxInFlight: 3 } as never))).toBe('maxInFlight');
  });

  it('loadShedResponse rounds Retry-After up to whole seconds, at least 1', () => {
    expect(loadShedResponse('x', 1_500, 'heap').headers['retry-after']).toBe('2');
    expect(loadShedResponse('x', 10, 'limit').headers['retry-after']).toBe('1');
  });
});

describe('processPressure', () => {
  it('reads event-loop delay, utilisation and heap with one unref’d sampler', async () => {
    const readings: PressureReading[] = [];
    const stop = processPressure.subscribe(20, (r) => readings.push(r));
    const stopSlower = processPressure.subscribe(1_000, () => undefined);
    const highest = (key: 'eventLoopDelayMs' | 'eventLoopUtilization'): number =>
      Math.max(...readings.map((r) => r[key]));
    // A loaded machine may put the blocked turn where the histogram does not see it: try again.
    for (let attempt = 0; attempt < 5 && highest('eventLoopDelayMs') <= 10; attempt++) {
      await new Promise((resolve) => setTimeout(resolve, 30));
      const until = Date.now() + 150;
      while (Date.now() < until) {
        // Block the event loop so the sampler sees delay and utilisation.
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    stop();
    stopSlower();
    expect(highest('eventLoopDelayMs')).toBeGreaterThan(10);
    expect(highest('eventLoopUtilization')).toBeGreaterThan(0.5);
    const last = readings.at(-1)!;
    expect(last.heapUsedBytes).toBeGreaterThan(0);
    expect(last.heapUsedRatio).toBeGreaterThan(0);
    expect(last.heapUsedRatio).toBeLessThan(1);
  });
});

describe('load shedding in health reports and error responses', () => {
  it('a shedding load shedder makes the health report warn', () => {
    const shed = shedder({ name: 'web', limit: fixed(1) });
    expect(healthReport({ loadShedders: [shed] }).checks['web:load-shedder']).toEqual([
      expect.objectContaining({
        status: 'pass',
        componentType: 'load-shedder',
        observedValue: '0/1 in flight',
      }),
    ]);
    permit(shed.admit({}, '/'));
    shed.admit({}, '/');
    const report = healthReport({ loadShedders: [shed, shedder({ name: 'bare', limit: false })] });
    expect(report.status).toBe('warn');
    expect(report.checks['web:load-shedder']![0]).toMatchObject({
      status: 'warn',
      observedValue: '1/1 in flight',
      output: 'shedding load (1 requests shed since start)',
    });
    expect(report.checks['bare:load-shedder']![0]!.observedValue).toBe('0 in flight');
  });

  it('errorResponse maps a ConcurrencyLimitError to 503 with Retry-After', () => {
    const response = errorResponse(ConcurrencyLimitError.create('db', 4, 2_500));
    expect(response?.status).toBe(503);
    expect(response?.headers['retry-after']).toBe('3');
    expect(JSON.parse(response!.body)).toMatchObject({ limiter: 'db', retryAfter: 3 });
  });
});
