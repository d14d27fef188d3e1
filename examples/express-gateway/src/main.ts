/**
 * `pnpm demo`: the resilient gateway, scripted (about 24 s, then a summary) or, with `--serve`,
 * kept running with its dashboard until Ctrl-C.
 *
 *   pnpm demo [--duration <seconds>] [--seed <n>] [--otel]
 *   pnpm demo --serve [--port <n>] [--otel]
 *
 * `REDIS_URL` keeps the rate-limit counts in Redis instead of memory.
 */
import { parseArgs } from 'node:util';
import { runDemo } from './demo';

const USAGE = `usage: pnpm demo [--duration <seconds>] [--seed <n>] [--otel]
       pnpm demo --serve [--port <n>] [--otel]

  --duration <s>  length of the scripted run, 4 to 600 seconds (default 24)
  --serve         keep running with the dashboard until Ctrl-C
  --port <n>      gateway port with --serve (default: a free one)
  --seed <n>      seed of the simulated upstreams and clients (default 42)
  --otel          also print OpenTelemetry metrics to the console (every 10 s and at the end)

  REDIS_URL=redis://127.0.0.1:6379  keep rate-limit counts in Redis`;

function fail(message: string): never {
  console.error(`${message}\n\n${USAGE}`);
  process.exit(2);
}

function numberArg(
  name: string,
  value: string | undefined,
  min: number,
  max: number,
): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n < min || n > max) {
    fail(`--${name} must be a number from ${min} to ${max}, got "${value}"`);
  }
  return n;
}

let parsed;
try {
  parsed = parseArgs({
    options: {
      serve: { type: 'boolean', default: false },
      duration: { type: 'string' },
      port: { type: 'string' },
      seed: { type: 'string' },
      otel: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
  }).values;
} catch (error) {
  fail(error instanceof Error ? error.message : String(error));
}
if (parsed.help) {
  console.log(USAGE);
  process.exit(0);
}
if (parsed.serve && parsed.duration !== undefined)
  fail('--duration applies to the scripted run, not to --serve');

const duration = numberArg('duration', parsed.duration, 4, 600) ?? 24;
const port = numberArg('port', parsed.port, 0, 65_535) ?? 0;
const seed = numberArg('seed', parsed.seed, 0, 2 ** 32 - 1) ?? 42;
if (!Number.isInteger(port)) fail(`--port must be an integer, got "${parsed.port}"`);
const redisUrl = process.env.REDIS_URL === '' ? undefined : process.env.REDIS_URL;

try {
  await runDemo({
    serve: parsed.serve,
    durationMs: duration * 1_000,
    port,
    seed,
    redisUrl,
    otel: parsed.otel,
  });
} catch (error) {
  console.error(error);
  process.exit(1);
}
// Every server and socket is closed by now; nothing should keep the process alive, but a
// straggler must not keep the demo from ending.
setTimeout(() => process.exit(0), 1_000).unref();
