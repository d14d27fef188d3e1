import { hasRedisServer, startRedisServer, type RedisServerHandle } from './redis-server';

declare global {
  var __BREAKWATER_REDIS__: RedisServerHandle | undefined;
}

/**
 * Starts one redis-server for the whole run and publishes its address as
 * `BREAKWATER_TEST_REDIS_URL`. Without the binary, Redis suites are skipped with a loud message,
 * except under CI where that is a failure.
 */
export default async function globalSetup(): Promise<void> {
  if (!hasRedisServer()) {
    if (process.env.CI === 'true') {
      throw new Error(
        'redis-server is not installed; .ci/run must install it (apt-get install redis-server)',
      );
    }
    process.stderr.write(
      '\n\x1b[41m\x1b[37m redis-server not found: every Redis test suite is SKIPPED. \x1b[0m\n' +
        'Install it (apt-get install redis-server) to run them.\n\n',
    );
    return;
  }
  const server = await startRedisServer();
  globalThis.__BREAKWATER_REDIS__ = server;
  process.env.BREAKWATER_TEST_REDIS_URL = server.url;
}
