import { afterEach, beforeEach, describe, expect, it, jest } from '@jest/globals';
import type { Request, Response } from 'express';
import request from 'supertest';
import type { RateLimitInfo } from '@breakwater/core';
import { rateLimit, type RateLimitedRequest } from '../src';
import { expressVersions, ManualClock, memoryLogger } from './helpers';

const ok = (_req: Request, res: Response): void => {
  res.send('ok');
};

describe.each(expressVersions)(
  'rateLimit parity with express-rate-limit on %s',
  (_l, _m, createApp) => {
    let warning: jest.SpiedFunction<typeof process.emitWarning>;
    beforeEach(() => {
      warning = jest.spyOn(process, 'emitWarning').mockImplementation(() => undefined);
    });
    afterEach(() => warning.mockRestore());

    it('answers with message and statusCode (text, JSON, or a function of the request)', async () => {
      const app = createApp();
      app.get(
        '/text',
        rateLimit({ name: 't', limit: 1, window: '1h', message: 'Slow down', statusCode: 503 }),
        ok,
      );
      app.get(
        '/json',
        rateLimit({ name: 'j', limit: 1, window: '1h', message: { error: 'quota' } }),
        ok,
      );
      app.get(
        '/fn',
        rateLimit({ name: 'f', limit: 1, window: '1h', message: async (req) => `bye ${req.path}` }),
        ok,
      );
      await request(app).get('/text').expect(200);
      const text = await request(app).get('/text').expect(503, 'Slow down');
      expect(text.headers['content-type']).toBe('text/plain; charset=utf-8');
      expect(text.headers['retry-after']).toBeDefined();
      expect(text.headers.ratelimit).toMatch(/^"t";r=0;t=\d+$/);
      await request(app).get('/json').expect(200);
      const json = await request(app).get('/json').expect(429);
      expect(JSON.parse(json.text)).toEqual({ error: 'quota' });
      await request(app).get('/fn').expect(200);
      await request(app).get('/fn').expect(429, 'bye /fn');
    });

    it('calls handler on refusal with the decision; a throwing one gets the default 429', async () => {
      const logger = memoryLogger();
      const app = createApp();
      app.get(
        '/custom',
        rateLimit({
          name: 'c',
          limit: 1,
          window: '1h',
          handler: (_req, res, _next, info) => {
            res.status(429).json({ wait: info.retryAfterMs > 0, limiter: info.limiter });
          },
        }),
        ok,
      );
      app.get(
        '/broken',
        rateLimit({
          name: 'b',
          limit: 1,
          window: '1h',
          logger,
          handler: () => {
            throw new Error('handler broke');
          },
        }),
        ok,
      );
      await request(app).get('/custom').expect(200);
      const custom = await request(app).get('/custom').expect(429);
      expect(JSON.parse(custom.text)).toEqual({ wait: true, limiter: 'c' });
      await request(app).get('/broken').expect(200);
      const broken = await request(app).get('/broken').expect(429);
      expect(broken.headers['content-type']).toBe('application/problem+json');
      expect(broken.text).not.toContain('broke');
      expect(logger.lines.some((l) => l.includes('handler failed (Error: handler broke)'))).toBe(
        true,
      );
    });

    it('takes limit as a function of the request, sync or async', async () => {
      const app = createApp();
      app.use(
        rateLimit({
          name: 'plan',
          window: '1h',
          key: (req) => req.get('x-user') ?? '',
          limit: async (req) => (req.get('x-plan') === 'pro' ? 3 : 1),
        }),
      );
      app.get('/', ok);
      const pro = { 'x-user': 'p', 'x-plan': 'pro' };
      for (let i = 0; i < 3; i++) await request(app).get('/').set(pro).expect(200);
      const refused = await request(app).get('/').set(pro).expect(429);
      expect(refused.headers['ratelimit-policy']).toBe('"plan";q=3;w=3600');
      await request(app).get('/').set({ 'x-user': 'f' }).expect(200);
      await request(app).get('/').set({ 'x-user': 'f' }).expect(429);
    });

    it('lets the request through and logs when limit(), key(), skip() or cost() fails', async () => {
      const logger = memoryLogger();
      const app = createApp();
      app.get('/limit', rateLimit({ name: 'l', window: '1h', logger, limit: () => 0 }), ok);
      app.get(
        '/key',
        rateLimit({
          name: 'k',
          limit: 1,
          window: '1h',
          logger,
          key: () => Promise.reject(new Error('k')),
        }),
        ok,
      );
      app.get(
        '/skip',
        rateLimit({
          name: 's',
          limit: 1,
          window: '1h',
          logger,
          skip: () => {
            throw new Error('s');
          },
        }),
        ok,
      );
      app.get(
        '/cost',
        rateLimit({ name: 'c', limit: 1, window: '1h', logger, cost: () => -1 }),
        ok,
      );
      for (const path of ['/limit', '/key', '/skip', '/cost']) {
        for (let i = 0; i < 2; i++) {
          const res = await request(app).get(path).expect(200, 'ok');
          expect(res.headers.ratelimit).toBeUndefined();
        }
      }
      for (const hook of ['limit', 'key', 'skip', 'cost']) {
        expect(logger.lines.some((l) => l.includes(` ${hook} failed`))).toBe(true);
      }
    });

    it('puts the decision on req.rateLimit', async () => {
      const clock = new ManualClock(7_200_000);
      const app = createApp();
      let seen: RateLimitInfo | undefined;
      app.get('/', rateLimit({ name: 'api', limit: 5, window: '1h', clock }), (req, res) => {
        seen = (req as RateLimitedRequest).rateLimit;
        res.send('ok');
      });
      await request(app).get('/').expect(200);
      expect(seen).toMatchObject({
        limiter: 'api',
        limit: 5,
        used: 1,
        remaining: 4,
        allowed: true,
      });
      expect(seen?.key).toBe('127.0.0.1');
      expect(seen?.resetTime).toBeInstanceOf(Date);
    });

    it('puts the decision on req[requestPropertyName], or nowhere with false', async () => {
      const app = createApp();
      const seen: Record<string, unknown> = {};
      app.get(
        '/named',
        rateLimit({ name: 'n', limit: 5, window: '1h', requestPropertyName: 'quota' }),
        (req, res) => {
          const r = req as Request & { quota?: RateLimitInfo };
          seen.named = [r.quota?.limiter, (req as RateLimitedRequest).rateLimit];
          res.send('ok');
        },
      );
      app.get(
        '/none',
        rateLimit({ name: 'x', limit: 5, window: '1h', requestPropertyName: false }),
        (req, res) => {
          seen.none = [(req as RateLimitedRequest).rateLimit, 'quota' in req && req.quota];
          res.send('ok');
        },
      );
      await request(app).get('/named').expect(200);
      await request(app).get('/none').expect(200);
      expect(seen).toEqual({ named: ['n', undefined], none: [undefined, undefined] });
    });

    it('gives back failed requests with skipFailedRequests (thrown errors and 4xx/5xx)', async () => {
      const app = createApp();
      app.use(rateLimit({ name: 'f', limit: 2, window: '1h', skipFailedRequests: true }));
      app.get('/fail', (_req, res) => {
        res.status(400).end();
      });
      app.get('/throw', () => {
        throw new Error('boom');
      });
      app.get('/', ok);
      for (let i = 0; i < 3; i++) await request(app).get('/fail').expect(400);
      await request(app).get('/throw').expect(500);
      await request(app).get('/').expect(200);
      await request(app).get('/').expect(200);
      await request(app).get('/').expect(429);
    });

    it('gives back successful requests with skipSuccessfulRequests and a custom requestWasSuccessful', async () => {
      const app = createApp();
      app.use(
        rateLimit({
          name: 's',
          limit: 2,
          window: '1h',
          skipSuccessfulRequests: true,
          requestWasSuccessful: (_req, res) => res.statusCode !== 418,
        }),
      );
      app.get('/', ok);
      app.get('/teapot', (_req, res) => {
        res.status(418).end();
      });
      for (let i = 0; i < 4; i++) await request(app).get('/').expect(200);
      await request(app).get('/teapot').expect(418);
      await request(app).get('/teapot').expect(418);
      await request(app).get('/').expect(429);
    });

    it('keeps counting when requestWasSuccessful throws, and logs it', async () => {
      const logger = memoryLogger();
      const app = createApp();
      app.use(
        rateLimit({
          name: 'w',
          limit: 1,
          window: '1h',
          logger,
          skipSuccessfulRequests: true,
          requestWasSuccessful: () => {
            throw new Error('judge broke');
          },
        }),
      );
      app.get('/', ok);
      await request(app).get('/').expect(200);
      await request(app).get('/').expect(429);
      expect(logger.lines.some((l) => l.includes('requestWasSuccessful failed'))).toBe(true);
    });

    it('groups IPv6 clients by /56 and counts IPv4-mapped addresses as IPv4', async () => {
      const app = createApp();
      app.set('trust proxy', true);
      app.get('/', rateLimit({ name: 'v6', limit: 1, window: '1h' }), ok);
      app.get(
        '/whole',
        rateLimit({ name: 'whole', limit: 1, window: '1h', ipv6Subnet: false }),
        ok,
      );
      const from = (address: string) => ({ 'x-forwarded-for': address });
      await request(app).get('/').set(from('2001:db8:1:ff01::1')).expect(200);
      await request(app).get('/').set(from('2001:db8:1:ff99::7')).expect(429);
      await request(app).get('/').set(from('2001:db8:1:fe00::1')).expect(200);
      await request(app).get('/').set(from('10.0.0.9')).expect(200);
      await request(app).get('/').set(from('::ffff:10.0.0.9')).expect(429);
      await request(app).get('/whole').set(from('2001:db8:1:ff01::1')).expect(200);
      await request(app).get('/whole').set(from('2001:db8:1:ff01::2')).expect(200);
    });

    it('warns once when X-Forwarded-For arrives while trust proxy is off', async () => {
      const app = createApp();
      app.get('/', rateLimit({ name: 'xff', limit: 100, window: '1h' }), ok);
      await request(app).get('/').expect(200);
      expect(warning).not.toHaveBeenCalled();
      await request(app).get('/').set('x-forwarded-for', '1.2.3.4').expect(200);
      await request(app).get('/').set('x-forwarded-for', '1.2.3.5').expect(200);
      expect(warning).toHaveBeenCalledTimes(1);
      expect(String(warning.mock.calls[0]?.[0])).toContain('X-Forwarded-For');
      const trusted = createApp();
      trusted.set('trust proxy', 1);
      trusted.get('/', rateLimit({ name: 'xff2', limit: 100, window: '1h' }), ok);
      await request(trusted).get('/').set('x-forwarded-for', '1.2.3.4').expect(200);
      expect(warning).toHaveBeenCalledTimes(1);
    });

    it('lists stacked limiters in the draft-11 headers, on errors too', async () => {
      const app = createApp();
      app.use(rateLimit({ name: 'global', limit: 100, window: '1m' }));
      app.get('/', rateLimit({ name: 'route', limit: 10, window: '1h' }), ok);
      app.get('/boom', rateLimit({ name: 'route2', limit: 10, window: '1h' }), () => {
        throw new Error('boom');
      });
      const res = await request(app).get('/').expect(200);
      expect(res.headers['ratelimit-policy']).toBe('"global";q=100;w=60, "route";q=10;w=3600');
      expect(res.headers.ratelimit).toMatch(/^"global";r=99;t=\d+, "route";r=9;t=\d+$/);
      const boom = await request(app).get('/boom').expect(500);
      expect(boom.headers['ratelimit-policy']).toBe('"global";q=100;w=60, "route2";q=10;w=3600');
    });

    it('sends older header drafts on request', async () => {
      const clock = new ManualClock(7_200_000);
      const app = createApp();
      app.get(
        '/7',
        rateLimit({ name: 'a', limit: 5, window: '1m', clock, headers: 'draft-7' }),
        ok,
      );
      app.get(
        '/6',
        rateLimit({ name: 'b', limit: 5, window: '1m', clock, headers: 'draft-6' }),
        ok,
      );
      app.get(
        '/8',
        rateLimit({ name: 'c', limit: 5, window: '1m', clock, headers: 'draft-8' }),
        ok,
      );
      app.get('/none', rateLimit({ name: 'd', limit: 5, window: '1m', clock, headers: false }), ok);
      const seven = await request(app).get('/7').expect(200);
      expect(seven.headers['ratelimit-policy']).toBe('5;w=60');
      expect(seven.headers.ratelimit).toBe('limit=5, remaining=4, reset=60');
      const six = await request(app).get('/6').expect(200);
      expect(six.headers['ratelimit-policy']).toBe('5;w=60');
      expect(six.headers).toMatchObject({
        'ratelimit-limit': '5',
        'ratelimit-remaining': '4',
        'ratelimit-reset': '60',
      });
      const eight = await request(app).get('/8').expect(200);
      expect(eight.headers.ratelimit).toBe('"c";r=4;t=60');
      const none = await request(app).get('/none').expect(200);
      expect(none.headers.ratelimit).toBeUndefined();
      expect(none.headers['ratelimit-policy']).toBeUndefined();
    });

    it('with stacked draft-7 limiters, describes the one with the least remaining', async () => {
      const app = createApp();
      app.use(rateLimit({ name: 'wide', limit: 100, window: '1m', headers: 'draft-7' }));
      app.use(rateLimit({ name: 'narrow', limit: 3, window: '1m', headers: 'draft-7' }));
      app.use(rateLimit({ name: 'mid', limit: 50, window: '1m', headers: 'draft-7' }));
      app.get('/', ok);
      const res = await request(app).get('/').expect(200);
      expect(res.headers['ratelimit-policy']).toBe('100;w=60, 3;w=60, 50;w=60');
      expect(res.headers.ratelimit).toMatch(/^limit=3, remaining=2, reset=\d+$/);
    });

    it('rejects invalid parity options with a ConfigError naming the option', () => {
      const cases: [Record<string, unknown>, string][] = [
        [{ statusCode: 200 }, 'statusCode'],
        [{ message: 42 }, 'message'],
        [{ handler: 'x' }, 'handler'],
        [{ skipFailedRequests: 'yes' }, 'skipFailedRequests'],
        [{ requestWasSuccessful: true }, 'requestWasSuccessful'],
        [{ ipv6Subnet: 0 }, 'ipv6Subnet'],
        [{ headers: 'draft-9' }, 'headers'],
        [{ headers: { standard: 'draft-5' } }, 'headers.standard'],
      ];
      for (const [extra, path] of cases) {
        expect(() => rateLimit({ name: 'x', limit: 1, window: '1m', ...extra } as never)).toThrow(
          expect.objectContaining({ code: 'EBADCONFIG', path }),
        );
      }
    });
  },
);
