import 'reflect-metadata';
import { afterEach, describe, expect, it, jest } from '@jest/globals';
import { Controller, Get, Injectable, Module, type INestApplication } from '@nestjs/common';
import { APP_GUARD, Reflector } from '@nestjs/core';
import { Test } from '@nestjs/testing';
import {
  CircuitBreakerRegistry,
  RateLimiter,
  isConfigError,
  type CircuitBreaker as Breaker,
} from '@breakwater/core';
import { of } from 'rxjs';
import request from 'supertest';
import {
  BREAKWATER_OPTIONS,
  BreakwaterModule,
  CIRCUIT_BREAKER_METADATA,
  CircuitBreaker,
  InjectBreaker,
  InjectRateLimiter,
  RATE_LIMIT_METADATA,
  RETRY_METADATA,
  TIMEOUT_METADATA,
  BULKHEAD_METADATA,
  RateLimit,
  RateLimitGuard,
  SKIP_RATE_LIMIT_METADATA,
  getRateLimiterToken,
  type BreakwaterModuleOptions,
  type BreakwaterOptionsFactory,
} from '../src';
import { ManualClock, createApp, platforms, httpServer } from './helpers';

@Injectable()
class ConfigService {
  readonly values: Record<string, string> = { RATE: '2/m', FAILURES: '1' };
  get(key: string): string {
    return this.values[key]!;
  }
}

@Injectable()
class Quotes {
  constructor(
    @InjectRateLimiter('api') readonly limiter: RateLimiter,
    @InjectBreaker('quotes') readonly breaker: Breaker,
  ) {}

  @CircuitBreaker('quotes')
  async quote(fail: boolean): Promise<string> {
    if (fail) throw new Error('down');
    return 'quote';
  }
}

@Controller()
class QuoteController {
  constructor(private readonly quotes: Quotes) {}

  @RateLimit({ limiter: 'api' })
  @Get('quote')
  quote(): Promise<string> {
    return this.quotes.quote(false);
  }
}

function fromConfig(config: ConfigService): BreakwaterModuleOptions {
  return {
    breakers: { breakers: { quotes: { failureThreshold: Number(config.get('FAILURES')) } } },
    limiters: { api: { rate: config.get('RATE') as '2/m', clock: new ManualClock(0) } },
    health: { critical: ['quotes'] },
  };
}

@Injectable()
class OptionsFactory implements BreakwaterOptionsFactory {
  constructor(private readonly config: ConfigService) {}
  createBreakwaterOptions(): BreakwaterModuleOptions {
    return fromConfig(this.config);
  }
}

@Module({ providers: [ConfigService, OptionsFactory], exports: [ConfigService, OptionsFactory] })
class ConfigModule {}

const asyncVariants = [
  [
    'useFactory',
    BreakwaterModule.forRootAsync({
      imports: [ConfigModule],
      inject: [ConfigService],
      useFactory: (config: ConfigService) => Promise.resolve(fromConfig(config)),
      healthPath: '/health',
      breakerNames: ['quotes'],
      limiterNames: ['api'],
    }),
  ],
  [
    'useClass',
    BreakwaterModule.forRootAsync({
      imports: [ConfigModule],
      useClass: OptionsFactory,
      healthPath: 'health',
      breakerNames: ['quotes'],
      limiterNames: ['api'],
    }),
  ],
  [
    'useExisting',
    BreakwaterModule.forRootAsync({
      imports: [ConfigModule],
      useExisting: OptionsFactory,
      healthPath: '/health/',
      breakerNames: ['quotes'],
      limiterNames: ['api'],
    }),
  ],
] as const;

describe.each(platforms)('BreakwaterModule.forRootAsync on %s', (platform) => {
  let app: INestApplication | undefined;
  afterEach(async () => {
    await app?.close();
    app = undefined;
  });

  it.each(asyncVariants)(
    'builds the options with %s from a config service',
    async (_name, module) => {
      app = await createApp(platform, {
        imports: [module],
        controllers: [QuoteController],
        providers: [Quotes, { provide: APP_GUARD, useClass: RateLimitGuard }],
      });
      const server = httpServer(app);
      const quotes = app.get(Quotes);
      expect(quotes.limiter).toBe(app.get(getRateLimiterToken('api')));
      expect(quotes.breaker).toBe(app.get(CircuitBreakerRegistry).get('quotes'));
      await request(server).get('/quote').expect(200, 'quote');
      await request(server).get('/quote').expect(200);
      await request(server).get('/quote').expect(429);

      await expect(quotes.quote(true)).rejects.toThrow('down');
      expect(quotes.breaker.state).toBe('open');
      await request(server).get('/health/ready').expect(503);
      expect(app.get(BREAKWATER_OPTIONS)).toMatchObject({ health: { critical: ['quotes'] } });
    },
  );
});

describe('BreakwaterModule configuration errors', () => {
  async function compile(imports: unknown[], providers: unknown[] = []): Promise<unknown> {
    try {
      const ref = await Test.createTestingModule({
        imports: imports as never,
        providers: providers as never,
      }).compile();
      await ref.close();
      return undefined;
    } catch (error) {
      return error;
    }
  }

  it('rejects forRootAsync without exactly one source of options', () => {
    expect(() => BreakwaterModule.forRootAsync({})).toThrow(/exactly one of useFactory/);
    expect(() =>
      BreakwaterModule.forRootAsync({ useFactory: () => ({}), useClass: OptionsFactory }),
    ).toThrow(/exactly one/);
  });

  it('names the option at fault', async () => {
    const cases: [BreakwaterModuleOptions, string][] = [
      [{ nope: 1 } as never, 'nope'],
      [{ limiters: { api: { rate: '2/x' as never } } }, 'limiters.api.rate'],
      [{ limiters: { login: { rate: '5 per m' as never } } }, 'limiters.login.rate'],
      [
        { rateLimit: { defaults: { algorithm: 'leaky' as never } } },
        'rateLimit.defaults.algorithm',
      ],
      [{ retries: { api: { maxAttempts: 0 } } }, 'retries.api.maxAttempts'],
      [{ timeouts: { api: 'soon' } }, 'timeouts.api.timeoutMs'],
      [{ timeouts: { api: { timeoutMs: -1 } } }, 'timeouts.api.timeoutMs'],
      [{ bulkheads: { db: { maxConcurrent: 2, maxQueue: -1 } } }, 'bulkheads.db.maxQueue'],
      [{ limiters: { api: { rate: '2/m' } }, defaultLimiter: 'web' }, 'defaultLimiter'],
      [{ breakers: { defaults: { failureThreshold: -1 } } }, 'breakers.defaults.failureThreshold'],
      [
        { breakers: { breakers: { pay: { openDurationMs: 'soon' } } } },
        'breakers.breakers.pay.openDurationMs',
      ],
      [{ health: { critical: 5 as never } }, 'health.critical'],
      [{ rateLimit: { headers: { legacy: 'yes' as never } } }, 'rateLimit.headers.legacy'],
      [{ health: { path: '/he alth' } }, 'health.path'],
      [{ logger: { log: 1 } as never }, 'logger'],
    ];
    for (const [options, path] of cases) {
      const error = await compile([BreakwaterModule.forRoot(options)]);
      expect(isConfigError(error) ? error.path : error).toBe(path);
    }
  });

  it('requires healthPath for health options given by a factory', async () => {
    const error = await compile([
      BreakwaterModule.forRootAsync({ useFactory: () => ({ health: {} }) }),
    ]);
    expect(isConfigError(error) && error.path).toBe('health');
  });

  it('rejects an Observable returned by a method without a declared type', async () => {
    @Injectable()
    class Streams {
      @CircuitBreaker('streams')
      ticks() {
        return of(1);
      }
    }
    const ref = await Test.createTestingModule({
      imports: [BreakwaterModule.forRoot()],
      providers: [Streams],
    }).compile();
    await ref.init();
    try {
      await expect(ref.get(Streams).ticks()).rejects.toThrow(
        /Streams\.ticks returns an Observable but does not declare it/,
      );
    } finally {
      await ref.close();
    }
  });

  it('refuses a fallback that is not a method', async () => {
    @Injectable()
    class Broken {
      @CircuitBreaker({ fallback: 'missing' })
      run(): number {
        return 1;
      }
    }
    const error = await compile([BreakwaterModule.forRoot()], [Broken]);
    expect(isConfigError(error) && error.path).toBe('Broken.run.fallback');
  });

  it('names the route of an invalid @RateLimit()', async () => {
    @Controller()
    class Bad {
      @RateLimit('ten per minute')
      @Get('bad')
      bad(): string {
        return 'bad';
      }
    }
    let error: unknown;
    try {
      await createApp('express', { imports: [BreakwaterModule.forRoot()], controllers: [Bad] });
    } catch (caught) {
      error = caught;
    }
    expect(isConfigError(error) && error.path).toBe('Bad.bad.rate');
  });
});

describe.each(platforms)('metadata on %s', (platform) => {
  it('is read at bootstrap only, never per request or per call', async () => {
    const app = await createApp(platform, {
      imports: [
        BreakwaterModule.forRoot({
          breakers: { breakers: { quotes: {} } },
          limiters: { api: { rate: '100/m' } },
        }),
      ],
      controllers: [QuoteController],
      providers: [Quotes, { provide: APP_GUARD, useClass: RateLimitGuard }],
    });
    const ours = [
      CIRCUIT_BREAKER_METADATA,
      RATE_LIMIT_METADATA,
      SKIP_RATE_LIMIT_METADATA,
      RETRY_METADATA,
      TIMEOUT_METADATA,
      BULKHEAD_METADATA,
    ];
    const reflect = jest.spyOn(Reflect, 'getMetadata');
    const reflector = jest.spyOn(Reflector.prototype, 'getAllAndOverride');
    const get = jest.spyOn(Reflector.prototype, 'get');
    try {
      for (let i = 0; i < 3; i++) await request(httpServer(app)).get('/quote').expect(200);
      await app.get(Quotes).quote(false);
      const keys = [...reflect.mock.calls, ...reflector.mock.calls, ...get.mock.calls].map(
        (c): unknown => c[0],
      );
      expect(keys.filter((key) => ours.includes(key as string))).toEqual([]);
    } finally {
      reflect.mockRestore();
      reflector.mockRestore();
      get.mockRestore();
      await app.close();
    }
  });
});
