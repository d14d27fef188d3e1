// Bundles a benchmark with @breakwater/* resolved to source (root tsconfig paths), prom-client
// external, then runs it: `node bench/run.mjs [bench/metrics-overhead.mjs]`.
import { spawnSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const here = dirname(fileURLToPath(import.meta.url));
const entry = resolve(process.argv[2] ?? join(here, 'metrics-overhead.mjs'));
// Inside the package, so that prom-client resolves from its node_modules.
const out = join(here, 'dist');
try {
  const outfile = join(out, 'bench.mjs');
  await build({
    entryPoints: [entry],
    outfile,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    tsconfig: join(here, '../../../tsconfig.json'),
    external: ['prom-client'],
    logLevel: 'warning',
  });
  const run = spawnSync(process.execPath, ['--expose-gc', outfile], { stdio: 'inherit' });
  process.exitCode = run.status ?? 1;
} finally {
  rmSync(out, { recursive: true, force: true });
}
