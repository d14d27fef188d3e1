/**
 * A throwaway project in which the documentation's blocks are compiled and run as a user's code
 * would be: the packages built into its node_modules (never the repository's dist folders), the
 * third-party packages the blocks import linked next to them.
 */
import { execFile, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  realpathSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { transform } from 'esbuild';
import { blockName, importedPackages, moduleSource, type DocBlock } from './extract';

/** The repository root. */
export const ROOT = resolve(__dirname, '..', '..');

/** What a child process did. */
export interface Ran {
  /** The exit code; null when it ended by a signal. */
  code: number | null;
  /** The signal that ended it, if one did. */
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  ms: number;
}

/**
 * The environment of child processes, without `NODE_PATH`: pnpm's launcher sets it to the
 * monorepo's package store, which would let a block resolve a package it never installed.
 */
function isolated(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const { NODE_PATH: _storePath, ...env } = process.env;
  return { ...env, ...extra };
}

/**
 * Runs a command; kills it with SIGKILL after `timeoutMs`. `watch` sees the output as it comes
 * and may stop the process itself.
 */
export function run(
  command: string,
  args: readonly string[],
  cwd: string,
  timeoutMs: number,
  env: NodeJS.ProcessEnv = isolated(),
  watch?: (stdout: string, child: ChildProcess) => void,
): Promise<Ran> {
  const started = performance.now();
  const options = {
    cwd,
    env,
    timeout: timeoutMs,
    killSignal: 'SIGKILL' as const,
    maxBuffer: 2 ** 26,
  };
  return new Promise((done) => {
    let seen = '';
    const child = execFile(command, args, options, (error, stdout, stderr) => {
      const code = error === null ? 0 : typeof error.code === 'number' ? error.code : null;
      const signal = error?.signal ?? null;
      done({ code, signal, stdout, stderr, ms: Math.round(performance.now() - started) });
    });
    if (watch !== undefined) {
      child.stdout?.on('data', (chunk: Buffer | string) => {
        seen += chunk.toString();
        watch(seen, child);
      });
    }
  });
}

function expectSuccess(what: string, ran: Ran): void {
  if (ran.code !== 0) {
    throw new Error(
      `${what} exited with ${ran.code}:\n${ran.stdout.slice(-4_000)}\n${ran.stderr.slice(-4_000)}`,
    );
  }
}

/** Runs `work` over `items`, at most `limit` at a time. */
async function eachLimited<T>(
  items: readonly T[],
  limit: number,
  work: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) await work(items[next++] as T);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

/** A workspace package: its folder, npm name and the workspace packages it depends on. */
interface WorkspacePackage {
  dir: string;
  name: string;
  needs: string[];
}

function workspacePackages(): WorkspacePackage[] {
  return readdirSync(join(ROOT, 'packages'))
    .filter((dir) => existsSync(join(ROOT, 'packages', dir, 'package.json')))
    .map((dir) => {
      const manifest = JSON.parse(
        readFileSync(join(ROOT, 'packages', dir, 'package.json'), 'utf8'),
      ) as { name: string; dependencies?: Record<string, string> };
      const needs = Object.keys(manifest.dependencies ?? {}).filter((name) =>
        name.startsWith('@breakwater/'),
      );
      return { dir, name: manifest.name, needs };
    });
}

const TSUP = join(ROOT, 'node_modules', 'tsup', 'dist', 'cli-default.js');

/**
 * Builds one package with its own tsup config into `<project>/node_modules/<name>/dist` (ESM and
 * its declarations: what an `import` resolves to), next to a copy of its package.json. The
 * declaration build sees the other workspace packages through the project's copies.
 */
async function buildPackage(
  project: string,
  pkg: WorkspacePackage,
  all: readonly WorkspacePackage[],
) {
  const target = join(project, 'node_modules', pkg.name);
  mkdirSync(target, { recursive: true });
  const source = join(ROOT, 'packages', pkg.dir);
  writeFileSync(join(target, 'package.json'), readFileSync(join(source, 'package.json')));
  const paths: Record<string, string[]> = {};
  for (const other of all) {
    if (other.name === pkg.name) continue;
    const dist = join(project, 'node_modules', other.name, 'dist');
    paths[other.name] = [join(dist, 'index.d.ts')];
    paths[`${other.name}/*`] = [join(dist, '*.d.ts')];
  }
  const tsconfig = join(project, `tsconfig.build-${pkg.dir}.json`);
  writeFileSync(
    tsconfig,
    JSON.stringify({
      extends: join(source, 'tsconfig.build.json'),
      compilerOptions: { paths },
    }),
  );
  const args = [TSUP, '--out-dir', join(target, 'dist'), '--format', 'esm', '--tsconfig', tsconfig];
  expectSuccess(`tsup (${pkg.name})`, await run(process.execPath, args, source, 120_000));
}

/**
 * Builds every workspace package into the project, two at a time, each once the packages it
 * depends on are built.
 */
export async function buildPackages(project: string): Promise<void> {
  const all = workspacePackages();
  const built = new Set<string>();
  let left = all;
  while (left.length > 0) {
    const ready = left.filter((pkg) => pkg.needs.every((name) => built.has(name)));
    if (ready.length === 0)
      throw new Error(`circular dependencies: ${left.map((p) => p.name).join(', ')}`);
    await eachLimited(ready, 2, (pkg) => buildPackage(project, pkg, all));
    for (const pkg of ready) built.add(pkg.name);
    left = left.filter((pkg) => !built.has(pkg.name));
  }
}

/** Where a third-party package is installed in the repository, or undefined. */
function installed(name: string): string | undefined {
  const folders = [
    join(ROOT, 'node_modules'),
    ...['packages', 'examples'].flatMap((group) =>
      readdirSync(join(ROOT, group)).map((dir) => join(ROOT, group, dir, 'node_modules')),
    ),
    // pnpm's hidden hoisting: every package of the store, by name.
    join(ROOT, 'node_modules', '.pnpm', 'node_modules'),
  ];
  for (const folder of folders) {
    const candidate = join(folder, name);
    if (existsSync(join(candidate, 'package.json'))) return realpathSync(candidate);
  }
  return undefined;
}

/** The `@types` package of `name` (`@koa/router` -> `@types/koa__router`). */
function typesPackage(name: string): string {
  return `@types/${name.startsWith('@') ? name.slice(1).replace('/', '__') : name}`;
}

/**
 * Links into the project's node_modules every third-party package the blocks import, with its
 * `@types` package when there is one, and `@types/node`. Returns the names that were not found
 * (their imports then fail to compile, which names the block).
 */
export function linkDependencies(project: string, blocks: readonly DocBlock[]): string[] {
  const names = new Set(['@types/node']);
  for (const block of blocks) {
    for (const name of importedPackages(block.code)) {
      if (name.startsWith('@breakwater/')) continue;
      names.add(name);
      names.add(typesPackage(name));
    }
  }
  const missing: string[] = [];
  for (const name of names) {
    const found = installed(name);
    if (found === undefined) {
      if (!name.startsWith('@types/')) missing.push(name);
      continue;
    }
    const link = join(project, 'node_modules', name);
    mkdirSync(dirname(link), { recursive: true });
    symlinkSync(found, link, 'dir');
  }
  return missing;
}

/** A file name for a block: `packages-core-docs-policies-md-L28`. */
export function blockSlug(block: DocBlock): string {
  return `${block.file.replace(/[^A-Za-z0-9]+/g, '-')}-L${block.line}`;
}

/** The two module resolutions a user may compile with. */
export const RESOLUTIONS = ['nodenext', 'bundler'] as const;
export type Resolution = (typeof RESOLUTIONS)[number];

/** The TypeScript compilers the blocks are checked with. */
export const COMPILERS = {
  'TypeScript 5.9': join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'),
  'TypeScript 7': join(ROOT, 'test', 'docs', 'node_modules', 'typescript', 'bin', 'tsc'),
} as const;
export type Compiler = keyof typeof COMPILERS;

const EXTENSION: Record<Resolution, string> = { nodenext: '.mts', bundler: '.ts' };

/**
 * Writes each block as its own module (`.mts` under nodenext, so it is ESM with top-level await;
 * `.ts` under bundler) and one tsconfig per resolution. Returns the block of each file.
 */
export function writeBlocks(project: string, blocks: readonly DocBlock[]): Map<string, DocBlock> {
  const files = new Map<string, DocBlock>();
  for (const resolution of RESOLUTIONS) {
    const folder = join(project, 'blocks', resolution);
    mkdirSync(folder, { recursive: true });
    for (const block of blocks) {
      const file = join(folder, blockSlug(block) + EXTENSION[resolution]);
      writeFileSync(file, moduleSource(block));
      files.set(relative(project, file), block);
    }
    const module = resolution === 'nodenext' ? 'nodenext' : 'esnext';
    writeFileSync(
      join(project, `tsconfig.${resolution}.json`),
      JSON.stringify(
        {
          compilerOptions: {
            target: 'es2022',
            module,
            moduleResolution: resolution,
            moduleDetection: 'force',
            strict: true,
            noEmit: true,
            skipLibCheck: true,
            experimentalDecorators: true,
            emitDecoratorMetadata: true,
            types: ['node'],
          },
          include: [`blocks/${resolution}/*${EXTENSION[resolution]}`],
        },
        null,
        2,
      ),
    );
  }
  return files;
}

/** One compiler error, with the file it is in relative to the project. */
export interface Diagnostic {
  file: string;
  line: number;
  column: number;
  message: string;
}

/** Parses `tsc --pretty false` output: `file(line,col): error TSnnnn: message` (+ indented lines). */
export function parseDiagnostics(output: string): Diagnostic[] {
  const diagnostics: Diagnostic[] = [];
  for (const line of output.split('\n')) {
    const match = /^(.+?)\((\d+),(\d+)\): error (TS\d+: .*)$/.exec(line);
    if (match !== null) {
      diagnostics.push({
        file: match[1] ?? '',
        line: Number(match[2]),
        column: Number(match[3]),
        message: match[4] ?? '',
      });
    } else if (line.trim() !== '') {
      const last = diagnostics.at(-1);
      if (last !== undefined && /^\s/.test(line)) last.message += `\n${line}`;
      else diagnostics.push({ file: '', line: 0, column: 0, message: line });
    }
  }
  return diagnostics;
}

/** Runs one compiler over one resolution's blocks. */
export async function typeCheck(
  project: string,
  compiler: Compiler,
  resolution: Resolution,
): Promise<{ ran: Ran; diagnostics: Diagnostic[] }> {
  const ran = await run(
    process.execPath,
    [COMPILERS[compiler], '-p', `tsconfig.${resolution}.json`, '--pretty', 'false'],
    project,
    120_000,
  );
  return { ran, diagnostics: parseDiagnostics(ran.stdout + ran.stderr) };
}

/** Formats a diagnostic as `<doc>:<line of the markdown>:<column> <message>`. */
export function describeDiagnostic(block: DocBlock, diagnostic: Diagnostic): string {
  return `${block.file}:${block.line + diagnostic.line}:${diagnostic.column} ${diagnostic.message}`;
}

/** A port free on loopback now. */
export function freePort(): Promise<number> {
  return new Promise((done, fail) => {
    const server = createServer();
    server.once('error', fail);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => done(typeof address === 'object' && address !== null ? address.port : 0));
    });
  });
}

/** What running a block did; `served` is the status of the page a server block printed. */
export interface BlockRun extends Ran {
  served?: number | string;
}

/**
 * Runs a block with Node: compiled by esbuild (types stripped, nothing bundled) to an `.mjs` in
 * the project, so its imports resolve to the project's packages. Killed after `timeoutMs`.
 *
 * A block that starts a server listens on `PORT` (given here) and prints its URL: the URL is
 * fetched once, then the process gets SIGTERM, as from a process manager.
 */
export async function runBlock(
  project: string,
  block: DocBlock,
  env: NodeJS.ProcessEnv,
  timeoutMs = 10_000,
): Promise<BlockRun> {
  if (block.fills.length > 0) {
    throw new Error(`${blockName(block)} is runnable but declares fills: ${block.fills.join(' ')}`);
  }
  // Blank lines in front, and a source map: a stack trace names the document's own lines.
  const { code } = await transform('\n'.repeat(block.line) + moduleSource(block), {
    loader: 'ts',
    format: 'esm',
    platform: 'node',
    target: 'node20',
    sourcemap: 'inline',
    sourcefile: join(ROOT, block.file),
    tsconfigRaw: { compilerOptions: { experimentalDecorators: true } },
  });
  const folder = join(project, 'run');
  mkdirSync(folder, { recursive: true });
  const file = join(folder, `${blockSlug(block)}.mjs`);
  writeFileSync(file, code);
  const port = await freePort();
  let served: Promise<number | string> | undefined;
  const ran = await run(
    process.execPath,
    ['--enable-source-maps', file],
    project,
    timeoutMs,
    isolated({ ...env, PORT: String(port) }),
    (stdout, child) => {
      const url = new RegExp(`http://localhost:${port}\\S*`).exec(stdout)?.[0];
      if (url === undefined || served !== undefined) return;
      served = fetch(url, { signal: AbortSignal.timeout(5_000) }).then(
        async (response) => {
          await response.arrayBuffer();
          return response.status;
        },
        (error: unknown) => String(error),
      );
      void served.finally(() => child.kill('SIGTERM'));
    },
  );
  return served === undefined ? ran : { ...ran, served: await served };
}

/** A new, empty project folder. */
export function createProject(): string {
  const project = mkdtempSync(join(tmpdir(), 'breakwater-docs-'));
  writeFileSync(
    join(project, 'package.json'),
    JSON.stringify({ name: 'docs-blocks', private: true, type: 'module' }),
  );
  return project;
}
