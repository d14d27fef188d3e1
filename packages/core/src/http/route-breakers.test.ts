import { describe, expect, it } from '@jest/globals';
import { CircuitBreaker } from '../breaker/circuit-breaker';
import { CircuitBreakerRegistry } from '../breaker/registry';
import { isConfigError } from '../errors';
import type { HttpResponse } from './http-response';
import { RouteBreakers } from './route-breakers';

describe('RouteBreakers', () => {
  it('gives each route its own breaker named METHOD pattern, in the given registry', () => {
    const registry = new CircuitBreakerRegistry();
    const routes = new RouteBreakers({ registry, failureThreshold: 2 });
    const a = routes.breakerFor('GET', '/users/:id');
    expect(a.name).toBe('GET /users/:id');
    expect(routes.breakerFor('GET', '/users/:id')).toBe(a);
    expect(routes.breakerFor('POST', '/users/:id')).not.toBe(a);
    expect(registry.list().map((b) => b.name)).toEqual(['GET /users/:id', 'POST /users/:id']);
  });

  it('settles permits from the status: >= 500 fails by default, or as configured', () => {
    const routes = new RouteBreakers({ failureThreshold: 2 });
    const breaker = routes.breakerFor('GET', '/x');
    for (const status of [200, 404, 500, 503])
      routes.settle(routes.admit(breaker) as never, status);
    expect(breaker.state).toBe('open');
    const open = routes.admit(breaker) as HttpResponse;
    expect(open.status).toBe(503);
    expect(open.headers['retry-after']).toBe('60');

    const strict = new RouteBreakers({ failureThreshold: 1, isFailureStatus: (s) => s === 429 });
    const b = strict.breakerFor('GET', '/y');
    strict.settle(strict.admit(b) as never, 500);
    expect(b.state).toBe('closed');
    strict.settle(strict.admit(b) as never, 429);
    expect(b.state).toBe('open');
  });

  it('keeps to maxRoutes under a flood of distinct paths: the rest share METHOD *', () => {
    const registry = new CircuitBreakerRegistry();
    const routes = new RouteBreakers({ registry, maxRoutes: 10 });
    for (let i = 0; i < 10_000; i++) routes.breakerFor('GET', `/files/${i}`);
    expect(registry.size).toBe(11);
    expect(routes.breakerFor('GET', '/files/99999').name).toBe('GET *');
    expect(routes.breakerFor('GET', '/files/3').name).toBe('GET /files/3');
  });

  it('uses one fixed breaker when given a breaker or a name', () => {
    const breaker = new CircuitBreaker({ name: 'fixed' });
    expect(new RouteBreakers(breaker).breakerFor('GET', '/a')).toBe(breaker);
    const registry = new CircuitBreakerRegistry();
    const named = new RouteBreakers({ name: 'upstream', registry });
    expect(named.breakerFor('PUT', '/b')).toBe(registry.find('upstream'));
  });

  it.each([
    [{ maxRoutes: 0 }, 'maxRoutes'],
    [{ isFailureStatus: 500 }, 'isFailureStatus'],
    [{ registry: new Map() }, 'registry'],
    [{ failureThreshold: 0 }, 'failureThreshold'],
    [{ name: '' }, 'name'],
  ])('rejects %j naming %s', (options, path) => {
    let caught: unknown;
    try {
      new RouteBreakers(options as never);
    } catch (error) {
      caught = error;
    }
    expect(isConfigError(caught) && caught.path).toBe(path);
  });
});

describe('RouteBreakers edge cases', () => {
  it('a full shared registry never throws on a request: new routes get an overflow breaker', () => {
    const registry = new CircuitBreakerRegistry({ maxBreakers: 2 });
    registry.get('other-1');
    registry.get('other-2');
    const routes = new RouteBreakers({ registry, maxRoutes: 100 });
    const a = routes.breakerFor('GET', '/a');
    expect(a.name).toBe('GET *');
    expect(routes.breakerFor('GET', '/b')).toBe(a);
    expect(registry.size).toBe(2);
  });

  it('HEAD shares the GET breaker of its route', () => {
    const routes = new RouteBreakers();
    expect(routes.breakerFor('HEAD', '/x')).toBe(routes.breakerFor('GET', '/x'));
  });

  it.each([
    ['isResultFailure', 1],
    ['timeoutMs', -1],
    ['timeoutMs', 'soon'],
    ['maxConcurrent', 0],
    ['maxConcurrent', 1.5],
  ])('rejects %s: %p', (key, value) => {
    let caught: unknown;
    try {
      new RouteBreakers({ [key]: value });
    } catch (error) {
      caught = error;
    }
    expect(isConfigError(caught) && caught.path).toBe(key);
  });

  it('sends a route whose name would be too long to the overflow breaker', () => {
    const routes = new RouteBreakers();
    const long = `/${'a'.repeat(300)}`;
    expect(routes.breakerFor('GET', long).name).toBe('GET *');
    expect(routes.breakerFor('GET', '/short').name).toBe('GET /short');
  });

  it('bounds requests in flight with maxConcurrent, and counts them out', () => {
    const routes = new RouteBreakers({ maxConcurrent: 2 });
    const route = routes.routeFor('GET', '/x');
    const first = routes.enter(route);
    const second = routes.enter(route);
    expect('kind' in first || 'kind' in second).toBe(false);
    const third = routes.enter(route);
    expect('kind' in third && third.status).toBe(503);
    expect('kind' in third && third.headers['retry-after']).toBe('1');
    routes.leave(route);
    expect('kind' in routes.enter(route)).toBe(false);
    expect(route.breaker.snapshot().failures).toBe(0);
  });

  it('answers a forced-open circuit with a Retry-After that does not invite hammering', () => {
    const routes = new RouteBreakers({ name: 'forced' });
    const route = routes.routeFor('GET', '/x');
    route.breaker.open();
    const answer = routes.enter(route);
    expect('kind' in answer && answer.headers['retry-after']).toBe('60');
  });

  it('counts by status >= 500 when isFailureStatus throws, and logs the error', () => {
    const lines: string[] = [];
    const logger = {
      info: () => undefined,
      warn: () => undefined,
      error: (l: string) => lines.push(l),
    };
    const routes = new RouteBreakers({
      name: 'hooked',
      logger,
      isFailureStatus: () => {
        throw new Error('boom');
      },
    });
    const route = routes.routeFor('GET', '/');
    const permit = routes.enter(route);
    if ('kind' in permit) throw new Error('not admitted');
    routes.settle(permit, 503);
    expect(route.breaker.snapshot().failures).toBe(1);
    expect(lines.some((l) => l.includes('isFailureStatus failed (Error: boom)'))).toBe(true);
  });

  it('times a request out as a failure with a 504', () => {
    const routes = new RouteBreakers({ name: 'slow', timeoutMs: '2s' });
    expect(routes.timeoutMs).toBe(2_000);
    const route = routes.routeFor('GET', '/');
    const permit = routes.enter(route);
    if ('kind' in permit) throw new Error('not admitted');
    const answer = routes.timedOut(permit);
    expect(answer.status).toBe(504);
    expect(answer.headers['content-type']).toBe('application/problem+json');
    expect(route.breaker.snapshot().failures).toBe(1);
  });
});

describe('RouteBreakers fallback', () => {
  it("keeps the adapter's fallback handler, checked to be a function", () => {
    const handler = (): string => 'degraded';
    expect(new RouteBreakers<() => string>({ fallback: handler }).fallback).toBe(handler);
    expect(new RouteBreakers().fallback).toBeUndefined();
    let caught: unknown;
    try {
      new RouteBreakers({ fallback: 'cached' } as never);
    } catch (error) {
      caught = error;
    }
    expect(isConfigError(caught) && caught.path).toBe('fallback');
  });
});

describe('RouteBreakers.settleError', () => {
  it('counts an error that names a status as that status, any other error as a failure', () => {
    const routes = new RouteBreakers({ failureThreshold: 1 });
    const breaker = routes.breakerFor('GET', '/e');
    routes.settleError(
      routes.admit(breaker) as never,
      Object.assign(new Error('nope'), { status: 404 }),
    );
    routes.settleError(
      routes.admit(breaker) as never,
      Object.assign(new Error('nope'), { statusCode: 422 }),
    );
    routes.settleError(routes.admit(breaker) as never, { status: 'teapot' });
    expect(breaker.state).toBe('open');
    const other = routes.breakerFor('GET', '/f');
    routes.settleError(
      routes.admit(other) as never,
      Object.assign(new Error('down'), { status: 503 }),
    );
    expect(other.state).toBe('open');
  });
});
