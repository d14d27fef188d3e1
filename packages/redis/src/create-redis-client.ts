import { Redis, type RedisOptions } from 'ioredis';

/**
 * ioredis options that make a client fail fast while Redis is unreachable, instead of holding
 * commands for seconds. {@link createRedisClient} applies them; spread them into your own options
 * (or into `redisOptions` of a `Cluster`, together with the Cluster's own
 * `enableOfflineQueue: false`).
 *
 * - `enableOfflineQueue: false`: a command issued while disconnected is rejected at once
 *   instead of being queued until the connection comes back.
 * - `maxRetriesPerRequest: 0`: commands in flight when the connection drops are rejected at the
 *   first reconnect attempt (the default, 20, holds them through 20 reconnect attempts).
 * - `autoResendUnfulfilledCommands: false`: a command whose connection dropped is not sent again
 *   after reconnecting; by then its caller has already been answered (by a fallback store),
 *   and applying the same cost again later would count it twice.
 *
 * Reconnection itself is unchanged (ioredis' default `retryStrategy` retries forever, backing
 * off up to 2 s), so the client recovers on its own when Redis is back.
 */
export const failFastRedisOptions: Readonly<
  Pick<
    RedisOptions,
    'enableOfflineQueue' | 'maxRetriesPerRequest' | 'autoResendUnfulfilledCommands'
  >
> = Object.freeze({
  enableOfflineQueue: false,
  maxRetriesPerRequest: 0,
  autoResendUnfulfilledCommands: false,
});

/**
 * Creates an ioredis client with {@link failFastRedisOptions}, for a rate-limit store.
 *
 * The client connects at once unless `lazyConnect` is set; with `lazyConnect: true`,
 * `await client.connect()` at startup resolves once it is ready (or rejects while Redis is down,
 * and ioredis keeps reconnecting). Until it is ready every command is refused, so connect before
 * serving. The client is yours: close it with `client.disconnect()` on shutdown (`quit()` is
 * refused while disconnected), and add an `'error'` listener to log connection errors your way
 * (ioredis prints them to the console otherwise).
 *
 * @param url - a Redis URL such as `redis://localhost:6379` or `rediss://user:pass@host:6380/0`
 * @param options - further ioredis options; they are applied after the fail-fast ones and win
 * @returns a connecting ioredis client
 * @example
 * ```ts
 * const client = createRedisClient(process.env.REDIS_URL ?? 'redis://localhost:6379', {
 *   lazyConnect: true,
 * });
 * await client.connect().catch(() => {}); // down at startup: ioredis keeps reconnecting
 * const store = new RedisRateLimitStore({ client });
 * ```
 */
export function createRedisClient(url: string, options?: RedisOptions): Redis {
  return new Redis(url, { ...failFastRedisOptions, ...options });
}
