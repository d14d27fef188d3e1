import { afterEach, describe, expect, it } from '@jest/globals';
import { CircuitBreakerRegistry, ConfigError } from '@breakwater/core';
import {
  Gauge,
  Registry,
  register as defaultRegister,
  type OpenMetricsContentType,
} from 'prom-client';
import { collectMetrics, metricsHandler, type MetricsCollector } from './index';

const collectors: MetricsCollector[] = [];
afterEach(() => {
  for (const collector of collectors.splice(0)) collector.stop();
});

function openMetricsRegistry(): Registry<OpenMetricsContentType> {
  const register = new Registry<OpenMetricsContentType>();
  register.setContentType(Registry.OPENMETRICS_CONTENT_TYPE);
  return register;
}

describe('metricsHandler', () => {
  it("answers the register's exposition with its content type", async () => {
    const register = new Registry();
    const registry = new CircuitBreakerRegistry();
    registry.get('plant-id').open();
    collectors.push(collectMetrics(registry, { register }));
    const response = await metricsHandler(register)();
    expect(response).toEqual({
      kind: 'response',
      status: 200,
      headers: {
        'content-type': 'text/plain; version=0.0.4; charset=utf-8',
        'cache-control': 'no-store',
      },
      body: await register.metrics(),
    });
    expect(response.body).toContain(
      'breakwater_circuit_state{breaker="plant-id",state="forced_open"} 1',
    );
  });

  it('follows an OpenMetrics register', async () => {
    const register = openMetricsRegistry();
    const response = await metricsHandler(register)();
    expect(response.headers['content-type']).toBe(
      'application/openmetrics-text; version=1.0.0; charset=utf-8',
    );
    expect(response.body).toBe('\n# EOF\n');
  });

  it("uses prom-client's default register when none is given", async () => {
    const registry = new CircuitBreakerRegistry();
    registry.get('in-default-register');
    collectors.push(collectMetrics(registry));
    const response = await metricsHandler()();
    expect(response.status).toBe(200);
    expect(response.headers['content-type']).toBe(defaultRegister.contentType);
    expect(response.body).toContain('breaker="in-default-register"');
  });

  it('answers 500 without details when a collector throws', async () => {
    const register = new Registry();
    new Gauge({
      name: 'broken',
      help: 'throws when collected',
      registers: [register],
      collect() {
        throw new Error('secret connection string');
      },
    });
    const response = await metricsHandler(register)();
    expect(response.status).toBe(500);
    expect(response.body).toBe('metrics collection failed\n');
    expect(response.body).not.toContain('secret');
  });

  it('rejects something that is not a registry', () => {
    expect(() => metricsHandler({} as Registry)).toThrow(ConfigError);
    expect(() => metricsHandler({} as Registry)).toThrow(/option "register"/);
  });
});
