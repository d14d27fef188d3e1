/**
 * `--demo`: the story of a Redis outage, scripted against a private redis-server this process
 * starts, kills (SIGKILL) and restarts: requests limited through Redis, then from memory while
 * Redis is down (health `warn`), then through Redis again (health `pass`).
 */
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  hasRedisServer,
  startRedisServer,
  type RedisServerHandle,
} from '../../../test/redis-server';
import { clientKey, createApp, type RateLimitedApp } from './app';
import { line, field, stdoutLogger } from './output';
import { connectRedis, type RedisConnection } from './redis';
import { closeServer, listen } from './server';

const API_KEY = 'demo';
const RATE = '5/m';
/** Open time of the store's circuit: short, so that the return to Redis shows quickly. */
const STORE_OPEN_MS = 1_000;
/** Requests per step: the limit and two more, so that each step ends refused. */
const REQUESTS = 7;
const WAIT_LIMIT_MS = 15_000;

/**
 * Runs the scripted demo. Resolves `true` when the story went as told, `false` when a step did
 * not happen in time (the reason is printed on stderr); without redis-server it says so and
 * resolves `true`.
 */
export async function runDemo(): Promise<boolean> {
  if (!hasRedisServer()) {
    line('redis-server is not on the PATH: the demo needs one to start, kill and restart.');
    line('Install it (apt-get install redis-server, brew install redis) and run it again,');
    line('or run `pnpm start` against a Redis of your own (see README.md). Nothing to do.');
    return true;
  }

  const started = performance.now();
  const at = (): string => `+${((performance.now() - started) / 1_000).toFixed(2)}s  `;
  const redisServer = await startRedisServer();
  let redis: RedisConnection | undefined;
  let api: RateLimitedApp | undefined;
  let server: Server | undefined;
  try {
    redis = await connectRedis(redisServer.url, (message) => line(`  ${at()}redis: ${message}`));
    api = createApp({
      store: redis.store,
      rate: RATE,
      storeOpenDurationMs: STORE_OPEN_MS,
      logger: stdoutLogger(() => `  ${at()}log: `),
    });
    server = await listen(api.app, 0, '127.0.0.1');
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

    line();
    line('Breakwater: a Koa API rate-limited through Redis, from memory while Redis is down');
    line();
    field('redis', `${redisServer.url} (a private redis-server, no persistence)`);
    field('API', `${base}/api/plants`);
    field('health', `${base}/health`);
    field('limit', `${RATE} per client, sliding window; this client sends X-Api-Key: ${API_KEY}`);
    field('fallback', `after 3 failures the store's circuit opens for ${STORE_OPEN_MS} ms`);

    const story = new Story(api, redis, redisServer, base, at);
    return await story.run();
  } finally {
    await api?.close();
    if (server !== undefined) await closeServer(server);
    redis?.close();
    await redisServer.stop();
  }
}

class Story {
  private readonly redisKey: string;
  private policyShown = false;

  constructor(
    private readonly api: RateLimitedApp,
    private readonly redis: RedisConnection,
    private readonly redisServer: RedisServerHandle,
    private readonly base: string,
    private readonly at: () => string,
  ) {
    this.redisKey = redis.store.redisKey(clientKey(API_KEY, ''), api.limiter.rule);
  }

  async run(): Promise<boolean> {
    line();
    line('1. Redis is up: requests are limited through Redis');
    await this.requests();
    await this.showKey();
    const before = await this.health();

    line();
    line('2. redis-server is killed (SIGKILL): requests are still limited, from memory');
    await this.redisServer.kill();
    // Wait until the client has noticed, so that the next request meets a dead connection.
    if (!(await this.waitFor(() => this.redis.client.status !== 'ready', 'the client to notice')))
      return false;
    await this.requests();
    const during = await this.health();

    line();
    line('3. redis-server is restarted (empty: it kept nothing): decisions return to Redis');
    line(`  ${this.at()}starting redis-server again on ${this.redisServer.url}`);
    await this.redisServer.restart();
    if (
      !(await this.waitFor(() => this.redis.client.status === 'ready', 'the client to reconnect'))
    )
      return false;
    await this.showKey();
    const wait = this.api.storeBreaker.retryAfterMs;
    if (wait > 0) {
      line(`  ${this.at()}the store's circuit admits a probe in ${wait} ms; waiting`);
      await sleep(wait);
    }
    await this.requests();
    await this.showKey();
    const after = await this.health();

    line();
    const told = before === 'pass' && during === 'warn' && after === 'pass';
    if (!told) {
      console.error(
        `unexpected health: ${before} / ${during} / ${after} (want pass / warn / pass)`,
      );
      return false;
    }
    line('Done: limited through Redis, from memory while Redis was down, through Redis again.');
    return true;
  }

  /** Sends the step's requests and prints each answer and where it was decided. */
  private async requests(): Promise<void> {
    for (let i = 0; i < REQUESTS; i++) {
      const res = await fetch(`${this.base}/api/plants`, { headers: { 'x-api-key': API_KEY } });
      await res.arrayBuffer();
      if (!this.policyShown) {
        this.policyShown = true;
        line(`  ${this.at()}RateLimit-Policy: ${res.headers.get('ratelimit-policy')}`);
      }
      const source = this.api.limiter.health().store === 'primary' ? 'Redis' : 'memory';
      const retry = res.status === 429 ? `  Retry-After: ${res.headers.get('retry-after')}` : '';
      line(
        `  ${this.at()}GET /api/plants  ${res.status}  RateLimit: ${res.headers.get('ratelimit')}${retry}  (decided from ${source})`,
      );
    }
  }

  /** Prints the client's key in Redis, and its remaining time to live. */
  private async showKey(): Promise<void> {
    const ttl = await this.redis.client.pttl(this.redisKey);
    const state = ttl === -2 ? 'absent' : `present, expires in ${(ttl / 1_000).toFixed(0)} s`;
    line(`  ${this.at()}redis key ${this.redisKey}: ${state}`);
  }

  /** Prints `/health` and the limiter store's check; returns the overall status. */
  private async health(): Promise<string> {
    const res = await fetch(`${this.base}/health`);
    const report = (await res.json()) as {
      status: string;
      checks: Record<string, { status: string; observedValue: string }[]>;
    };
    const checks = Object.entries(report.checks)
      .map(([name, [check]]) => `${name} ${check?.status} (${check?.observedValue})`)
      .join(', ');
    line(`  ${this.at()}GET /health  ${res.status}  ${report.status}: ${checks}`);
    return report.status;
  }

  private async waitFor(condition: () => boolean, what: string): Promise<boolean> {
    const deadline = performance.now() + WAIT_LIMIT_MS;
    while (!condition()) {
      if (performance.now() > deadline) {
        console.error(`gave up waiting for ${what} after ${WAIT_LIMIT_MS} ms`);
        return false;
      }
      await sleep(20);
    }
    return true;
  }
}
