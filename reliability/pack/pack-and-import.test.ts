import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { spawn } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, posix } from 'node:path';
import { repoPath } from '../support/paths';
import {
  PACKAGES,
  PROJECTS,
  commonJsConsumer,
  esmConsumer,
  tsconfig,
  typeScriptConsumer,
  type ConsumerOutput,
  type ConsumerProject,
  type PackageName,
} from './consumers';

/**
 * Builds the packages, packs them as npm would publish them, installs the tarballs with their
 * peers from the registry into throwaway projects (Express 4 and 5, Koa 2 and 3, Nest 11 and 12
 * with the Prometheus package), and uses them there as a user would: CommonJS `require` and ESM
 * `import` of every entry point with real requests through the middleware (or a Nest app), and
 * TypeScript consumers type-checked with `node16` and `bundler` resolution. Also checks each
 * package.json and what each tarball holds.
 */

interface Ran {
  code: number | null;
  stdout: string;
  stderr: string;
}

function run(
  command: string,
  args: readonly string[],
  cwd: string,
  timeoutMs: number,
  env: NodeJS.ProcessEnv = isolated(),
): Promise<Ran> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/**
 * The environment of the child processes, without `NODE_PATH`: pnpm's launcher sets it to the
 * monorepo's package store, which would let a consumer resolve packages it never installed.
 */
function isolated(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const { NODE_PATH: _storePath, ...env } = process.env;
  return { ...env, ...extra };
}

/** Fails with the command's output when it did not exit with 0. */
function expectSuccess(what: string, ran: Ran): void {
  if (ran.code !== 0) {
    throw new Error(
      `${what} exited with ${ran.code}:\n${ran.stdout.slice(-4_000)}\n${ran.stderr.slice(-4_000)}`,
    );
  }
}

const TSC = repoPath('node_modules', 'typescript', 'bin', 'tsc');

let workDir = '';
const tarballs = new Map<PackageName, string>();
/** Each tarball's file list (paths inside `package/`). */
const contents = new Map<PackageName, string[]>();
const unpacked = new Map<PackageName, string>();
const installs = new Map<ConsumerProject['name'], Ran>();
/** Type-check results by `<project>:<resolution>`. */
const typeChecks = new Map<string, Ran>();
const timings: Record<string, number> = {};

async function timed<T>(label: string, work: () => Promise<T>): Promise<T> {
  const started = performance.now();
  try {
    return await work();
  } finally {
    timings[label] = Math.round(performance.now() - started);
  }
}

beforeAll(async () => {
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
  await timed('npm install (projects in parallel)', () =>
    Promise.all(
      PROJECTS.map(async (project) => {
        const dir = join(workDir, project.name);
        mkdirSync(dir);
        const local = (name: PackageName): string => `file:${tarballs.get(name) ?? 'missing'}`;
        const manifest = {
          name: `consumer-${project.name}`,
          version: '1.0.0',
          private: true,
          dependencies: {
            ...Object.fromEntries(
              project.packages.map((name) => [`@breakwater/${name}`, local(name)]),
            ),
            ...project.dependencies,
          },
        };
        writeFileSync(join(dir, 'package.json'), `${JSON.stringify(manifest, null, 2)}\n`);
        writeFileSync(join(dir, 'consumer.cjs'), commonJsConsumer(project));
        writeFileSync(join(dir, 'consumer.mjs'), esmConsumer(project));
        const ts = typeScriptConsumer(project);
        writeFileSync(join(dir, 'consumer-cjs.cts'), ts);
        writeFileSync(join(dir, 'consumer-esm.mts'), ts);
        writeFileSync(join(dir, 'consumer-bundler.ts'), ts);
        for (const resolution of project.typeChecks) {
          writeFileSync(join(dir, `tsconfig.${resolution}.json`), tsconfig(project, resolution));
        }
        installs.set(
          project.name,
          await run(
            'npm',
            ['install', '--no-audit', '--no-fund', '--loglevel=error'],
            dir,
            180_000,
          ),
        );
      }),
    ),
  );

  // The type-checks are the slow part: run them two at a time (one per core).
  const checks = PROJECTS.flatMap((project) =>
    project.typeChecks.map((resolution) => ({ project, resolution })),
  );
  await timed('tsc (2 at a time)', async () => {
    const next = async (): Promise<void> => {
      for (let check = checks.shift(); check !== undefined; check = checks.shift()) {
        const { project, resolution } = check;
        typeChecks.set(
          `${project.name}:${resolution}`,
          await run(
            process.execPath,
            [TSC, '-p', `tsconfig.${resolution}.json`],
            join(workDir, project.name),
            180_000,
          ),
        );
      }
    };
    await Promise.all([next(), next()]);
  });
}, 420_000);

afterAll(() => {
  if (workDir !== '') rmSync(workDir, { recursive: true, force: true });
});

describe('pack: package manifests and tarball contents', () => {
  it('packed every package', () => {
    expect([...tarballs.keys()].sort()).toEqual([...PACKAGES].sort());
  });

  it.each(PACKAGES)(
    '@breakwater/%s declares exports, types, sideEffects: false and files',
    (name) => {
      const dir = unpacked.get(name)!;
      const manifest = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as {
        name: string;
        type?: string;
        main?: string;
        module?: string;
        types?: string;
        sideEffects?: unknown;
        files?: string[];
        exports?: Record<string, unknown>;
        dependencies?: Record<string, string>;
        engines?: { node?: string };
      };
      expect(manifest.name).toBe(`@breakwater/${name}`);
      expect(manifest.sideEffects).toBe(false);
      expect(manifest.files).toEqual(expect.arrayContaining(['dist']));
      expect(manifest.engines?.node).toBe('>=20');
      expect(typeof manifest.types).toBe('string');
      expect(typeof manifest.exports).toBe('object');
      const files = new Set(contents.get(name));
      for (const field of ['main', 'module', 'types'] as const) {
        const target = manifest[field];
        if (target !== undefined)
          expect([field, files.has(posix.normalize(target))]).toEqual([field, true]);
      }
      // Every export target is in the tarball, and `types` comes first in each condition.
      const visit = (value: unknown, at: string): void => {
        if (typeof value === 'string') {
          if (value.endsWith('package.json')) return;
          expect([at, files.has(posix.normalize(value))]).toEqual([at, true]);
          return;
        }
        const entries = Object.entries(value as Record<string, unknown>);
        const keys = entries.map(([k]) => k);
        if (keys.includes('types')) expect([at, keys[0]]).toEqual([at, 'types']);
        for (const [key, inner] of entries) visit(inner, `${at}.${key}`);
      };
      visit(manifest.exports, 'exports');
      // Workspace protocol never leaks into a published manifest.
      for (const range of Object.values(manifest.dependencies ?? {})) {
        expect(range).not.toMatch(/^workspace:/);
      }
    },
  );

  it.each(PACKAGES)(
    '@breakwater/%s tarball holds no tests, sources or dangling source maps',
    (name) => {
      const files = contents.get(name)!;
      const dir = unpacked.get(name)!;
      expect(files).toContain('README.md');
      for (const file of files) {
        expect([file, /(^|\/)(src|test|tests|__tests__)\//.test(file)]).toEqual([file, false]);
        expect([file, /\.(test|spec)\.[cm]?[jt]s$/.test(file)]).toEqual([file, false]);
        expect([file, /\.[cm]?ts$/.test(file) && !/\.d\.[cm]?ts$/.test(file)]).toEqual([
          file,
          false,
        ]);
        expect([file, /tsconfig|tsup\.config|\.tsbuildinfo/.test(file)]).toEqual([file, false]);
      }
      for (const file of files) {
        const text = readFileSync(join(dir, file), 'utf8');
        if (/\.[cm]?js$/.test(file)) {
          const url = /\/\/# sourceMappingURL=(\S+)\s*$/.exec(text)?.[1];
          if (url !== undefined) {
            const mapFile = posix.join(posix.dirname(file), url);
            expect([file, files.includes(mapFile)]).toEqual([file, true]);
          }
        }
        if (file.endsWith('.map')) {
          const map = JSON.parse(text) as { sources: string[]; sourcesContent?: (string | null)[] };
          map.sources.forEach((source, i) => {
            const embedded = typeof map.sourcesContent?.[i] === 'string';
            const shipped = existsSync(join(dir, dirname(file), source));
            expect([file, source, embedded || shipped]).toEqual([file, source, true]);
          });
        }
      }
    },
  );
});

describe('pack: what particular packages ship', () => {
  it('@breakwater/prometheus ships its Grafana dashboard and alert rules', () => {
    const files = contents.get('prometheus')!;
    expect(files).toEqual(
      expect.arrayContaining(['dashboards/grafana.json', 'alerts/prometheus-rules.yml']),
    );
    const dashboard = JSON.parse(
      readFileSync(join(unpacked.get('prometheus')!, 'dashboards', 'grafana.json'), 'utf8'),
    ) as { uid?: string; panels?: unknown[] };
    expect(dashboard.uid).toBe('breakwater');
    expect(dashboard.panels?.length).toBeGreaterThan(0);
  });

  it.each(PACKAGES)(
    '@breakwater/%s ESM build imports no extensionless deep path (unresolvable without an exports map)',
    (name) => {
      const files = contents.get(name)!.filter((file) => file.endsWith('.js'));
      for (const file of files) {
        const text = readFileSync(join(unpacked.get(name)!, file), 'utf8');
        const deep = [
          ...text.matchAll(/\bfrom\s*["']((?:@[^/"']+\/[^/"']+|[^@./"'][^/"']*)\/[^"']+)["']/g),
        ]
          .map((match) => match[1]!)
          .filter((specifier) => !/\.[cm]?js$|\.json$/.test(specifier));
        expect([file, deep]).toEqual([file, []]);
      }
    },
  );

  it('@breakwater/nestjs keeps its optional peers out of the main entry', () => {
    const dir = unpacked.get('nestjs')!;
    for (const file of ['dist/index.js', 'dist/index.cjs']) {
      const text = readFileSync(join(dir, file), 'utf8');
      expect([file, /@nestjs\/(terminus|throttler)/.test(text)]).toEqual([file, false]);
    }
    for (const entry of ['terminus', 'throttler']) {
      expect(contents.get('nestjs')).toEqual(
        expect.arrayContaining([`dist/${entry}.js`, `dist/${entry}.cjs`, `dist/${entry}.d.ts`]),
      );
    }
  });
});

describe.each(PROJECTS.map((p) => [p.name, p] as const))(
  'pack: installed from the tarballs with %s',
  (projectName, project) => {
    const dir = (): string => join(workDir, projectName);
    const env = isolated({
      REDIS_URL: process.env.BREAKWATER_TEST_REDIS_URL ?? '',
      NODE_ENV: 'production',
    });
    const frameworkPackage = project.framework === 'nest' ? '@nestjs/core' : project.framework;
    const adapter = project.framework === 'nest' ? 'nestjs' : project.framework;

    it('installs from the tarballs and the registry', () => {
      expectSuccess(`npm install (${projectName})`, installs.get(projectName)!);
      const installed = JSON.parse(
        readFileSync(join(dir(), 'node_modules', frameworkPackage, 'package.json'), 'utf8'),
      ) as { version: string };
      expect(installed.version.split('.')[0]).toBe(String(project.major));
      // Every package's dependency on core resolved to the one tarball, not to a second copy.
      for (const name of project.packages) {
        expect([
          name,
          existsSync(join(dir(), 'node_modules', '@breakwater', name, 'node_modules')),
        ]).toEqual([name, false]);
      }
    });

    const expectHttpScenario = (out: ConsumerOutput): void => {
      expect(out.breakerValue).toBe(42);
      expect(out.breakerAfterFailure).toBe('rejected: open');
      expect(out.decisions).toEqual([true, true, false]);
      expect(out.conformanceCases).toBeGreaterThan(10);
      expect(out.configErrorPath).toBe('failureThreshold');
      if (process.env.BREAKWATER_TEST_REDIS_URL) expect(out.redisRemaining).toBe(4);
      // 200, 200, 429 (rate limit), 503 (open circuit), breaker snapshot, liveness
      expect(out.statuses).toEqual([200, 200, 429, 503, 200, 200]);
      expect(out.policy).toBe('"api";q=2;w=60');
      expect(out.openBody).toMatchObject({ status: 503, breaker: 'data' });
      expect(out.snapshotState).toBe('forced_open');
    };

    const expectNestScenario = (out: ConsumerOutput): void => {
      // 200, 200, 503 (the limiter admits, the open circuit refuses), 429 (fourth of 3/m),
      // breaker snapshot, liveness
      expect(out.statuses).toEqual([200, 200, 503, 429, 200, 200]);
      expect(out.policy).toMatch(/;q=3;w=60$/);
      expect(out.openBody).toMatchObject({ status: 503 });
      expect(out.snapshotState).toBe('forced_open');
      expect(out.metrics).toEqual({ status: 200, hasState: true, hasCalls: true });
    };

    const expectScenario = project.framework === 'nest' ? expectNestScenario : expectHttpScenario;

    it('works from CommonJS: require of every entry point, a real request through it', async () => {
      const ran = await run(process.execPath, ['consumer.cjs'], dir(), 60_000, env);
      expectSuccess('node consumer.cjs', ran);
      const out = JSON.parse(ran.stdout) as ConsumerOutput;
      expectScenario(out);
      expect(out.internalBlocked).toBe(true);
      if (project.framework === 'nest') {
        // A bridge loads its optional peer only when imported (the throttler bridge uses only its
        // types); without @nestjs/terminus the terminus bridge says which peer is missing.
        const withPeers = project.dependencies['@nestjs/terminus'] !== undefined;
        expect(out.optionalPeers).toEqual({
          terminus: withPeers ? 'loaded' : 'peer missing',
          throttler: 'loaded',
        });
      } else {
        expect(out.version).toBe('0.1.0');
      }
    }, 60_000);

    it('works from ESM: import of every entry point, the same exports as CommonJS', async () => {
      const ran = await run(process.execPath, ['consumer.mjs'], dir(), 60_000, env);
      expectSuccess('node consumer.mjs', ran);
      const out = JSON.parse(ran.stdout) as ConsumerOutput;
      expectScenario(out);
      const modules =
        project.framework !== 'nest'
          ? ['core', 'testing', 'redis', 'adapter']
          : projectName === 'nest12'
            ? ['core', 'bw', 'prometheus', 'terminus', 'throttler']
            : ['core', 'bw', 'prometheus'];
      expect(out.sameExports).toEqual(Object.fromEntries(modules.map((m) => [m, true])));
      expect(out.guardAcrossCopies).toBe(true);
    }, 60_000);

    it.each(project.typeChecks.map((r) => [r]))(
      `type-checks a TypeScript consumer of @breakwater/${adapter} with moduleResolution %s`,
      (resolution) => {
        expectSuccess(
          `tsc -p tsconfig.${resolution}.json`,
          typeChecks.get(`${projectName}:${resolution}`)!,
        );
      },
    );
  },
);

describe('pack: timings', () => {
  it('took what it took', () => {
    expect(Object.keys(timings)).toEqual(
      expect.arrayContaining(['build', 'pack', 'npm install (projects in parallel)']),
    );
    process.stdout.write(`\n[reliability] pack timings (ms): ${JSON.stringify(timings)}\n`);
  });
});
