import 'reflect-metadata';
import { afterEach, describe, expect, it } from '@jest/globals';
import {
  Controller,
  Get,
  Injectable,
  UseGuards,
  type ExecutionContext,
  type INestApplication,
} from '@nestjs/common';
import { APP_FILTER, APP_GUARD } from '@nestjs/core';
import {
  RateLimiter,
  type RateLimitDecision,
  type RateLimitRule,
  type RateLimitStore,
} from '@breakwater/core';
import request from 'supertest';
import {
  BreakwaterExceptionFilter,
  BreakwaterModule,
  InjectRateLimiter,
  RateLimit,
  RateLimitGuard,
  SkipRateLimit,
  type BreakwaterModuleOptions,
} from '../src';
import { ManualClock, createApp, platforms, type PlatformName, httpServer } from './helpers';

@Controller()
class ApiController {
  @Get('plants')
  plants(): string {
    return 'plants';
  }

  @RateLimit('2/m')
  @Get('login')
  login(): string {
    return 'login';
  }

  @RateLimit({ limiter: 'api', key: (req) => String(req.headers['x-api-key'] ?? 'none') })
  @Get('keyed')
  keyed(): string {
    return 'keyed';
  }

  @SkipRateLimit()
  @Get('free')
  free(): string {
    return 'free';
  }
}

@SkipRateLimit()
@Controller('internal')
class InternalController {
  @Get('a')
  a(): string {
    return 'a';
  }

  @SkipRateLimit(false)
  @RateLimit({ rate: '1/m', name: 'internal-b' })
  @Get('b')
  b(): string {
    return 'b';
  }
}

function options(clock: ManualClock, extra: BreakwaterModuleOptions = {}): BreakwaterModuleOptions {
  return {
    limiters: { api: { rate: '3/m', clock } },
    defaultLimiter: 'api',
    rateLimit: { defaults: { clock } },
    ...extra,
  };
}

async function start(
  platform: PlatformName,
  clock: ManualClock,
  extra: BreakwaterModuleOptions = {},
  filter = true,
): Promise<INestApplication> {
  return createApp(platform, {
    imports: [BreakwaterModule.forRoot(options(clock, extra))],
    controllers: [ApiController, InternalController],
    providers: [
      { provide: APP_GUARD, useClass: RateLimitGuard },
      ...(filter ? [{ provide: APP_FILTER, useClass: BreakwaterExceptionFilter }] : []),
    ],
  });
}

describe.each(platforms)('RateLimitGuard on %s', (platform) => {
  let app: INestApplication | undefined;
  afterEach(async () => {
    await app?.close();
    app = undefined;
  });

  it('applies the default limiter with the RateLimit headers, then answers 429', async () => {
    const clock = new ManualClock(0);
    app = await start(platform, clock);
    const server = httpServer(app);
    const first = await request(server).get('/plants').expect(200, 'plants');
    expect(first.headers['ratelimit-policy']).toBe('"api";q=3;w=60');
    expect(first.headers.ratelimit).toBe('"api";r=2;t=60');
    await request(server).get('/plants').expect(200);
    await request(server).get('/plants').expect(200);
    const refused = await request(server).get('/plants').expect(429);
    expect(refused.headers['retry-after']).toBe('60');
    expect(refused.headers.ratelimit).toBe('"api";r=0;t=60');
    expect(refused.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(refused.body).toMatchObject({ status: 429, limiter: 'api', retryAfter: 60 });

    clock.advance(60_000);
    await request(server).get('/plants').expect(200);
  });

  it('counts per client address honouring trust proxy', async () => {
    app = await start(platform, new ManualClock(0));
    const server = httpServer(app);
    for (let i = 0; i < 3; i++) {
      await request(server).get('/plants').set('x-forwarded-for', '203.0.113.1').expect(200);
    }
    await request(server).get('/plants').set('x-forwarded-for', '203.0.113.1').expect(429);
    await request(server).get('/plants').set('x-forwarded-for', '203.0.113.2').expect(200);
  });

  it('gives a @RateLimit(rate) route its own limiter and honours key hooks', async () => {
    app = await start(platform, new ManualClock(0));
    const server = httpServer(app);
    const ok = await request(server).get('/login').expect(200);
    expect(ok.headers['ratelimit-policy']).toBe('"ApiController.login";q=2;w=60');
    await request(server).get('/login').expect(200);
    await request(server).get('/login').expect(429);
    // The default limiter is untouched by /login.
    expect((await request(server).get('/plants')).headers.ratelimit).toBe('"api";r=2;t=60');

    for (let i = 0; i < 3; i++)
      await request(server).get('/keyed').set('x-api-key', 'k1').expect(200);
    await request(server).get('/keyed').set('x-api-key', 'k1').expect(429);
    await request(server).get('/keyed').set('x-api-key', 'k2').expect(200);
  });

  it('skips @SkipRateLimit() routes and controllers, and @SkipRateLimit(false) re-enables', async () => {
    app = await start(platform, new ManualClock(0));
    const server = httpServer(app);
    for (let i = 0; i < 5; i++) {
      const res = await request(server).get('/free').expect(200);
      expect(res.headers.ratelimit).toBeUndefined();
      await request(server).get('/internal/a').expect(200);
    }
    await request(server).get('/internal/b').expect(200);
    await request(server).get('/internal/b').expect(429);
  });

  it('answers 429 problem+json without the exception filter too', async () => {
    app = await start(platform, new ManualClock(0), {}, false);
    const server = httpServer(app);
    await request(server).get('/login').expect(200);
    await request(server).get('/login').expect(200);
    const refused = await request(server).get('/login').expect(429);
    expect(refused.headers['retry-after']).toBe('60');
    expect(refused.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(refused.body).toMatchObject({ status: 429, limiter: 'ApiController.login' });
  });

  it('never answers 500 when the store is down', async () => {
    const down: RateLimitStore = {
      consume: (): Promise<RateLimitDecision> => Promise.reject(new Error('ECONNREFUSED')),
      reset: (_key: string, _rule: RateLimitRule): Promise<void> =>
        Promise.reject(new Error('ECONNREFUSED')),
    };
    const clock = new ManualClock(0);
    app = await start(platform, clock, {
      limiters: { api: { rate: '3/m', store: down, onStoreFailure: 'allow', clock } },
    });
    const server = httpServer(app);
    for (let i = 0; i < 6; i++) await request(server).get('/plants').expect(200);
  });
});

describe.each(platforms)('RateLimitGuard per route on %s', (platform) => {
  @Injectable()
  class ApiKeyGuard extends RateLimitGuard {
    protected override getKey(context: ExecutionContext): string {
      return String(
        context.switchToHttp().getRequest<{ headers: Record<string, string> }>().headers[
          'x-tenant'
        ],
      );
    }
  }

  @Injectable()
  class Quota {
    constructor(@InjectRateLimiter('api') readonly limiter: RateLimiter) {}
  }

  @Controller('tenant')
  @UseGuards(ApiKeyGuard)
  class TenantController {
    @RateLimit({ limiter: 'api' })
    @Get()
    get(): string {
      return 'ok';
    }
  }

  @Injectable()
  class BrokenGuard extends RateLimitGuard {
    protected override getRequestResponse(): never {
      throw new Error('hook failed');
    }
  }

  @Controller('open')
  class OpenController {
    @RateLimit({ limiter: 'api' })
    @Get()
    get(): string {
      return 'ok';
    }
  }

  it('lets a request through when getRequestResponse() throws', async () => {
    const app = await createApp(platform, {
      imports: [
        BreakwaterModule.forRoot({ limiters: { api: { rate: '1/m', clock: new ManualClock(0) } } }),
      ],
      controllers: [OpenController],
      providers: [{ provide: APP_GUARD, useClass: BrokenGuard }],
    });
    try {
      for (let i = 0; i < 3; i++) await request(httpServer(app)).get('/open').expect(200);
    } finally {
      await app.close();
    }
  });

  it('resolves keys through an overridden getKey() and shares the named limiter', async () => {
    const app = await createApp(platform, {
      imports: [
        BreakwaterModule.forRoot({ limiters: { api: { rate: '1/m', clock: new ManualClock(0) } } }),
      ],
      controllers: [TenantController],
      providers: [Quota],
    });
    try {
      const server = httpServer(app);
      await request(server).get('/tenant').set('x-tenant', 'a').expect(200);
      await request(server).get('/tenant').set('x-tenant', 'a').expect(429);
      await request(server).get('/tenant').set('x-tenant', 'b').expect(200);
      expect((await app.get(Quota).limiter.consume('b')).allowed).toBe(false);
    } finally {
      await app.close();
    }
  });
});

describe.each(platforms)('stacked rate limits on %s', (platform) => {
  @Controller('stacked')
  class StackedController {
    @RateLimit({ name: 'short', rate: '2/s' })
    @RateLimit({ name: 'long', rate: '3/m' })
    @Get('two')
    two(): string {
      return 'two';
    }

    @RateLimit([{ limiter: 'api' }, { name: 'burst', rate: '1/s' }])
    @SkipRateLimit('burst')
    @Get('skipped')
    skipped(): string {
      return 'skipped';
    }

    @SkipRateLimit('api')
    @Get('no-default')
    noDefault(): string {
      return 'no-default';
    }
  }

  let app: INestApplication | undefined;
  afterEach(async () => {
    await app?.close();
    app = undefined;
  });

  async function startStacked(clock: ManualClock): Promise<INestApplication> {
    return createApp(platform, {
      imports: [
        BreakwaterModule.forRoot({
          limiters: { api: { rate: '5/m', clock } },
          defaultLimiter: 'api',
          rateLimit: { defaults: { clock }, headers: { legacy: true } },
        }),
      ],
      controllers: [StackedController],
      providers: [{ provide: APP_GUARD, useClass: RateLimitGuard }],
    });
  }

  it('enforces every limit and lists each in the draft-11 headers', async () => {
    const clock = new ManualClock(0);
    app = await startStacked(clock);
    const server = httpServer(app);
    const first = await request(server).get('/stacked/two').expect(200);
    expect(first.headers['ratelimit-policy']).toBe('"short";q=2;w=1, "long";q=3;w=60');
    expect(first.headers.ratelimit).toBe('"short";r=1;t=1, "long";r=2;t=60');
    // The legacy trio has room for one limiter: the one with the fewest requests left.
    expect(first.headers['x-ratelimit-limit']).toBe('2');
    expect(first.headers['x-ratelimit-remaining']).toBe('1');

    await request(server).get('/stacked/two').expect(200);
    const short = await request(server).get('/stacked/two').expect(429);
    expect(short.headers['retry-after']).toBe('1');
    expect(short.body).toMatchObject({ limiter: 'short' });
    // Refused by the first limit, the request did not count against the second.
    expect(short.headers.ratelimit).toBe('"short";r=0;t=1');

    clock.advance(1_000);
    const third = await request(server).get('/stacked/two').expect(200);
    expect(third.headers.ratelimit).toBe('"short";r=1;t=1, "long";r=0;t=59');
    clock.advance(1_000);
    const long = await request(server).get('/stacked/two').expect(429);
    expect(long.body).toMatchObject({ limiter: 'long' });
    expect(long.headers['retry-after']).toBe('58');
    expect(long.headers['ratelimit-policy']).toBe('"short";q=2;w=1, "long";q=3;w=60');
  });

  it("@SkipRateLimit('name') skips that limit only, the default limiter included", async () => {
    app = await startStacked(new ManualClock(0));
    const server = httpServer(app);
    for (let i = 0; i < 5; i++) {
      const res = await request(server).get('/stacked/skipped').expect(200);
      expect(res.headers['ratelimit-policy']).toBe('"api";q=5;w=60');
    }
    await request(server).get('/stacked/skipped').expect(429);
    for (let i = 0; i < 7; i++) {
      const res = await request(server).get('/stacked/no-default').expect(200);
      expect(res.headers.ratelimit).toBeUndefined();
    }
  });
});
