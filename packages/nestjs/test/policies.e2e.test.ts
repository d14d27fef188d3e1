import 'reflect-metadata';
import { afterEach, describe, expect, it } from '@jest/globals';
import {
  Controller,
  Get,
  Injectable,
  Module,
  NotFoundException,
  Param,
  type INestApplication,
} from '@nestjs/common';
import { APP_FILTER } from '@nestjs/core';
import { Test } from '@nestjs/testing';
import {
  CircuitBreakerRegistry,
  constant,
  isBulkheadFullError,
  isCircuitOpenError,
  isConfigError,
  isRateLimitError,
} from '@breakwater/core';
import request from 'supertest';
import {
  BreakwaterExceptionFilter,
  BreakwaterModule,
  Bulkhead,
  CircuitBreaker,
  RateLimit,
  Retry,
  Timeout,
  type BreakwaterModuleOptions,
} from '../src';
import { ManualClock, createApp, httpServer, platforms, type PlatformName } from './helpers';

/** What the decorated methods do, set by each test. */
const world = {
  calls: [] as string[],
  failures: 0,
  /** Held calls wait for this. */
  gate: deferred(),
  entered: deferred(),
};

@Injectable()
class Catalog {
  @CircuitBreaker({ name: 'catalog', failureThreshold: 2, fallback: 'cached' })
  async find(id: string): Promise<string> {
    world.calls.push(id);
    if (id === 'missing') throw new NotFoundException(`no ${id}`);
    if (id === 'broken') throw new Error('catalog down');
    return `found:${id}`;
  }

  cached(id: string, error: unknown): string {
    return `cached:${id}:${(error as Error).name}`;
  }

  @CircuitBreaker({ name: 'strict', failureThreshold: 2, isFailure: () => true })
  async strict(): Promise<string> {
    throw new NotFoundException();
  }

  @Retry({ maxAttempts: 3, backoff: constant(0), fallback: 'gaveUp' })
  async flaky(): Promise<string> {
    world.calls.push('flaky');
    if (world.failures > 0) {
      world.failures--;
      throw new Error('flaky');
    }
    return 'ok';
  }

  gaveUp(error: unknown): string {
    return `gave up: ${(error as Error).message}`;
  }

  @Retry({ maxAttempts: 3, backoff: constant(0) })
  async notThere(): Promise<string> {
    world.calls.push('notThere');
    throw new NotFoundException();
  }

  @Retry({ maxAttempts: 5, backoff: constant(0) })
  @CircuitBreaker({ name: 'composed', failureThreshold: 2 })
  @Timeout(1_000)
  @Bulkhead({ maxConcurrent: 1 })
  async composed(): Promise<string> {
    world.calls.push('composed');
    throw new Error('down');
  }

  @Timeout(20)
  async slow(): Promise<string> {
    await world.gate.promise;
    return 'late';
  }

  @Bulkhead({ name: 'db', maxConcurrent: 1 })
  async query(id: string): Promise<string> {
    world.entered.resolve();
    await world.gate.promise;
    return `row:${id}`;
  }

  @RateLimit('2/m')
  quota(): string {
    return 'quota';
  }

  @RateLimit({ limiter: 'shared' })
  @RateLimit({ name: 'Catalog.burst', rate: '5/m' })
  stacked(): string {
    return 'stacked';
  }
}

@Controller('catalog')
class CatalogController {
  constructor(private readonly catalog: Catalog) {}

  @Get('slow')
  slow(): Promise<string> {
    return this.catalog.slow();
  }

  @Get('query/:id')
  query(@Param('id') id: string): Promise<string> {
    return this.catalog.query(id);
  }

  @Get('quota')
  quota(): string {
    return this.catalog.quota();
  }

  @Get(':id')
  find(@Param('id') id: string): Promise<string> {
    return this.catalog.find(id);
  }

  @CircuitBreaker({ name: 'route', failureThreshold: 1 })
  @Get('route/:status')
  route(@Param('status') status: string): string {
    if (status === '404') throw new NotFoundException();
    if (status === '500') throw new Error('boom');
    return 'route';
  }
}

function start(
  platform: PlatformName,
  extra: BreakwaterModuleOptions = {},
): Promise<INestApplication> {
  const clock = new ManualClock(0);
  return createApp(platform, {
    imports: [
      BreakwaterModule.forRoot({
        breakers: { clock },
        limiters: { shared: { rate: '3/m', clock } },
        rateLimit: { defaults: { clock } },
        ...extra,
      }),
    ],
    controllers: [CatalogController],
    providers: [Catalog, { provide: APP_FILTER, useClass: BreakwaterExceptionFilter }],
  });
}

describe.each(platforms)('policy decorators on %s', (platform) => {
  let app: INestApplication | undefined;
  afterEach(async () => {
    world.gate.resolve();
    world.calls = [];
    world.failures = 0;
    world.gate = deferred();
    world.entered = deferred();
    await app?.close();
    app = undefined;
  });

  it('does not count an HttpException below 500 against the breaker, nor answer it with the fallback', async () => {
    app = await start(platform);
    const server = httpServer(app);
    for (let i = 0; i < 4; i++) await request(server).get('/catalog/missing').expect(404);
    const breaker = app.get(CircuitBreakerRegistry).get('catalog');
    expect(breaker.state).toBe('closed');
    expect(breaker.snapshot().failures).toBe(0);
    await request(server).get('/catalog/broken').expect(200, 'cached:broken:Error');
    await request(server).get('/catalog/broken').expect(200, 'cached:broken:Error');
    expect(breaker.state).toBe('open');
    await request(server).get('/catalog/missing').expect(200, 'cached:missing:CircuitOpenError');
  });

  it('does the same for a decorated route, and counts 4xx when isFailure says so', async () => {
    app = await start(platform);
    const server = httpServer(app);
    await request(server).get('/catalog/route/404').expect(404);
    await request(server).get('/catalog/route/404').expect(404);
    await request(server).get('/catalog/route/ok').expect(200, 'route');
    await request(server).get('/catalog/route/500').expect(500);
    await request(server).get('/catalog/route/ok').expect(503);

    const catalog = app.get(Catalog);
    await expect(catalog.strict()).rejects.toBeInstanceOf(NotFoundException);
    await expect(catalog.strict()).rejects.toBeInstanceOf(NotFoundException);
    expect(app.get(CircuitBreakerRegistry).get('strict').state).toBe('open');
  });

  it('@Retry retries failures, not client errors, and falls back when it gives up', async () => {
    app = await start(platform);
    const catalog = app.get(Catalog);
    world.failures = 2;
    await expect(catalog.flaky()).resolves.toBe('ok');
    expect(world.calls).toEqual(['flaky', 'flaky', 'flaky']);
    world.calls = [];
    world.failures = 5;
    await expect(catalog.flaky()).resolves.toBe('gave up: flaky');
    expect(world.calls).toHaveLength(3);
    world.calls = [];
    await expect(catalog.notThere()).rejects.toBeInstanceOf(NotFoundException);
    expect(world.calls).toEqual(['notThere']);
  });

  it('composes retry outside the breaker: attempts stop once the circuit opens', async () => {
    app = await start(platform);
    const error = await app
      .get(Catalog)
      .composed()
      .catch((e: unknown) => e);
    // Two failures open the circuit; the third attempt is refused and not retried.
    expect(isCircuitOpenError(error)).toBe(true);
    expect(world.calls).toEqual(['composed', 'composed']);
  });

  it('@Timeout answers 504 through the exception filter', async () => {
    app = await start(platform);
    const res = await request(httpServer(app)).get('/catalog/slow').expect(504);
    expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
  });

  it('@Bulkhead refuses a call beyond its slots with 503 and frees the slot afterwards', async () => {
    app = await start(platform);
    const server = httpServer(app);
    const held = request(server)
      .get('/catalog/query/a')
      .then((r) => r);
    await world.entered.promise;
    const refused = await request(server).get('/catalog/query/b').expect(503);
    expect(refused.headers['retry-after']).toBeDefined();
    expect(
      isBulkheadFullError(
        await app
          .get(Catalog)
          .query('c')
          .catch((e: unknown) => e),
      ),
    ).toBe(true);
    world.gate.resolve();
    expect((await held).text).toBe('row:a');
    await request(server).get('/catalog/query/d').expect(200, 'row:d');
  });

  it('@RateLimit on a provider method limits every call, 429 at the route', async () => {
    app = await start(platform);
    const server = httpServer(app);
    await request(server).get('/catalog/quota').expect(200, 'quota');
    await request(server).get('/catalog/quota').expect(200);
    const refused = await request(server).get('/catalog/quota').expect(429);
    expect(refused.headers['retry-after']).toBe('60');
    expect(refused.body).toMatchObject({ status: 429, retryAfter: 60 });
  });

  it('enforces stacked @RateLimit on a provider method, outer first', async () => {
    app = await start(platform);
    const catalog = app.get(Catalog);
    for (let i = 0; i < 3; i++) await expect(catalog.stacked()).resolves.toBe('stacked');
    const error = await (catalog.stacked() as unknown as Promise<string>).catch((e: unknown) => e);
    expect(isRateLimitError(error) && error.message).toBe('Rate limit "shared" exceeded');
  });
});

describe('policy decorators by name', () => {
  @Injectable()
  class Named {
    @Retry('api')
    @Timeout('api')
    @Bulkhead('db')
    async one(): Promise<number> {
      world.calls.push('one');
      if (world.failures-- > 0) throw new Error('again');
      return 1;
    }

    @Bulkhead('db')
    async two(): Promise<number> {
      world.entered.resolve();
      await world.gate.promise;
      return 2;
    }
  }

  afterEach(() => {
    world.gate.resolve();
    world.gate = deferred();
    world.entered = deferred();
    world.calls = [];
    world.failures = 0;
  });

  it('resolves retries, timeouts and bulkheads from the module and shares a bulkhead by name', async () => {
    const ref = await Test.createTestingModule({
      imports: [
        BreakwaterModule.forRoot({
          retries: { api: { maxAttempts: 2, backoff: constant(0) } },
          timeouts: { api: '5s' },
          bulkheads: { db: { maxConcurrent: 1 } },
        }),
      ],
      providers: [Named],
    }).compile();
    await ref.init();
    try {
      const named = ref.get(Named);
      world.failures = 1;
      await expect(named.one()).resolves.toBe(1);
      expect(world.calls).toEqual(['one', 'one']);
      const held = named.two();
      await world.entered.promise;
      expect(isBulkheadFullError(await named.one().catch((e: unknown) => e))).toBe(true);
      world.gate.resolve();
      await expect(held).resolves.toBe(2);
    } finally {
      await ref.close();
    }
  });

  it.each([
    ['a timeout without a limit', {}, '@Timeout', 'Named.one.timeoutMs'],
    [
      'options next to a configured name',
      { timeouts: { api: '1s' }, retries: { api: {} }, bulkheads: { db: { maxConcurrent: 1 } } },
      undefined,
      undefined,
    ],
  ] as const)('names %s', async (_case, options, owner, path) => {
    let error: unknown;
    try {
      const ref = await Test.createTestingModule({
        imports: [BreakwaterModule.forRoot(options)],
        providers: [Named],
      }).compile();
      await ref.close();
    } catch (caught) {
      error = caught;
    }
    if (owner === undefined) {
      expect(error).toBeUndefined();
    } else {
      expect(isConfigError(error) && [error.message.split(':')[0], error.path]).toEqual([
        owner,
        path,
      ]);
    }
  });

  it('refuses decorator options for a name the module configures', async () => {
    @Injectable()
    class Clash {
      @Bulkhead({ name: 'db', maxConcurrent: 5 })
      run(): number {
        return 1;
      }
    }
    let error: unknown;
    try {
      await Test.createTestingModule({
        imports: [BreakwaterModule.forRoot({ bulkheads: { db: { maxConcurrent: 1 } } })],
        providers: [Clash],
      }).compile();
    } catch (caught) {
      error = caught;
    }
    expect(isConfigError(error) && error.path).toBe('Clash.run');
    expect(String(error)).toMatch(/bulkheads\.db/);
  });

  it('names a bad option of a decorator and a hook that only routes take', async () => {
    @Injectable()
    class Bad {
      @Retry({ maxAttempts: 0 })
      a(): number {
        return 1;
      }
    }
    @Injectable()
    class Keyed {
      @RateLimit({ rate: '1/s', key: () => 'k' })
      a(): number {
        return 1;
      }
    }
    for (const [type, path] of [
      [Bad, 'Bad.a.maxAttempts'],
      [Keyed, 'Keyed.a.key'],
    ] as const) {
      let error: unknown;
      try {
        await Test.createTestingModule({
          imports: [BreakwaterModule.forRoot()],
          providers: [type],
        }).compile();
      } catch (caught) {
        error = caught;
      }
      expect(isConfigError(error) && error.path).toBe(path);
    }
  });
});

describe('BreakwaterModule isGlobal', () => {
  @Injectable()
  class NeedsRegistry {
    constructor(readonly registry: CircuitBreakerRegistry) {}
  }

  it('is injectable in every module by default, and only where imported with isGlobal: false', async () => {
    @Module({ providers: [NeedsRegistry] })
    class Feature {}
    const global = await Test.createTestingModule({
      imports: [BreakwaterModule.forRoot(), Feature],
    }).compile();
    expect(global.get(NeedsRegistry).registry).toBeInstanceOf(CircuitBreakerRegistry);
    await global.close();

    await expect(
      Test.createTestingModule({
        imports: [BreakwaterModule.forRoot({ isGlobal: false }), Feature],
      }).compile(),
    ).rejects.toThrow(/CircuitBreakerRegistry/);

    const local = BreakwaterModule.forRoot({ isGlobal: false });
    @Module({ imports: [local], providers: [NeedsRegistry] })
    class Importing {}
    const ref = await Test.createTestingModule({ imports: [Importing] }).compile();
    expect(ref.get(NeedsRegistry).registry).toBeInstanceOf(CircuitBreakerRegistry);
    await ref.close();
  });
});

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}
