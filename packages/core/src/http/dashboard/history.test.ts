import { afterEach, beforeEach, describe, expect, it, jest } from '@jest/globals';
import { CircuitBreakerRegistry } from '../../breaker/registry';
import { isConfigError } from '../../errors';
import { RateLimiter } from '../../rate-limit/rate-limiter';
import { HealthRoutes, type SseStream } from '../health-routes';
import type { HttpResponse } from '../http-response';
import {
  MAX_HISTORY_BREAKERS,
  type DashboardHistoryDocument,
  type DashboardSample,
} from './history';

beforeEach(() => {
  jest.useFakeTimers({ now: 1_000_000 });
});
afterEach(() => {
  jest.useRealTimers();
});

async function history(routes: HealthRoutes<unknown>): Promise<DashboardHistoryDocument> {
  const result = (await routes.handle('GET', '/health/dashboard/history', {})) as HttpResponse;
  expect(result.status).toBe(200);
  return JSON.parse(result.body) as DashboardHistoryDocument;
}

describe('dashboard history', () => {
  it('samples calls, failures and rejections per breaker from totals, every interval', async () => {
    const registry = new CircuitBreakerRegistry();
    const breaker = registry.get('payments', { failureThreshold: 2 });
    const routes = new HealthRoutes({ registry, critical: ['payments'] });
    try {
      await breaker.execute(() => 'ok');
      await breaker.execute(() => 'ok');
      jest.advanceTimersByTime(5_000);
      await breaker.execute(() => Promise.reject(new Error('x'))).catch(() => undefined);
      await breaker.execute(() => Promise.reject(new Error('x'))).catch(() => undefined);
      await breaker.execute(() => 'rejected').catch(() => undefined);
      jest.advanceTimersByTime(5_000);
      const doc = await history(routes);
      expect(doc.intervalMs).toBe(5_000);
      expect(doc.windowMs).toBe(15 * 60_000);
      const [payments] = doc.breakers;
      expect(payments).toMatchObject({ name: 'payments', state: 'open', critical: true });
      expect(payments!.series).toEqual({
        calls: [0, 2, 2],
        failures: [0, 0, 2],
        rejected: [0, 0, 1],
      });
      expect(payments!.transitions).toEqual([
        { at: 1_005_000, from: 'closed', to: 'open', reason: expect.any(String) },
      ]);
    } finally {
      routes.close();
    }
  });

  it('keeps at most 15 minutes of samples per breaker and forgets removed breakers', async () => {
    const registry = new CircuitBreakerRegistry();
    registry.get('a');
    const routes = new HealthRoutes({ registry, dashboard: { sampleIntervalMs: '10s' } });
    try {
      jest.advanceTimersByTime(60 * 60_000);
      let doc = await history(routes);
      expect(doc.breakers[0]!.series.calls).toHaveLength(90);
      registry.delete('a');
      jest.advanceTimersByTime(10_000);
      registry.get('a');
      doc = await history(routes);
      expect(doc.breakers[0]!.series.calls).toEqual([]);
    } finally {
      routes.close();
    }
  });

  it('keeps a history for at most MAX_HISTORY_BREAKERS breakers', async () => {
    const registry = new CircuitBreakerRegistry();
    for (let i = 0; i < MAX_HISTORY_BREAKERS + 5; i++) registry.get(`route-${i}`);
    const routes = new HealthRoutes({ registry });
    try {
      jest.advanceTimersByTime(5_000);
      const doc = await history(routes);
      expect(doc.breakers).toHaveLength(MAX_HISTORY_BREAKERS + 5);
      expect(doc.breakers.filter((b) => b.series.calls.length > 0)).toHaveLength(
        MAX_HISTORY_BREAKERS,
      );
    } finally {
      routes.close();
    }
  });

  it('streams one sample event per interval while a client listens, limiters included once watched', async () => {
    const registry = new CircuitBreakerRegistry();
    registry.get('db');
    const limiter = new RateLimiter({ name: 'api', limit: 1, window: '1m' });
    const routes = new HealthRoutes({ registry, limiters: [limiter] });
    try {
      const stream = routes.handle('GET', '/health/circuit-breakers/stream', {}) as SseStream;
      const chunks: string[] = [];
      stream.start(
        (chunk) => chunks.push(chunk),
        () => undefined,
      );
      await limiter.consume('k'); // before anyone opened the dashboard: not counted
      await history(routes);
      await limiter.consume('k');
      await limiter.consume('k');
      jest.advanceTimersByTime(5_000);
      const samples = chunks
        .filter((c) => c.includes('event: sample'))
        .map((c) => JSON.parse(/data: (.*)\n/.exec(c)![1]!) as DashboardSample);
      expect(samples).toHaveLength(1);
      expect(samples[0]).toEqual({
        at: 1_005_000,
        breakers: { db: [0, 0, 0] },
        limiters: { api: [0, 2, 'primary'] },
      });
      // The one allowed decision came before the history was first read.
      const doc = await history(routes);
      expect(doc.limiters).toEqual([
        { name: 'api', status: 'pass', store: 'primary', series: { allowed: [0], denied: [2] } },
      ]);
    } finally {
      routes.close();
    }
  });

  it('streams transitions with the critical flag and what happened', () => {
    const registry = new CircuitBreakerRegistry();
    const routes = new HealthRoutes({ registry, critical: (name) => name === 'db' });
    try {
      registry.get('db');
      const stream = routes.handle('GET', '/health/circuit-breakers/stream', {}) as SseStream;
      const chunks: string[] = [];
      stream.start(
        (chunk) => chunks.push(chunk),
        () => undefined,
      );
      expect(chunks[0]).toContain('"critical":true');
      registry.get('db').open();
      const event = JSON.parse(/data: (.*)\n/.exec(chunks[1]!)![1]!) as Record<string, unknown>;
      expect(event).toMatchObject({
        name: 'db',
        state: 'forced_open',
        critical: true,
        transition: { at: 1_000_000, from: 'closed', to: 'forced_open' },
      });
    } finally {
      routes.close();
    }
  });

  it('has no history route and no timer without the dashboard; checks sampleIntervalMs', () => {
    const routes = new HealthRoutes({ registry: new CircuitBreakerRegistry(), dashboard: false });
    expect(routes.handle('GET', '/health/dashboard/history', {})).toBeUndefined();
    expect(jest.getTimerCount()).toBe(0);
    for (const [dashboard, path] of [
      [{ sampleIntervalMs: 500 }, 'dashboard.sampleIntervalMs'],
      [{ sampleIntervalMs: '2m' }, 'dashboard.sampleIntervalMs'],
      [{ interval: 1 }, 'dashboard.interval'],
      ['yes', 'dashboard'],
    ] as const) {
      let error: unknown;
      try {
        new HealthRoutes({ dashboard: dashboard as never }).close();
      } catch (e) {
        error = e;
      }
      expect(isConfigError(error) && error.path).toBe(path);
    }
  });
});
