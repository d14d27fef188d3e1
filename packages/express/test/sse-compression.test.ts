import { describe, expect, it } from '@jest/globals';
import compression from 'compression';
import request from 'supertest';
import { CircuitBreakerRegistry } from '@breakwater/core';
import { healthRoutes } from '../src';
import { close, expressVersions, listen, openRequest, readUntil } from './helpers';

describe.each(expressVersions)('event stream behind compression() on %s', (_l, _m, createApp) => {
  it('delivers every event to a client that accepts gzip and br', async () => {
    const registry = new CircuitBreakerRegistry();
    registry.get('db');
    const health = healthRoutes({ registry });
    const app = createApp();
    app.use(compression({ threshold: 0 }));
    app.use(health);
    app.get('/big', (_req, res) => {
      res.type('text').send('x'.repeat(5_000));
    });
    const { server, url } = await listen(app);
    try {
      // The middleware does compress ordinary responses.
      const big = await request(server).get('/big').set('accept-encoding', 'gzip');
      expect(big.headers['content-encoding']).toBe('gzip');

      const { request: req, response } = openRequest(`${url}/health/circuit-breakers/stream`, {
        'accept-encoding': 'gzip, deflate, br',
      });
      const res = await response;
      expect(res.statusCode).toBe(200);
      expect(res.headers['content-encoding']).toBeUndefined();
      expect(res.headers['cache-control']).toBe('no-store, no-transform');
      await readUntil(res, (text) => text.includes('event: snapshot'));
      const next = readUntil(res, (text) => text.includes('event: state'));
      registry.find('db')!.open();
      expect(await next).toContain('"forced_open"');
      req.destroy();
    } finally {
      health.close();
      await close(server);
    }
  });
});
