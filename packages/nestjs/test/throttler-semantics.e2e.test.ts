import 'reflect-metadata';
import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { Controller, Get, type INestApplication } from '@nestjs/common';
import { APP_GUARD } from '@nestjs/core';
import {
  ThrottlerGuard,
  ThrottlerModule,
  ThrottlerStorageService,
  type ThrottlerOptions,
  type ThrottlerStorage,
} from '@nestjs/throttler';
import request from 'supertest';
import { BreakwaterThrottlerStorage } from '../src/throttler';
import { createApp, httpServer, platforms, type PlatformName } from './helpers';

/**
 * The same scenarios through the real ThrottlerGuard, once on @nestjs/throttler's own in-memory
 * storage and once on ours (in memory, and protecting a storage that is down or hung): every
 * status and rate-limit header must be the same. Only `Date` is faked: both storages read it.
 */

@Controller()
class HelloController {
  @Get('hello')
  hello(): string {
    return 'hello';
  }
}

/** A step: move the clock by `advance` ms, then send one request. */
type Step = { advance: number };
interface Scenario {
  name: string;
  throttlers: ThrottlerOptions[];
  steps: Step[];
  /** The statuses the throttler's own storage gives, written out. */
  statuses: number[];
}

const every = (ms: number, count: number): Step[] =>
  Array.from({ length: count }, () => ({ advance: ms }));

const scenarios: Scenario[] = [
  {
    // Across a clock-aligned window edge: a window aligned to the clock would let 6 through.
    name: 'a window starts at the first hit, not at a clock edge',
    throttlers: [{ ttl: 2_000, limit: 3 }],
    steps: [{ advance: 1_700 }, ...every(100, 5)],
    statuses: [200, 200, 200, 429, 429, 429],
  },
  {
    name: 'a blockDuration shorter than ttl ends the block early, with a fresh count',
    throttlers: [{ ttl: 10_000, limit: 2, blockDuration: 1_000 }],
    steps: [{ advance: 0 }, ...every(100, 2), { advance: 1_000 }, ...every(100, 2)],
    statuses: [200, 200, 429, 200, 200, 429],
  },
  {
    // Without a block, the fifth request is refused: the hit of 600 ms still counts.
    name: 'without a block, each hit expires ttl after it was counted',
    throttlers: [{ ttl: 1_000, limit: 2, blockDuration: 0 }],
    steps: [{ advance: 0 }, { advance: 600 }, { advance: 100 }, { advance: 350 }, { advance: 0 }],
    statuses: [200, 200, 429, 200, 429],
  },
  {
    name: 'several named throttlers, each with its own headers',
    throttlers: [
      { name: 'short', ttl: 1_000, limit: 2 },
      { name: 'long', ttl: 60_000, limit: 3 },
    ],
    steps: [{ advance: 0 }, ...every(100, 2), { advance: 1_000 }, ...every(100, 2)],
    statuses: [200, 200, 429, 200, 429, 429],
  },
];

type Outcome = { status: number; headers: Record<string, string> };

async function run(
  platform: PlatformName,
  scenario: Scenario,
  storage: ThrottlerStorage,
): Promise<Outcome[]> {
  jest.setSystemTime(10_000_000);
  const app: INestApplication = await createApp(platform, {
    imports: [ThrottlerModule.forRoot({ throttlers: scenario.throttlers, storage })],
    controllers: [HelloController],
    providers: [{ provide: APP_GUARD, useClass: ThrottlerGuard }],
  });
  try {
    const outcomes: Outcome[] = [];
    for (const step of scenario.steps) {
      jest.setSystemTime(Date.now() + step.advance);
      const res = await request(httpServer(app)).get('/hello');
      const headers: Record<string, string> = {};
      for (const [name, value] of Object.entries(res.headers)) {
        if (/^(x-ratelimit|retry-after)/.test(name)) headers[name] = String(value);
      }
      outcomes.push({ status: res.status, headers });
    }
    return outcomes;
  } finally {
    await app.close();
  }
}

/** A storage that is down: every call fails at once. */
const down: ThrottlerStorage = {
  increment: () => Promise.reject(new Error('ECONNREFUSED')),
};
/** A storage that is hung: calls never settle. */
const hung: ThrottlerStorage = {
  increment: () => new Promise(() => undefined),
};

describe.each(platforms)(
  'BreakwaterThrottlerStorage next to ThrottlerStorageService on %s',
  (platform) => {
    beforeAll(() => {
      jest.useFakeTimers({
        doNotFake: [
          'hrtime',
          'nextTick',
          'performance',
          'queueMicrotask',
          'setImmediate',
          'clearImmediate',
          'setInterval',
          'clearInterval',
          'setTimeout',
          'clearTimeout',
        ],
      });
    });
    afterAll(() => {
      jest.useRealTimers();
    });

    it.each(scenarios)('$name', async (scenario) => {
      const theirs = await run(platform, scenario, new ThrottlerStorageService());
      expect(theirs.map((o) => o.status)).toEqual(scenario.statuses);

      const ours = await run(platform, scenario, new BreakwaterThrottlerStorage());
      expect(ours).toEqual(theirs);

      // Protecting a storage that works changes nothing.
      const healthy = new BreakwaterThrottlerStorage({ storage: new ThrottlerStorageService() });
      expect(await run(platform, scenario, healthy)).toEqual(theirs);
      expect(healthy.health()).toMatchObject({ status: 'pass', store: 'primary' });
    });

    it.each([
      ['down', down],
      ['hung', hung],
    ])('keeps the same answers from memory while the storage is %s', async (_name, storage) => {
      const scenario = scenarios[0]!;
      const theirs = await run(platform, scenario, new ThrottlerStorageService());
      const protectedStorage = new BreakwaterThrottlerStorage({ storage, storeTimeoutMs: 20 });
      expect(await run(platform, scenario, protectedStorage)).toEqual(theirs);
      expect(protectedStorage.health()).toMatchObject({
        status: 'warn',
        store: 'fallback',
        breaker: 'open',
      });
    });

    it('fails open or closed while the storage is down, as onStoreFailure says', async () => {
      const scenario = scenarios[0]!;
      const allow = await run(
        platform,
        scenario,
        new BreakwaterThrottlerStorage({ storage: down, onStoreFailure: 'allow' }),
      );
      expect(allow.map((o) => o.status)).toEqual([200, 200, 200, 200, 200, 200]);
      const deny = await run(
        platform,
        scenario,
        new BreakwaterThrottlerStorage({ storage: down, onStoreFailure: 'deny' }),
      );
      expect(deny.map((o) => o.status)).toEqual([429, 429, 429, 429, 429, 429]);
    });
  },
);
