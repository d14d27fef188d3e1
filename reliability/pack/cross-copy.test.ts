import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { execFile } from 'node:child_process';
import {
  cpSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { repoPath } from '../support/paths';

/**
 * The dual-package hazard, on the built packages: an adapter recognises a breaker, registry,
 * limiter or load shedder made by another copy of @breakwater/core (its CommonJS build when the
 * adapter runs as ESM; a second installed version nested under the adapter) and serves real
 * requests with it. The packages are built into a private directory (never `packages/*\/dist`,
 * which the pack test rebuilds) and assembled into throwaway projects, with the framework
 * packages linked from the workspace.
 */

const run = promisify(execFile);
const TSUP = repoPath('node_modules', '.bin', 'tsup');
const ADAPTERS = ['express', 'koa'] as const;
type Adapter = (typeof ADAPTERS)[number];
type Built = 'core' | Adapter | 'nestjs';
const NEST_PEERS = [
  '@nestjs/common',
  '@nestjs/core',
  '@nestjs/platform-express',
  'reflect-metadata',
  'rxjs',
];

let work: string;

/** Builds a package (ESM and CommonJS, no declarations) into `work/build/<name>`. */
async function build(name: Built): Promise<void> {
  await run(TSUP, ['--out-dir', join(work, 'build', name), '--no-dts', '--no-sourcemap'], {
    cwd: repoPath('packages', name),
    timeout: 60_000,
  });
}

/** Installs the built package into `modules` (a node_modules folder), as npm would lay it out. */
function install(modules: string, name: Built, version?: string): string {
  const dir = join(modules, '@breakwater', name);
  mkdirSync(dir, { recursive: true });
  const manifest = JSON.parse(readFileSync(repoPath('packages', name, 'package.json'), 'utf8')) as {
    version: string;
  };
  if (version !== undefined) manifest.version = version;
  writeFileSync(join(dir, 'package.json'), JSON.stringify(manifest, null, 2));
  cpSync(join(work, 'build', name), join(dir, 'dist'), { recursive: true });
  return dir;
}

/** A project with the three adapters; `nested`: a second version of core under each adapter. */
function project(name: string, nested: boolean): string {
  const root = join(work, name);
  const modules = join(root, 'node_modules');
  install(modules, 'core');
  for (const adapter of [...ADAPTERS, 'nestjs'] as const) {
    const dir = install(modules, adapter);
    if (nested) install(join(dir, 'node_modules'), 'core', '0.1.1');
  }
  // The frameworks as the workspace installed them (resolved through their real paths).
  symlinkSync(repoPath('packages', 'express', 'node_modules', 'express'), join(modules, 'express'));
  symlinkSync(repoPath('packages', 'koa', 'node_modules', 'koa'), join(modules, 'koa'));
  mkdirSync(join(modules, '@nestjs'));
  for (const peer of NEST_PEERS) {
    symlinkSync(repoPath('packages', 'nestjs', 'node_modules', peer), join(modules, peer));
  }
  writeFileSync(join(root, 'package.json'), JSON.stringify({ name, private: true }));
  writeFileSync(join(root, 'app.mjs'), APP);
  writeFileSync(join(root, 'nest.mjs'), NEST_APP);
  return root;
}

/**
 * The app: objects made by the app's copy of core (`require`: the CommonJS build; `import`: the
 * ESM build), handed to the ESM build of the adapter, then real requests on loopback.
 */
const APP = String.raw`
import { createRequire } from 'node:module';
import { once } from 'node:events';
import { pathToFileURL } from 'node:url';
const require = createRequire(import.meta.url);
const [adapterName, load] = process.argv.slice(2);
const core = load === 'require' ? require('@breakwater/core') : await import('@breakwater/core');
const adapter = await import('@breakwater/' + adapterName);

// Which copy of core the adapter runs on, and whether it is another module than the app's.
const adapterRequire = createRequire(require.resolve('@breakwater/' + adapterName));
const adapterCoreFile = adapterRequire.resolve('@breakwater/core').replace(/index\.cjs$/, 'index.js');
const adapterCore = await import(pathToFileURL(adapterCoreFile).href);

const breaker = new core.CircuitBreaker({ name: 'upstream' });
const registry = new core.CircuitBreakerRegistry();
const limiter = new core.RateLimiter({ name: 'api', rate: '2/d' });
const shedder = new core.LoadShedder({
  name: 'shed',
  limit: { algorithm: 'aimd', initialLimit: 1, minLimit: 1, maxLimit: 1 },
});
let release;
const gate = new Promise((resolve) => (release = resolve));

const mounted = {
  '/breaker': adapter.circuitBreaker(breaker),
  '/routes/7': adapter.circuitBreaker({ registry }),
  '/limited': adapter.rateLimit(limiter),
  '/slow': adapter.loadShed(shedder),
};
const health = adapter.healthRoutes({ registry, limiters: [limiter], loadShedders: [shedder] });
let server;
if (adapterName === 'express') {
  const app = (await import('express')).default();
  app.use(health);
  for (const [path, middleware] of Object.entries(mounted)) {
    app.get(path, middleware, async (req, res) => {
      if (path === '/slow') await gate;
      res.send('ok');
    });
  }
  server = app.listen(0, '127.0.0.1');
} else {
  const Koa = (await import('koa')).default;
  const app = new Koa();
  app.use(health);
  app.use(async (ctx, next) => {
    const middleware = mounted[ctx.path];
    if (middleware === undefined) return next();
    await middleware(ctx, async () => {
      if (ctx.path === '/slow') await gate;
      ctx.body = 'ok';
    });
  });
  server = app.listen(0, '127.0.0.1');
}
await once(server, 'listening');
const base = 'http://127.0.0.1:' + server.address().port;
const get = async (path) => {
  const response = await fetch(base + path);
  await response.text();
  return response.status;
};

const seen = {};
seen.breaker = [await get('/breaker')];
breaker.open();
seen.breaker.push(await get('/breaker'));
breaker.reset();
seen.breaker.push(await get('/breaker'));
seen.routes = [await get('/routes/7')];
seen.routeBreakers = registry.list().length;
seen.limited = [await get('/limited'), await get('/limited'), await get('/limited')];
const first = get('/slow');
while (shedder.snapshot().inFlight < 1) await new Promise((resolve) => setTimeout(resolve, 5));
seen.shed = await get('/slow');
release();
seen.slow = await first;
const listed = await fetch(base + '/health/circuit-breakers').then((r) => r.json());
seen.health = (Array.isArray(listed) ? listed : listed.breakers ?? []).length;
health.close();
server.close();
await limiter.close();
shedder.close();
console.log(JSON.stringify({
  separate: adapterCore.CircuitBreaker !== core.CircuitBreaker,
  adapterCore: adapterCoreFile.slice(process.cwd().length),
  ...seen,
}));
`;

/**
 * A Nest app (plain ESM, decorators applied by hand) whose `BreakwaterModule` is given a registry
 * and a limiter of the app's copy of core; the breaker's `CircuitOpenError` comes from that copy.
 */
const NEST_APP = String.raw`
import 'reflect-metadata';
import { createRequire } from 'node:module';
const require = createRequire(import.meta.url);
const load = process.argv[2];
const core = load === 'require' ? require('@breakwater/core') : await import('@breakwater/core');
const { Controller, Get, Module } = await import('@nestjs/common');
const { NestFactory, APP_FILTER, APP_GUARD } = await import('@nestjs/core');
const nest = await import('@breakwater/nestjs');

const registry = new core.CircuitBreakerRegistry();
const breaker = registry.get('upstream');
const limiter = new core.RateLimiter({ name: 'api', rate: '2/d' });

class PlantController {
  guarded() {
    return 'ok';
  }
  limited() {
    return 'ok';
  }
}
const decorate = (decorators, key) =>
  Object.defineProperty(
    PlantController.prototype,
    key,
    Reflect.decorate(decorators, PlantController.prototype, key,
      Object.getOwnPropertyDescriptor(PlantController.prototype, key)),
  );
decorate([nest.CircuitBreaker('upstream'), Get('guarded')], 'guarded');
decorate([nest.RateLimit({ limiter: 'api' }), Get('limited')], 'limited');
Reflect.decorate([Controller('plants')], PlantController);
class AppModule {}
Reflect.decorate([Module({
  imports: [nest.BreakwaterModule.forRoot({ breakers: registry, limiters: { api: limiter }, health: {} })],
  controllers: [PlantController],
  providers: [
    { provide: APP_GUARD, useClass: nest.RateLimitGuard },
    { provide: APP_FILTER, useClass: nest.BreakwaterExceptionFilter },
  ],
})], AppModule);

const app = await NestFactory.create(AppModule, { logger: false, abortOnError: false });
await app.listen(0, '127.0.0.1');
const base = 'http://127.0.0.1:' + app.getHttpServer().address().port;
const get = async (path) => {
  const response = await fetch(base + path);
  await response.text();
  return response.status;
};
const seen = { breaker: [await get('/plants/guarded')] };
breaker.open();
seen.breaker.push(await get('/plants/guarded'));
breaker.reset();
seen.breaker.push(await get('/plants/guarded'));
seen.limited = [await get('/plants/limited'), await get('/plants/limited'), await get('/plants/limited')];
const listed = await fetch(base + '/health/circuit-breakers').then((r) => r.json());
seen.health = (Array.isArray(listed) ? listed : listed.breakers ?? []).map((b) => b.name);
await app.close();
await limiter.close();
console.log(JSON.stringify(seen));
`;

/** Runs a script of a project; what it printed last, parsed. */
async function runApp(root: string, args: readonly string[]): Promise<unknown> {
  // Without pnpm's NODE_PATH (the workspace store), the project resolves only what it holds.
  const { NODE_PATH: _store, ...env } = process.env;
  try {
    const { stdout } = await run(process.execPath, args, {
      cwd: root,
      env,
      timeout: 20_000,
    });
    return JSON.parse(stdout.trim().split('\n').pop()!) as unknown;
  } catch (error) {
    const failed = error as { stderr?: string; stdout?: string };
    throw new Error(`${args.join(' ')} failed:\n${failed.stdout ?? ''}\n${failed.stderr ?? ''}`);
  }
}

const EXPECTED = {
  separate: true,
  breaker: [200, 503, 200],
  routes: [200],
  routeBreakers: 1,
  limited: [200, 200, 429],
  shed: 503,
  slow: 200,
  health: 1,
};

let dualFormat: string;
let twoVersions: string;

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'breakwater-cross-copy-'));
  await build('core');
  await Promise.all([...ADAPTERS, 'nestjs' as const].map((adapter) => build(adapter)));
  dualFormat = project('dual-format', false);
  twoVersions = project('two-versions', true);
}, 60_000);

afterAll(() => {
  if (work !== undefined) rmSync(work, { recursive: true, force: true });
});

describe.each(ADAPTERS)('@breakwater/%s (ESM build)', (adapter) => {
  it('serves with a breaker, registry, limiter and load shedder of the CommonJS build of core', async () => {
    await expect(runApp(dualFormat, ['app.mjs', adapter, 'require'])).resolves.toEqual({
      ...EXPECTED,
      adapterCore: '/node_modules/@breakwater/core/dist/index.js',
    });
  });

  it('serves with objects of a second installed version of core', async () => {
    await expect(runApp(twoVersions, ['app.mjs', adapter, 'import'])).resolves.toEqual({
      ...EXPECTED,
      adapterCore: `/node_modules/@breakwater/${adapter}/node_modules/@breakwater/core/dist/index.js`,
    });
  });
});

describe('@breakwater/nestjs (ESM build)', () => {
  const expected = { breaker: [200, 503, 200], limited: [200, 200, 429], health: ['upstream'] };

  it('BreakwaterModule takes a registry and limiters of the CommonJS build of core', async () => {
    await expect(runApp(dualFormat, ['nest.mjs', 'require'])).resolves.toEqual(expected);
  });

  it('BreakwaterModule takes a registry and limiters of a second installed version', async () => {
    await expect(runApp(twoVersions, ['nest.mjs', 'import'])).resolves.toEqual(expected);
  });
});
