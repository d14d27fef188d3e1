/** The Redis side: a fail-fast client, connected before serving, and the rate-limit store on it. */
import type { Redis } from 'ioredis';
import { RedisRateLimitStore, createRedisClient } from '@breakwater/redis';

/** A connected (or reconnecting) Redis client and the store that uses it. */
export interface RedisConnection {
  readonly client: Redis;
  readonly store: RedisRateLimitStore;
  /** Whether the first connection succeeded. */
  readonly connected: boolean;
  /** Closes the client (`quit()` is refused while disconnected: the offline queue is off). */
  close(): void;
}

/** What the connection tells about itself: once per outage, and when it is back. */
export type RedisNotice = (message: string) => void;

/**
 * Creates a fail-fast client for `url` and waits for its first connection, so that no decision
 * is refused for want of one. If Redis is down it starts anyway: ioredis keeps reconnecting in
 * the background and the limiter answers from memory until it is there.
 */
export async function connectRedis(url: string, notice: RedisNotice): Promise<RedisConnection> {
  const client = createRedisClient(url, { lazyConnect: true });
  let down = false;
  let closing = false;
  let wasReady = false;
  const lost = (reason: string): void => {
    if (down || closing) return;
    down = true;
    notice(
      `${wasReady ? 'connection lost' : 'cannot connect'}${reason}; reconnecting in the background`,
    );
  };
  // Once per outage: the error when there is one (a refused connection), else the close.
  client.on('error', (error: Error) => lost(` (${describe(error)})`));
  client.on('close', () => lost(''));
  client.on('ready', () => {
    if (down) notice(wasReady ? 'connected again' : 'connected');
    down = false;
    wasReady = true;
  });
  let connected = true;
  await client.connect().catch(() => {
    connected = false;
  });
  return {
    client,
    store: new RedisRateLimitStore({ client }),
    connected,
    close: () => {
      closing = true;
      client.disconnect();
    },
  };
}

/** Hides a password in a Redis URL before printing it. */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password !== '') parsed.password = '***';
    return parsed.toString();
  } catch {
    return 'REDIS_URL';
  }
}

function describe(error: Error): string {
  const code = (error as { code?: unknown }).code;
  return typeof code === 'string' && code !== '' && !error.message.includes(code)
    ? `${code}: ${error.message}`
    : error.message;
}
