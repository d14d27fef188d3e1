import { afterEach, describe, expect, it } from '@jest/globals';
import { CircuitBreakerRegistry } from '../breaker/registry';
import { isConfigError } from '../errors';
import { healthReport, isReady } from './health-report';
import { HealthRoutes, type HealthRoutesOptions, type SseStream } from './health-routes';

function memoryLogger() {
  const lines: string[] = [];
  return {
    lines,
    info: (m: string) => lines.push(`info ${m}`),
    warn: (m: string) => lines.push(`warn ${m}`),
    error: (m: string) => lines.push(`error ${m}`),
  };
}

const opened: HealthRoutes<unknown>[] = [];
afterEach(() => {
  for (const routes of opened.splice(0)) routes.close();
});

function setup(options: Partial<HealthRoutesOptions<unknown>>) {
  const registry = new CircuitBreakerRegistry();
  registry.get('plant-id');
  const routes = new HealthRoutes({ registry, ...options });
  opened.push(routes);
  return { registry, routes };
}

async function answer(routes: HealthRoutes<unknown>, method: string, url: string) {
  const result = await routes.handle(method, url, {});
  if (result === undefined || result.kind !== 'response') throw new Error('no response');
  return result;
}

describe('HealthRoutes user hooks', () => {
  it('a critical() that throws never answers 500 nor shows its message: the breaker counts as critical', async () => {
    const logger = memoryLogger();
    const { registry, routes } = setup({
      logger,
      critical: () => {
        throw new Error('secret database password in message');
      },
    });
    for (const url of ['/health', '/health/ready']) {
      const response = await answer(routes, 'GET', url);
      expect(response.status).toBe(200);
      expect(response.body).not.toContain('secret');
    }
    registry.get('plant-id').open();
    const health = await answer(routes, 'GET', '/health');
    expect(health.status).toBe(503);
    expect(health.body).not.toContain('secret');
    expect((await answer(routes, 'GET', '/health/ready')).status).toBe(503);
    expect(logger.lines.length).toBeGreaterThan(0);
    expect(logger.lines[0]).toBe(
      'error [HEALTH] critical hook failed: Error: secret database password in message',
    );
  });

  it('healthReport and isReady used directly survive a throwing critical() too', () => {
    const registry = new CircuitBreakerRegistry();
    registry.get('db').open();
    const critical = (): boolean => {
      throw new Error('boom');
    };
    expect(healthReport({ registry, critical }).status).toBe('fail');
    expect(isReady({ registry, critical })).toBe(false);
  });

  it.each([
    [
      'throws',
      () => {
        throw new Error('token=abc');
      },
    ],
    ['rejects', () => Promise.reject(new Error('token=abc'))],
  ])(
    'an authorize() that %s refuses with 403, logs, and shows nothing of the error',
    async (_, authorize) => {
      const logger = memoryLogger();
      const { registry, routes } = setup({ logger, admin: { authorize } });
      registry.get('plant-id').open();
      const response = await answer(routes, 'POST', '/health/circuit-breakers/plant-id/reset');
      expect(response.status).toBe(403);
      expect(response.body).not.toContain('token');
      expect(registry.get('plant-id').state).toBe('forced_open');
      expect(logger.lines).toEqual([
        'error [HEALTH] admin.authorize hook failed: Error: token=abc',
      ]);
    },
  );

  it('a logger that throws changes nothing', async () => {
    const throwing = {
      info: () => {
        throw new Error('log');
      },
      warn: () => {
        throw new Error('log');
      },
      error: () => {
        throw new Error('log');
      },
    };
    const { routes } = setup({
      logger: throwing,
      admin: { authorize: () => Promise.reject(new Error('x')) },
    });
    expect((await answer(routes, 'POST', '/health/circuit-breakers/plant-id/reset')).status).toBe(
      403,
    );
  });

  it('checks logger and stream.maxBufferBytes', () => {
    const path = (options: Partial<HealthRoutesOptions<unknown>>): string => {
      try {
        setup(options);
      } catch (error) {
        if (isConfigError(error)) return error.path;
        throw error;
      }
      throw new Error('expected a ConfigError');
    };
    expect(path({ logger: {} as never })).toBe('logger');
    expect(path({ stream: { maxBufferBytes: 10 } })).toBe('stream.maxBufferBytes');
    expect(path({ stream: { maxBufferBytes: 1.5 } })).toBe('stream.maxBufferBytes');
  });
});

describe('HealthRoutes event streams under back-pressure', () => {
  it('drops a client whose connection stays congested past maxBufferBytes, keeps one that drains', () => {
    const { registry, routes } = setup({ stream: { maxBufferBytes: 2048 } });
    const breaker = registry.get('plant-id');
    const open = (flowing: () => boolean) => {
      const stream = routes.handle('GET', '/health/circuit-breakers/stream', {}) as SseStream;
      const state = { bytes: 0, ended: false };
      stream.start(
        (chunk) => {
          state.bytes += chunk.length;
          return flowing();
        },
        () => (state.ended = true),
      );
      return state;
    };
    const stuck = open(() => false);
    let tick = 0;
    const slow = open(() => ++tick % 3 !== 0);
    const legacy = (() => {
      const stream = routes.handle('GET', '/health/circuit-breakers/stream', {}) as SseStream;
      const state = { bytes: 0, ended: false };
      stream.start(
        (chunk) => {
          state.bytes += chunk.length;
        },
        () => (state.ended = true),
      );
      return state;
    })();
    for (let i = 0; i < 200; i++) {
      if (i % 2 === 0) breaker.open();
      else breaker.reset();
    }
    expect(stuck.ended).toBe(true);
    expect(stuck.bytes).toBeLessThan(2048 + 1024);
    expect(slow.ended).toBe(false);
    expect(legacy.ended).toBe(false);
    expect(legacy.bytes).toBe(slow.bytes);
    expect(routes.streams).toBe(2);
  });
});
