/**
 * `pnpm start`: the Koa API, rate-limited through the Redis at `REDIS_URL`, until Ctrl-C.
 * `pnpm start --demo`: the scripted outage story against a private redis-server, then exit.
 *
 *   pnpm start [--port <n>] [--host <address>]
 *   pnpm start --demo
 */
import { parseArgs } from 'node:util';
import { createApp } from './app';
import { runDemo } from './demo';
import { clockTime, field, line, stdoutLogger } from './output';
import { connectRedis, redactUrl } from './redis';
import { closeServer, listen } from './server';

const USAGE = `usage: pnpm start [--port <n>] [--host <address>]
       pnpm start --demo

  --port <n>        port of the API (default 3000; 0: any free one)
  --host <address>  address to listen on (default 127.0.0.1)
  --demo            start, kill and restart a private redis-server and show what the
                    limiter does meanwhile; exits when done

  REDIS_URL=redis://127.0.0.1:6379  the Redis that holds the counts (not used by --demo)`;

function fail(message: string): never {
  console.error(`${message}\n\n${USAGE}`);
  process.exit(2);
}

let parsed;
try {
  parsed = parseArgs({
    options: {
      demo: { type: 'boolean', default: false },
      port: { type: 'string' },
      host: { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
  }).values;
} catch (error) {
  fail(error instanceof Error ? error.message : String(error));
}
if (parsed.help) {
  line(USAGE);
  process.exit(0);
}
if (parsed.demo && (parsed.port !== undefined || parsed.host !== undefined))
  fail('--port and --host apply to the API, not to --demo');

if (parsed.demo) {
  let ok = false;
  try {
    ok = await runDemo();
  } catch (error) {
    console.error(error);
  }
  process.exitCode = ok ? 0 : 1;
} else {
  const port = parsed.port === undefined ? 3_000 : Number(parsed.port);
  if (!Number.isInteger(port) || port < 0 || port > 65_535 || parsed.port?.trim() === '')
    fail(`--port must be an integer from 0 to 65535, got "${parsed.port}"`);
  await serve(port, parsed.host ?? '127.0.0.1');
}
// Every server and socket is closed by now. ioredis keeps a 2 s timer after disconnecting a
// client whose connection had already failed; that must not hold the process up.
setTimeout(() => process.exit(), 500).unref();

async function serve(port: number, host: string): Promise<void> {
  const stopped = untilStopped();
  const url = process.env.REDIS_URL || 'redis://127.0.0.1:6379';
  const stamp = (): string => `${clockTime()}  `;
  const redis = await connectRedis(url, (message) => line(`${stamp()}redis: ${message}`));
  const api = createApp({ store: redis.store, logger: stdoutLogger(stamp) });
  const server = await listen(api.app, port, host);
  const address = server.address();
  const actual = typeof address === 'object' && address !== null ? address.port : port;
  const base = `http://${host.includes(':') ? `[${host}]` : host}:${actual}`;

  line();
  line('Breakwater: a Koa API rate-limited through Redis, from memory while Redis is down');
  line();
  field(
    'redis',
    `${redactUrl(url)}${redis.connected ? '' : ' (unreachable: limiting from memory until it is there)'}`,
  );
  field('API', `${base}/api/plants   ${base}/api/plants/monstera`);
  field('health', `${base}/health   ${base}/health/ready   ${base}/health/live`);
  field('dashboard', `${base}/health/dashboard`);
  field('limit', '10 per minute per client (X-Api-Key, else the address), sliding window');
  field('try', `curl -i ${base}/api/plants -H 'X-Api-Key: alice'`);
  line();
  line('Ctrl-C stops it. Limiter and Redis events:');

  await stopped;
  line(`${stamp()}stopping`);
  await api.close();
  await closeServer(server);
  redis.close();
}

/** Resolves on the first SIGINT (Ctrl-C) or SIGTERM; listening starts at once, before any banner. */
function untilStopped(): Promise<void> {
  return new Promise<void>((resolve) => {
    const stop = (): void => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      resolve();
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
}
