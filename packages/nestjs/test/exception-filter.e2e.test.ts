import 'reflect-metadata';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { Controller, Get, NotFoundException, type INestApplication } from '@nestjs/common';
import {
  BulkheadFullError,
  CircuitOpenError,
  RateLimitError,
  TimeoutError,
} from '@breakwater/core';
import request from 'supertest';
import { BreakwaterExceptionFilter } from '../src';
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
