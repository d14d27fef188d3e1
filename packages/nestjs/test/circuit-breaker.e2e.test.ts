import 'reflect-metadata';
import { afterEach, describe, expect, it } from '@jest/globals';
import {
  Controller,
  Get,
  Inject,
  Injectable,
  Param,
  Scope,
  UseGuards,
  type CanActivate,
  type INestApplication,
} from '@nestjs/common';
import { APP_FILTER, REQUEST } from '@nestjs/core';
import { CircuitBreakerRegistry, type CircuitBreaker as Breaker } from '@breakwater/core';
import request from 'supertest';
import {
  BreakwaterExceptionFilter,
  BreakwaterModule,
  CircuitBreaker,
  InjectBreaker,
  type BreakwaterModuleOptions,
} from '../src';
import { ManualClock, createApp, platforms, httpServer } from './helpers';

const upstream = { failing: false, calls: 0 };

@Injectable()
class PlantService {
  readonly label = 'plant-service';

  @CircuitBreaker({
    name: 'plant-id',
    failureThreshold: 2,
    openDurationMs: 30_000,
    fallback: 'cached',
  })
  async identify(id: string): Promise<string> {
    upstream.calls++;
    if (upstream.failing) throw new Error('upstream down');
    return `${this.label}:${id}`;
  }

  cached(id: string, error: unknown): string {
    return `${this.label}:cached:${id}:${(error as Error).name}`;
  }

  @CircuitBreaker('weather')
  forecast(): string {
    if (upstream.failing) throw new Error('upstream down');
    return 'sunny';
  }
}

class Allow implements CanActivate {
  static calls = 0;
  canActivate(): boolean {
    Allow.calls++;
    return true;
  }
}

@Controller('plants')
class PlantController {
  constructor(private readonly plants: PlantService) {}

  @Get('weather')
  weather(): Promise<string> {
    return this.plants.forecast() as unknown as Promise<string>;
  }

  @Get(':id')
  identify(@Param('id') id: string): Promise<string> {
    return this.plants.identify(id);
  }

  @CircuitBreaker({ name: 'direct', failureThreshold: 1, openDurationMs: 20_000 })
  @UseGuards(Allow)
  @Get('direct/:id')
  direct(@Param('id') id: string): string {
    if (upstream.failing) throw new Error('upstream down');
    return `direct:${id}`;
  }
}

function moduleFor(clock: ManualClock, extra: BreakwaterModuleOptions = {}) {
  return {
    imports: [BreakwaterModule.forRoot({ breakers: { clock }, ...extra })],
    controllers: [PlantController],
    providers: [PlantService, Allow, { provide: APP_FILTER, useClass: BreakwaterExceptionFilter }],
  };
}

describe.each(platforms)('@CircuitBreaker on %s', (platform) => {
  let app: INestApplication | undefined;
  afterEach(async () => {
    upstream.failing = false;
    upstream.calls = 0;
    await app?.close();
    app = undefined;
  });

  it('opens a service method after failures and serves its fallback with the same this and arguments', async () => {
    const clock = new ManualClock();
    app = await createApp(platform, moduleFor(clock));
    const server = httpServer(app);
    await request(server).get('/plants/rose').expect(200, 'plant-service:rose');

    upstream.failing = true;
    await request(server).get('/plants/rose').expect(200, 'plant-service:cached:rose:Error');
    await request(server).get('/plants/rose').expect(200, 'plant-service:cached:rose:Error');
    const breaker = app.get(CircuitBreakerRegistry).get('plant-id');
    expect(breaker.state).toBe('open');

    const callsWhileOpen = upstream.calls;
    await request(server)
      .get('/plants/tulip')
      .expect(200, 'plant-service:cached:tulip:CircuitOpenError');
    expect(upstream.calls).toBe(callsWhileOpen);

    upstream.failing = false;
    clock.advance(30_000);
    await request(server).get('/plants/tulip').expect(200, 'plant-service:tulip');
    expect(breaker.state).toBe('closed');
  });

  it('answers 503 with Retry-After from a decorated controller route, guards still applied', async () => {
    const clock = new ManualClock();
    app = await createApp(platform, moduleFor(clock));
    const server = httpServer(app);
    Allow.calls = 0;
    await request(server).get('/plants/direct/a').expect(200, 'direct:a');
    expect(Allow.calls).toBe(1);

    upstream.failing = true;
    await request(server).get('/plants/direct/a').expect(500);
    const res = await request(server).get('/plants/direct/a').expect(503);
    expect(res.headers['retry-after']).toBe('20');
    expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(res.body).toMatchObject({ status: 503, breaker: 'direct', retryAfter: 20 });
    expect(JSON.stringify(res.body)).not.toContain('upstream down');
    expect(Allow.calls).toBe(3);
  });

  it('turns a synchronous method into an asynchronous one', async () => {
    app = await createApp(platform, moduleFor(new ManualClock()));
    const service = app.get(PlantService);
    const result = service.forecast() as unknown;
    expect(result).toBeInstanceOf(Promise);
    await expect(result).resolves.toBe('sunny');
    await request(httpServer(app)).get('/plants/weather').expect(200, 'sunny');
  });

  it('merges module per-breaker options over the decorator options', async () => {
    const clock = new ManualClock();
    app = await createApp(platform, {
      ...moduleFor(clock),
      imports: [
        BreakwaterModule.forRoot({
          breakers: { clock, breakers: { 'plant-id': { failureThreshold: 4 } } },
        }),
      ],
    });
    upstream.failing = true;
    const service = app.get(PlantService);
    for (let i = 0; i < 3; i++) await service.identify('x');
    const breaker = app.get(CircuitBreakerRegistry).get('plant-id');
    expect(breaker.state).toBe('closed');
    await service.identify('x');
    expect(breaker.state).toBe('open');
  });
});

describe('@CircuitBreaker bindings', () => {
  it('wraps each method once and keeps two applications apart', async () => {
    const descriptor = (): unknown =>
      Object.getOwnPropertyDescriptor(PlantService.prototype, 'identify')?.value;
    const first = await createApp('express', moduleFor(new ManualClock()));
    const wrapper = descriptor();
    const second = await createApp('fastify', moduleFor(new ManualClock()));
    expect(descriptor()).toBe(wrapper);
    try {
      await first.get(PlantService).identify('a');
      await second.get(PlantService).identify('b');
      await second.get(PlantService).identify('c');
      const one = first.get(CircuitBreakerRegistry).get('plant-id').snapshot();
      const two = second.get(CircuitBreakerRegistry).get('plant-id').snapshot();
      expect(one.calls).toBe(1);
      expect(two.calls).toBe(2);
    } finally {
      await second.close();
      await first.close();
    }
    // Outside any application the class behaves as if undecorated.
    expect(new PlantService().forecast()).toBe('sunny');
  });

  it('provides @InjectBreaker() breakers created with the decorator options', async () => {
    @Injectable()
    class Consumer {
      constructor(@InjectBreaker('plant-id') readonly breaker: Breaker) {}
    }
    const app = await createApp('express', {
      imports: [
        BreakwaterModule.forRoot({
          breakers: { breakers: { 'plant-id': { openDurationMs: 5_000 } } },
        }),
      ],
      providers: [PlantService, Consumer],
    });
    try {
      const breaker = app.get(Consumer).breaker;
      expect(breaker).toBe(app.get(CircuitBreakerRegistry).get('plant-id'));
      upstream.failing = true;
      await app.get(PlantService).identify('a');
      await app.get(PlantService).identify('a');
      // failureThreshold 2 came from the decorator; openDurationMs from the module.
      expect(breaker.snapshot()).toMatchObject({ state: 'open' });
      expect(breaker.retryAfterMs).toBeLessThanOrEqual(5_000);
    } finally {
      upstream.failing = false;
      await app.close();
    }
  });
});

describe.each(platforms)('request-scoped providers on %s', (platform) => {
  /** Holds the first request inside the method until the second one has been answered. */
  const gate = { entered: deferred(), release: deferred() };

  @Injectable({ scope: Scope.REQUEST })
  class UserService {
    constructor(
      @Inject(REQUEST) private readonly req: { headers: Record<string, string | undefined> },
    ) {}

    @CircuitBreaker({ name: 'profile', failureThreshold: 2, fallback: 'anonymous' })
    async profile(): Promise<string> {
      if (this.req.headers['x-hold'] === '1') {
        gate.entered.resolve();
        await gate.release.promise;
      }
      if (this.req.headers['x-fail'] === '1') throw new Error('boom');
      return `user:${this.req.headers['x-user']}`;
    }

    anonymous(error: unknown): string {
      return `anonymous:${this.req.headers['x-user']}:${(error as Error).name}`;
    }
  }

  @Controller('me')
  class MeController {
    constructor(private readonly users: UserService) {}
    @Get()
    me(): Promise<string> {
      return this.users.profile();
    }
  }

  it('calls each request-scoped instance with its own this and one shared breaker', async () => {
    const app = await createApp(platform, {
      imports: [BreakwaterModule.forRoot()],
      controllers: [MeController],
      providers: [UserService],
    });
    try {
      const server = httpServer(app);
      const held = request(server)
        .get('/me')
        .set('x-user', 'ann')
        .set('x-hold', '1')
        .then((r) => r);
      await gate.entered.promise;
      await request(server).get('/me').set('x-user', 'bob').expect(200, 'user:bob');
      gate.release.resolve();
      expect((await held).text).toBe('user:ann');

      await request(server)
        .get('/me')
        .set('x-user', 'cy')
        .set('x-fail', '1')
        .expect(200, 'anonymous:cy:Error');
      await request(server)
        .get('/me')
        .set('x-user', 'cy')
        .set('x-fail', '1')
        .expect(200, 'anonymous:cy:Error');
      await request(server)
        .get('/me')
        .set('x-user', 'dee')
        .expect(200, 'anonymous:dee:CircuitOpenError');
      expect(app.get(CircuitBreakerRegistry).get('profile').state).toBe('open');
    } finally {
      gate.entered = deferred();
      gate.release = deferred();
      await app.close();
    }
  });
});

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}
