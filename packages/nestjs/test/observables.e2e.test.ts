import 'reflect-metadata';
import { EventEmitter, once } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { HttpModule, HttpService } from '@nestjs/axios';
import { Controller, Get, Injectable, Param, type INestApplication } from '@nestjs/common';
import { APP_FILTER } from '@nestjs/core';
import { CircuitBreakerRegistry, constant, isTimeoutError } from '@breakwater/core';
import type { AxiosResponse } from 'axios';
import { Observable, firstValueFrom, lastValueFrom, map, of, toArray } from 'rxjs';
import request from 'supertest';
import {
  BreakwaterExceptionFilter,
  BreakwaterModule,
  Bulkhead,
  CircuitBreaker,
  Retry,
  Timeout,
} from '../src';
import { createApp, httpServer, platforms, type PlatformName } from './helpers';

/** A local upstream on loopback: `/fail-n/<id>` fails n times per id, `/hold` never answers. */
const upstream = {
  server: undefined as Server | undefined,
  base: '',
  hits: [] as string[],
  failuresLeft: new Map<string, number>(),
  /** Requests to `/hold` that are open now, and a promise per arrival / close. */
  held: new Set<ServerResponse>(),
  arrived: deferred(),
  /** Paths of the `/hold` requests whose connection has closed, and who waits for one. */
  closed: [] as string[],
  events: new EventEmitter(),
};

/** Resolves once the held request to `path` has been closed by the client. */
function closedAt(path: string): Promise<void> {
  if (upstream.closed.includes(path)) return Promise.resolve();
  return once(upstream.events, path).then(() => undefined);
}

function handle(req: IncomingMessage, res: ServerResponse): void {
  const url = req.url ?? '/';
  upstream.hits.push(url);
  if (url.startsWith('/hold')) {
    upstream.held.add(res);
    res.once('close', () => {
      upstream.held.delete(res);
      upstream.closed.push(url);
      upstream.events.emit(url);
    });
    upstream.arrived.resolve();
    return;
  }
  const failing = /^\/fail-(\d+)\/(.+)$/.exec(url);
  if (failing !== null) {
    const id = failing[2]!;
    const left = upstream.failuresLeft.get(id) ?? Number(failing[1]);
    if (left > 0) {
      upstream.failuresLeft.set(id, left - 1);
      res.writeHead(503).end('busy');
      return;
    }
  }
  res.writeHead(200, { 'content-type': 'text/plain' }).end(`ok ${url}`);
}

@Injectable()
class UpstreamClient {
  constructor(private readonly http: HttpService) {}

  @Retry({ maxAttempts: 3, backoff: constant(0) })
  @CircuitBreaker({ name: 'upstream', failureThreshold: 5 })
  get(path: string): Observable<AxiosResponse<string>> {
    return this.http.get<string>(`${upstream.base}${path}`);
  }

  @Timeout(50)
  slow(): Observable<AxiosResponse<string>> {
    return this.http.get<string>(`${upstream.base}/hold/slow`);
  }

  @Bulkhead({ maxConcurrent: 1 })
  @CircuitBreaker({ name: 'held', failureThreshold: 1, fallback: 'spare' })
  held(): Observable<string> {
    return this.http.get<string>(`${upstream.base}/hold/held`).pipe(map((r) => r.data));
  }

  spare(): Observable<string> {
    return of('spare-1', 'spare-2');
  }

  @CircuitBreaker('ticks')
  ticks(): Observable<number> {
    return of(1, 2, 3);
  }
}

@Controller('proxy')
class ProxyController {
  constructor(private readonly client: UpstreamClient) {}

  @Get(':id')
  proxy(@Param('id') id: string): Observable<string> {
    return this.client.get(`/fail-2/${id}`).pipe(map((res) => res.data));
  }
}

describe.each(platforms)('Observable-returning methods on %s', (platform: PlatformName) => {
  let app: INestApplication;
  beforeAll(async () => {
    upstream.server = createServer(handle);
    upstream.server.listen(0, '127.0.0.1');
    await once(upstream.server, 'listening');
    upstream.base = `http://127.0.0.1:${(upstream.server.address() as AddressInfo).port}`;
    app = await createApp(platform, {
      imports: [BreakwaterModule.forRoot(), HttpModule],
      controllers: [ProxyController],
      providers: [UpstreamClient, { provide: APP_FILTER, useClass: BreakwaterExceptionFilter }],
    });
  });
  afterEach(() => {
    upstream.hits = [];
    upstream.failuresLeft.clear();
    for (const res of upstream.held) res.destroy();
    upstream.arrived = deferred();
    upstream.closed = [];
  });
  afterAll(async () => {
    await app.close();
    upstream.server?.closeAllConnections();
    upstream.server?.close();
  });

  it('keeps returning an Observable and passes every value on', async () => {
    const ticks = app.get(UpstreamClient).ticks();
    expect(ticks).toBeInstanceOf(Observable);
    await expect(lastValueFrom(ticks.pipe(toArray()))).resolves.toEqual([1, 2, 3]);
  });

  it('retries by subscribing again: the HttpService request is sent again', async () => {
    const res = await request(httpServer(app)).get('/proxy/a').expect(200);
    expect(res.text).toBe('ok /fail-2/a');
    expect(upstream.hits).toEqual(['/fail-2/a', '/fail-2/a', '/fail-2/a']);
    // Each attempt passed the breaker: two failures, one success.
    const snapshot = app.get(CircuitBreakerRegistry).get('upstream').snapshot();
    expect(snapshot).toMatchObject({ calls: 3, failures: 2 });
  });

  it('is lazy: nothing is sent before a subscription', async () => {
    const observable = app.get(UpstreamClient).get('/fail-0/lazy');
    await new Promise((resolve) => setImmediate(resolve));
    expect(upstream.hits).toEqual([]);
    await expect(firstValueFrom(observable)).resolves.toMatchObject({ data: 'ok /fail-0/lazy' });
  });

  it('unsubscribing aborts the call: the upstream request is cancelled, the slot freed, nothing counted', async () => {
    const client = app.get(UpstreamClient);
    const values: string[] = [];
    const subscription = client.held().subscribe({ next: (v) => values.push(v) });
    await upstream.arrived.promise;
    expect(upstream.held.size).toBe(1);
    subscription.unsubscribe();
    await closedAt('/hold/held');
    expect(values).toEqual([]);
    const breaker = app.get(CircuitBreakerRegistry).get('held');
    expect(breaker.snapshot()).toMatchObject({ state: 'closed', failures: 0 });

    // The bulkhead slot is free again: a new subscription reaches the upstream.
    upstream.arrived = deferred();
    const again = client.held().subscribe();
    await upstream.arrived.promise;
    again.unsubscribe();
  });

  it('times a subscription out, cancelling the upstream request', async () => {
    const error = await firstValueFrom(app.get(UpstreamClient).slow()).catch((e: unknown) => e);
    expect(isTimeoutError(error)).toBe(true);
    await closedAt('/hold/slow');
  });

  it('serves an Observable fallback value by value', async () => {
    const client = app.get(UpstreamClient);
    app.get(CircuitBreakerRegistry).get('held').open();
    await expect(lastValueFrom(client.held().pipe(toArray()))).resolves.toEqual([
      'spare-1',
      'spare-2',
    ]);
    app.get(CircuitBreakerRegistry).get('held').reset();
  });
});

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}
