import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoPath } from '../support/paths';
import {
  PACKAGES,
  PROJECTS,
  commonJsConsumer,
  esmConsumer,
  tsconfig,
  typeScriptConsumer,
  type PackageName,
} from './consumers';
import {
  FRESH_DEPENDENCIES,
  FRESH_PACKAGES,
  FRESH_REDIS_CONSUMER,
  FRESH_RESOLUTIONS,
  FRESH_TYPESCRIPT,
  freshTsconfig,
} from './fresh-project';
import { expectSuccess, run, type Ran } from './run';

/**
 * What the pack test sets up once: the build, the tarballs (listed and unpacked), the consumer
 * projects installed from them and their type-checks, with the time each step took.
 */

const TSC = repoPath('node_modules', 'typescript', 'bin', 'tsc');

/** The temporary folder everything is packed and installed in. */
export let workDir = '';
export const tarballs = new Map<PackageName, string>();
/** Each tarball's file list (paths inside `package/`). */
export const contents = new Map<PackageName, string[]>();
export const unpacked = new Map<PackageName, string>();
/** `npm install` in each project, by project name (`fresh` for the fresh project). */
export const installs = new Map<string, Ran>();
/** Type-check results by `<project>:<resolution>`. */
export const typeChecks = new Map<string, Ran>();
export const timings: Record<string, number> = {};

async function timed<T>(label: string, work: () => Promise<T>): Promise<T> {
  const started = performance.now();
  try {
    return await work();
  } finally {
    timings[label] = Math.round(performance.now() - started);
  }
}

/** Builds, packs, unpacks, installs every project and runs the type-checks. */
export async function packAndInstall(): Promise<void> {
  workDir = mkdtempSync(join(tmpdir(), 'breakwater-pack-'));
  const filters = PACKAGES.flatMap((name) => ['--filter', `@breakwater/${name}`]);
  const build = await timed('build', () =>
    run('pnpm', [...filters, 'run', 'build'], repoPath(), 180_000),
  );
  expectSuccess('pnpm build', build);

  const tarballDir = join(workDir, 'tarballs');
  mkdirSync(tarballDir);
  await timed('pack', async () => {
    for (const name of PACKAGES) {
      const packed = await run(
        'pnpm',
        ['pack', '--pack-destination', tarballDir],
        repoPath('packages', name),
        60_000,
      );
      expectSuccess(`pnpm pack (${name})`, packed);
    }
  });
  for (const file of readdirSync(tarballDir)) {
    const name = PACKAGES.find((p) => file.startsWith(`breakwater-${p}-`));
    if (name !== undefined) tarballs.set(name, join(tarballDir, file));
  }
  for (const [name, tarball] of tarballs) {
    const listed = await run('tar', ['-tzf', tarball], workDir, 30_000);
    expectSuccess(`tar -t ${name}`, listed);
    contents.set(
      name,
      listed.stdout
        .split('\n')
        .filter((line) => line !== '')
        .map((line) => line.replace(/^package\//, '')),
    );
    const into = join(workDir, 'unpacked', name);
    mkdirSync(into, { recursive: true });
    expectSuccess(
      `tar -x ${name}`,
      await run('tar', ['-xzf', tarball, '-C', into], workDir, 30_000),
    );
    unpacked.set(name, join(into, 'package'));
  }

  // One project per framework major, installed in parallel from the tarballs and the registry.
  const local = (name: PackageName): string => `file:${tarballs.get(name) ?? 'missing'}`;
  /** Writes a consumer project: the tarballs and registry dependencies, and its files. */
  const writeProject = (
    name: string,
    packages: readonly PackageName[],
    dependencies: Record<string, string>,
    files: Record<string, string>,
  ): string => {
    const dir = join(workDir, name);
    mkdirSync(dir);
    const manifest = {
      name: `consumer-${name}`,
      version: '1.0.0',
      private: true,
      dependencies: {
        ...Object.fromEntries(packages.map((p) => [`@breakwater/${p}`, local(p)])),
        ...dependencies,
      },
    };
    writeFileSync(join(dir, 'package.json'), `${JSON.stringify(manifest, null, 2)}\n`);
    for (const [file, text] of Object.entries(files)) writeFileSync(join(dir, file), text);
    return dir;
  };
  const npmInstall = (dir: string, loglevel: 'error' | 'warn'): Promise<Ran> =>
    run('npm', ['install', '--no-audit', '--no-fund', `--loglevel=${loglevel}`], dir, 180_000);

  // One project per framework major and the fresh project, installed in parallel.
  await timed('npm install (projects in parallel)', () =>
    Promise.all([
      ...PROJECTS.map(async (project) => {
        const ts = typeScriptConsumer(project);
        const dir = writeProject(project.name, project.packages, project.dependencies, {
          'consumer.cjs': commonJsConsumer(project),
          'consumer.mjs': esmConsumer(project),
          'consumer-cjs.cts': ts,
          'consumer-esm.mts': ts,
          'consumer-bundler.ts': ts,
          ...Object.fromEntries(
            project.typeChecks.map((r) => [`tsconfig.${r}.json`, tsconfig(project, r)]),
          ),
        });
        installs.set(project.name, await npmInstall(dir, 'error'));
      }),
      (async () => {
        const dir = writeProject('fresh', FRESH_PACKAGES, FRESH_DEPENDENCIES, {
          'consumer.ts': FRESH_TYPESCRIPT,
          'consumer.cts': FRESH_TYPESCRIPT,
          'consumer.mts': FRESH_TYPESCRIPT,
          'consumer-redis.mjs': FRESH_REDIS_CONSUMER,
          ...Object.fromEntries(
            FRESH_RESOLUTIONS.map((r) => [`tsconfig.${r}.json`, freshTsconfig(r)]),
          ),
        });
        installs.set('fresh', await npmInstall(dir, 'warn'));
      })(),
    ]),
  );

  // The type-checks are the slow part: run them two at a time (one per core). The fresh project
  // uses its own TypeScript 7 (a native binary), the others the monorepo's TypeScript.
  const checks = [
    ...PROJECTS.flatMap((project) =>
      project.typeChecks.map((resolution) => ({
        key: `${project.name}:${resolution}`,
        command: process.execPath,
        args: [TSC, '-p', `tsconfig.${resolution}.json`],
        cwd: join(workDir, project.name),
      })),
    ),
    ...FRESH_RESOLUTIONS.map((resolution) => ({
      key: `fresh:${resolution}`,
      command: join(workDir, 'fresh', 'node_modules', '.bin', 'tsc'),
      args: ['-p', `tsconfig.${resolution}.json`],
      cwd: join(workDir, 'fresh'),
    })),
  ];
  await timed('tsc (2 at a time)', async () => {
    const next = async (): Promise<void> => {
      for (let check = checks.shift(); check !== undefined; check = checks.shift()) {
        typeChecks.set(
          check.key,
          existsSync(check.command)
            ? await run(check.command, check.args, check.cwd, 180_000)
            : { code: null, stdout: '', stderr: `${check.command} is not installed` },
        );
      }
    };
    await Promise.all([next(), next()]);
  });
}

/** Removes the temporary folder. */
export function removeWorkDir(): void {
  if (workDir !== '') rmSync(workDir, { recursive: true, force: true });
}
