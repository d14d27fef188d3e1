import { describe, expect, it } from '@jest/globals';
import { adaptiveConcurrency, isConfigError, LoadShedder } from '@breakwater/core';
import { Registry } from 'prom-client';
import { collectLoadShedMetrics } from './load-shed-metrics';

function configPath(fn: () => unknown): string {
  try {
    fn();
  } catch (error) {
    if (isConfigError(error)) return error.path;
    throw error;
  }
  throw new Error('expected a ConfigError');
}

describe('collectLoadShedMetrics', () => {
  it('exports limit, in flight and rejections of load shedders and policies at scrape time', async () => {
    const register = new Registry();
    const shedder = new LoadShedder({
      name: 'web',
      limit: { algorithm: 'aimd', initialLimit: 1, minLimit: 1, maxLimit: 1 },
    });
    const bare = new LoadShedder({ name: 'bare', limit: false });
    const policy = adaptiveConcurrency({ name: 'db', initialLimit: 3 });
    const collector = collectLoadShedMetrics([shedder, bare, policy], { register });
    shedder.admit({}, '/');
    shedder.admit({}, '/');
    shedder.admit({}, '/');
    policy.tryAcquire();
    const text = await register.metrics();
    expect(text).toContain('breakwater_loadshed_limit{name="web"} 1');
    expect(text).toContain('breakwater_loadshed_limit{name="db"} 3');
    expect(text).not.toContain('breakwater_loadshed_limit{name="bare"}');
    expect(text).toContain('breakwater_loadshed_in_flight{name="web"} 1');
    expect(text).toContain('breakwater_loadshed_in_flight{name="db"} 1');
    expect(text).toContain('breakwater_loadshed_rejected_total{name="web"} 2');
    expect(text).toContain('breakwater_loadshed_rejected_total{name="db"} 0');
    expect(collector.metricNames).toEqual([
      'breakwater_loadshed_limit',
      'breakwater_loadshed_in_flight',
      'breakwater_loadshed_rejected_total',
    ]);
    expect(configPath(() => collectLoadShedMetrics([shedder], { register }))).toBe('prefix');
    collector.stop();
    collector.stop();
    expect(await register.metrics()).toBe('\n');
    collectLoadShedMetrics([shedder], { register, prefix: 'app_' }).stop();
  });

  it('validates its arguments, naming the path', () => {
    expect(configPath(() => collectLoadShedMetrics({} as never))).toBe('sources');
    expect(configPath(() => collectLoadShedMetrics([{ name: 'x' } as never]))).toBe('sources[0]');
    expect(configPath(() => collectLoadShedMetrics([], { prefix: '1x' }))).toBe('prefix');
    expect(configPath(() => collectLoadShedMetrics([], { register: {} as never }))).toBe(
      'register',
    );
    expect(configPath(() => collectLoadShedMetrics([], { buckets: [] } as never))).toBe('buckets');
  });
});
