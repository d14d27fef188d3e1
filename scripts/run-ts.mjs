// Runs a TypeScript entry point of an example on the workspace sources: @breakwater/* resolves to
// packages/*/src through the root tsconfig.json "paths"; every other package stays external and
// loads from the example's node_modules. The bundle goes to ./dist of the current directory.
// Usage (from an example's folder): node ../../scripts/run-ts.mjs src/main.ts [args...]
import { spawn } from 'node:child_process';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const [entry, ...args] = process.argv.slice(2);
if (!entry) {
  console.error('usage: node scripts/run-ts.mjs <entry.ts> [args...]');
  process.exit(2);
}

const outfile = join(process.cwd(), 'dist', `${basename(entry).replace(/\.ts$/, '')}.mjs`);
try {
  await build({
    entryPoints: [resolve(entry)],
    outfile,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    tsconfig: join(root, 'tsconfig.json'),
    sourcemap: 'inline',
    logLevel: 'warning',
    plugins: [
      {
        name: 'external-dependencies',
        setup(b) {
          b.onResolve({ filter: /^[^./]/ }, (a) =>
            a.path.startsWith('@breakwater/') ? undefined : { path: a.path, external: true },
          );
        },
      },
    ],
  });
} catch {
  process.exit(1);
}
const child = spawn(process.execPath, ['--enable-source-maps', outfile, ...args], { stdio: 'inherit' });
// Ctrl-C reaches the child through the terminal's process group: wait for it to finish cleanly.
process.on('SIGINT', () => {});
process.on('SIGTERM', () => child.kill('SIGTERM'));
child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
