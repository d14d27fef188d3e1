import 'reflect-metadata';
import { afterEach, describe, expect, it } from '@jest/globals';
import { Controller, Get, type INestApplication } from '@nestjs/common';
import { APP_GUARD } from '@nestjs/core';
import { ThrottlerGuard, ThrottlerModule } from '@nestjs/throttler';
import { MemoryRateLimitStore, type RateLimitStore } from '@breakwater/core';
import request from 'supertest';
import { BreakwaterThrottlerStorage } from '../src/throttler';
import { ManualClock, createApp, platforms, type PlatformName, httpServer } from './helpers';

@Controller()
class HelloController {
  @Get('hello')
  hello(): string {
    return 'hello';
  }
}

async function start(
  platform: PlatformName,
  storage: BreakwaterThrottlerStorage,
): Promise<INestApplication> {
  return createApp(platform, {
    imports: [ThrottlerModule.forRoot({ throttlers: [{ ttl: 60_000, limit: 2 }], storage })],
    controllers: [HelloController],
    providers: [{ provide: APP_GUARD, useClass: ThrottlerGuard }],
  });
}

describe.each(platforms)('@nestjs/throttler on BreakwaterThrottlerStorage (%s)', (platform) => {
  let app: INestApplication | undefined;
  afterEach(async () => {
    await app?.close();
    app = undefined;
  });

  it('throttles with the storage counts and headers', async () => {
    const clock = new ManualClock(0);
    const storage = new BreakwaterThrottlerStorage({
      clock,
      store: new MemoryRateLimitStore({ clock }),
    });
    app = await start(platform, storage);
    const server = httpServer(app);
    const first = await request(server).get('/hello').expect(200, 'hello');
    expect(first.headers['x-ratelimit-limit']).toBe('2');
    expect(first.headers['x-ratelimit-remaining']).toBe('1');
    expect(first.headers['x-ratelimit-reset']).toBe('60');
    await request(server).get('/hello').expect(200);
    const refused = await request(server).get('/hello').expect(429);
    expect(refused.headers['retry-after']).toBe('60');
    clock.advance(120_000);
    await request(server).get('/hello').expect(200);
    await storage.close();
  });

  it('keeps serving when the store is down', async () => {
    const down: RateLimitStore = {
      consume: () => Promise.reject(new Error('ECONNREFUSED')),
      reset: () => Promise.resolve(),
    };
    const storage = new BreakwaterThrottlerStorage({ store: down, clock: new ManualClock(0) });
    app = await start(platform, storage);
    const server = httpServer(app);
    await request(server).get('/hello').expect(200);
    await request(server).get('/hello').expect(200);
    // The fallback store still enforces the limit.
    await request(server).get('/hello').expect(429);
    expect(storage.health().status).toBe('warn');
    await storage.close();
  });
});
