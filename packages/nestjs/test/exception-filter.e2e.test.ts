import 'reflect-metadata';
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import {
  Catch,
  Controller,
  Get,
  HttpException,
  NotFoundException,
  type ArgumentsHost,
  type ExceptionFilter,
  type INestApplication,
} from '@nestjs/common';
import { APP_FILTER, APP_INTERCEPTOR } from '@nestjs/core';
import {
  BulkheadFullError,
  CircuitOpenError,
  ConcurrencyLimitError,
  RateLimitError,
  TimeoutError,
} from '@breakwater/core';
import request from 'supertest';
import { BreakwaterErrorsInterceptor, BreakwaterExceptionFilter } from '../src';
import { createApp, httpServer, platforms } from './helpers';

@Controller('fail')
class FailController {
  @Get('open')
  open(): never {
    throw CircuitOpenError.create('payments', 2_500);
  }
  @Get('timeout')
  timeout(): never {
    throw new TimeoutError(2_000);
  }
  @Get('bulkhead')
  bulkhead(): never {
    throw new BulkheadFullError(10, 0);
  }
  @Get('overloaded')
  overloaded(): never {
    throw ConcurrencyLimitError.create('plant-db', 8, 1_500);
  }
  @Get('limited')
  limited(): never {
    throw new RateLimitError(30_000, 10, 0, 'quota');
  }
  @Get('other')
  other(): never {
    throw new Error('secret detail');
  }
  @Get('missing')
  missing(): never {
    throw new NotFoundException();
  }
}

describe.each(platforms)('BreakwaterExceptionFilter on %s', (platform) => {
  let app: INestApplication;
  beforeAll(async () => {
    app = await createApp(platform, { controllers: [FailController] }, (a) =>
      a.useGlobalFilters(new BreakwaterExceptionFilter()),
    );
  });
  afterAll(() => app.close());

  it.each([
    ['open', 503, '3', { breaker: 'payments' }],
    ['timeout', 504, undefined, { title: 'Gateway Timeout' }],
    ['bulkhead', 503, '1', { title: 'Service Unavailable' }],
    ['overloaded', 503, '2', { title: 'Service Unavailable' }],
    ['limited', 429, '30', { retryAfter: 30 }],
  ])('answers %s with %i problem+json', async (path, status, retryAfter, body) => {
    const res = await request(httpServer(app)).get(`/fail/${path}`).expect(status);
    expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(res.headers['retry-after']).toBe(retryAfter);
    expect(res.body).toMatchObject({ status, ...body });
  });

  it('leaves other errors to Nest', async () => {
    const res = await request(httpServer(app)).get('/fail/other').expect(500);
    expect(res.text).not.toContain('secret detail');
    await request(httpServer(app)).get('/fail/missing').expect(404);
  });
});

/** A typical catch-all filter: HttpException status, else 500. */
@Catch()
class CatchAllFilter implements ExceptionFilter {
  catch(exception: unknown, host: ArgumentsHost): void {
    const status = exception instanceof HttpException ? exception.getStatus() : 500;
    const res = host.switchToHttp().getResponse<{
      status(code: number): { send(body: unknown): void };
    }>();
    res.status(status).send({ caught: status });
  }
}

describe.each(platforms)(
  'BreakwaterExceptionFilter next to a catch-all filter on %s',
  (platform) => {
    let app: INestApplication | undefined;
    afterEach(async () => {
      await app?.close();
      app = undefined;
    });

    it('loses Breakwater errors to a catch-all filter registered after it', async () => {
      app = await createApp(platform, { controllers: [FailController] }, (a) =>
        a.useGlobalFilters(new BreakwaterExceptionFilter(), new CatchAllFilter()),
      );
      await request(httpServer(app)).get('/fail/open').expect(500, { caught: 500 });
    });

    it('answers when registered after the catch-all filter', async () => {
      app = await createApp(platform, { controllers: [FailController] }, (a) =>
        a.useGlobalFilters(new CatchAllFilter(), new BreakwaterExceptionFilter()),
      );
      const res = await request(httpServer(app)).get('/fail/open').expect(503);
      expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
      await request(httpServer(app)).get('/fail/missing').expect(404, { caught: 404 });
    });

    it('holds in any order with BreakwaterErrorsInterceptor', async () => {
      app = await createApp(platform, { controllers: [FailController] }, (a) => {
        a.useGlobalFilters(new BreakwaterExceptionFilter(), new CatchAllFilter());
        a.useGlobalInterceptors(new BreakwaterErrorsInterceptor());
      });
      const server = httpServer(app);
      const open = await request(server).get('/fail/open').expect(503, { caught: 503 });
      expect(open.headers['retry-after']).toBe('3');
      await request(server).get('/fail/timeout').expect(504, { caught: 504 });
      const limited = await request(server).get('/fail/limited').expect(429, { caught: 429 });
      expect(limited.headers['retry-after']).toBe('30');
      await request(server).get('/fail/other').expect(500, { caught: 500 });
    });

    it('still answers problem+json through the interceptor with only Breakwater filters', async () => {
      app = await createApp(platform, {
        controllers: [FailController],
        providers: [
          { provide: APP_INTERCEPTOR, useClass: BreakwaterErrorsInterceptor },
          { provide: APP_FILTER, useClass: BreakwaterExceptionFilter },
        ],
      });
      const res = await request(httpServer(app)).get('/fail/bulkhead').expect(503);
      expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
      expect(res.headers['retry-after']).toBe('1');
      expect(res.body).toMatchObject({ status: 503, title: 'Service Unavailable' });
    });

    it('answers without any filter: Nest writes the HttpException', async () => {
      app = await createApp(platform, { controllers: [FailController] }, (a) =>
        a.useGlobalInterceptors(new BreakwaterErrorsInterceptor()),
      );
      const res = await request(httpServer(app)).get('/fail/open').expect(503);
      expect(res.body).toMatchObject({ status: 503, breaker: 'payments' });
      expect(res.headers['retry-after']).toBe('3');
    });
  },
);
