/**
 * `pnpm --filter @breakwater/example-nest-plant-id start`: the plant identification backend,
 * scripted (a few seconds, then a summary) or, with `--serve`, kept running with its dashboard
 * until Ctrl-C.
 *
 *   pnpm --filter @breakwater/example-nest-plant-id start [--serve [--port <n>]]
 */
import 'reflect-metadata';
import { parseArgs } from 'node:util';
import { run } from './scenario';

const USAGE = `usage: pnpm --filter @breakwater/example-nest-plant-id start [--serve [--port <n>]]

  (no option)  scripted run on a scenario clock: one provider fails, then both, then they
               recover; prints every answer and breaker transition, then a summary; exits 0
  --serve      keep running on the real clock with the dashboard until Ctrl-C
  --port <n>   port with --serve (default: a free one)`;

function fail(message: string): never {
  console.error(`${message}\n\n${USAGE}`);
  process.exit(2);
}

let parsed;
try {
  parsed = parseArgs({
    options: {
      serve: { type: 'boolean', default: false },
      port: { type: 'string' },
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
if (parsed.port !== undefined && !parsed.serve) fail('--port applies to --serve');
const port = parsed.port === undefined ? 0 : Number(parsed.port);
if (!Number.isInteger(port) || port < 0 || port > 65_535 || parsed.port?.trim() === '') {
  fail(`--port must be an integer from 0 to 65535, got "${parsed.port}"`);
}

try {
  await run({ serve: parsed.serve, port });
} catch (error) {
  console.error(error);
  process.exit(1);
}
// Every server and socket is closed by now; a straggler must not keep the run from ending.
setTimeout(() => process.exit(0), 1_000).unref();
