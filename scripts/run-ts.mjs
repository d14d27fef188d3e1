// Runs a TypeScript entry point of an example on the workspace sources: @breakwater/* resolves to
// packages/*/src through the root tsconfig.json "paths"; every other package stays external and
// loads from the example's node_modules. The bundle goes to ./dist of the current directory.
// Usage (from an example's folder): node ../../scripts/run-ts.mjs src/main.ts [args...]
import { spawn } from 'node:child_process';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readFile } from 'node:fs/promises';
import { build } from 'esbuild';
import { transform } from '@swc/core';

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
    keepNames: true,
    plugins: [
      {
        name: 'external-dependencies',
        setup(b) {
          b.onResolve({ filter: /^[^./]/ }, (a) =>
            a.path.startsWith('@breakwater/') ? undefined : { path: a.path, external: true },
          );
        },
      },
      {
        // esbuild does not emit decorator metadata, which Nest's dependency injection by type
        // needs: workspace TypeScript that uses decorators goes through swc first.
        name: 'decorator-metadata',
        setup(b) {
          b.onLoad({ filter: /\.ts$/ }, async (a) => {
            if (a.path.includes('/node_modules/')) return undefined;
            const source = await readFile(a.path, 'utf8');
            if (!/^\s*@[A-Za-z]/m.test(source)) return undefined;
            const out = await transform(source, {
              filename: a.path,
              sourceMaps: 'inline',
              jsc: {
                parser: { syntax: 'typescript', decorators: true },
                target: 'es2022',
                keepClassNames: true,
                transform: { legacyDecorator: true, decoratorMetadata: true },
              },
            });
            return { contents: out.code, loader: 'js', resolveDir: dirname(a.path) };
          });
        },
      },
    ],
  });
} catch {
  process.exit(1);
}
const child = spawn(process.execPath, ['--enable-source-maps', outfile, ...args], {
  stdio: 'inherit',
});
// Ctrl-C reaches the child through the terminal's process group: wait for it to finish cleanly.
// The child is told to stop once: a SIGTERM that follows (pnpm sends one on Ctrl-C) is not
// passed on, so it cannot cut the child's clean shutdown short.
let stopping = false;
process.on('SIGINT', () => {
  stopping = true;
});
process.on('SIGTERM', () => {
  if (!stopping) child.kill('SIGTERM');
  stopping = true;
});
child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
