import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { rmSync } from 'node:fs';
import {
  blockName,
  collectBlocks,
  extractBlocks,
  moduleSource,
  unmetExpectations,
  type DocBlock,
} from './extract';
import {
  COMPILERS,
  RESOLUTIONS,
  ROOT,
  buildPackages,
  createProject,
  describeDiagnostic,
  linkDependencies,
  runBlock,
  typeCheck,
  writeBlocks,
  type Compiler,
  type Ran,
  type Resolution,
} from './project';

/**
 * Docs as tests: every ```ts block of the README, of each package's README and of each package's
 * docs folder is type-checked as its own module against the built packages, with TypeScript 5.9
 * and 7, under `nodenext` and `bundler` resolution; the blocks marked `runnable` are run with Node.
 * Conventions: test/docs/README.md.
 */

const blocks = collectBlocks(ROOT);
const runnable = blocks.filter((block) => block.runnable);

// A deliberately wrong document: the harness must report its blocks, or it could pass silently.
const FENCE = '```';
const FIXTURE = [
  '# Fixture',
  '',
  `${FENCE}ts`,
  '// declare const given: number;',
  "const count: number = 'three';",
  `${FENCE}`,
  '',
  `${FENCE}ts runnable`,
  "throw new Error('this block fails');",
  `${FENCE}`,
].join('\n');
const [wrongBlock, failingBlock] = extractBlocks(FIXTURE, 'fixture.md') as [DocBlock, DocBlock];

let project = '';
/** Errors by block name, each `<compiler> <resolution>: <doc>:<line>:<col> <message>`. */
const errors = new Map<string, string[]>();
/** Errors in no block's file (a bad option, a crash of the compiler). */
const unattributed: string[] = [];
const compilerRuns = new Map<string, Ran>();
const timings: Record<string, number> = {};

/** Whether every compiler reported the fixture's type error (so it got past parsing). */
function typeChecked(): boolean {
  return (errors.get(blockName(wrongBlock)) ?? []).length === compilerRuns.size;
}

async function check(files: Map<string, DocBlock>, compiler: Compiler, resolution: Resolution) {
  const { ran, diagnostics } = await typeCheck(project, compiler, resolution);
  compilerRuns.set(`${compiler} ${resolution}`, ran);
  timings[`${compiler} ${resolution}`] = ran.ms;
  for (const diagnostic of diagnostics) {
    const block = files.get(diagnostic.file);
    const text = `${compiler} ${resolution}: ${
      block === undefined
        ? `${diagnostic.file} ${diagnostic.message}`
        : describeDiagnostic(block, diagnostic)
    }`;
    if (block === undefined) unattributed.push(text);
    else errors.set(blockName(block), [...(errors.get(blockName(block)) ?? []), text]);
  }
}

beforeAll(async () => {
  project = createProject();
  const all = [...blocks, wrongBlock, failingBlock];
  const missing = linkDependencies(project, all);
  if (missing.length > 0) unattributed.push(`packages not installed: ${missing.join(', ')}`);
  const started = performance.now();
  await buildPackages(project);
  timings.build = Math.round(performance.now() - started);
  const files = writeBlocks(project, all);
  for (const compiler of Object.keys(COMPILERS) as Compiler[]) {
    await Promise.all(RESOLUTIONS.map((resolution) => check(files, compiler, resolution)));
  }
}, 150_000);

afterAll(() => {
  process.stdout.write(`docs test timings (ms): ${JSON.stringify(timings)}\n`);
  if (project !== '' && process.env.BREAKWATER_KEEP_DOCS_PROJECT !== '1') {
    rmSync(project, { recursive: true, force: true });
  }
});

describe('documentation code blocks', () => {
  it('finds the blocks of every document', () => {
    expect(blocks.length).toBeGreaterThan(50);
    expect(new Set(blocks.map((block) => block.file)).size).toBeGreaterThan(8);
  });

  it('runs every compiler to the end, with no error outside the blocks', () => {
    for (const [label, ran] of compilerRuns) {
      // tsc exits with 0 (no errors), 1 or 2 (errors reported); no code means it was killed.
      expect({ label, killed: ran.code === null }).toEqual({ label, killed: false });
    }
    expect(compilerRuns.size).toBe(Object.keys(COMPILERS).length * RESOLUTIONS.length);
    expect(unattributed).toEqual([]);
  });

  it.each(blocks.map((block) => [blockName(block), block] as const))('type-checks %s', (name) => {
    const found = errors.get(name) ?? [];
    if (found.length > 0) throw new Error(`${name} does not compile:\n${found.join('\n')}`);
    // tsc reports no type error while any file has a syntax error: the fixture's type error
    // proves the blocks were type-checked, not only parsed.
    if (!typeChecked()) throw new Error('not type-checked: another block has a syntax error');
  });

  const env: NodeJS.ProcessEnv = {};
  if (process.env.BREAKWATER_TEST_REDIS_URL !== undefined) {
    env.REDIS_URL = process.env.BREAKWATER_TEST_REDIS_URL;
  }

  it.each(runnable.map((block) => [blockName(block), block] as const))(
    'runs %s',
    async (name, block) => {
      const ran = await runBlock(project, block, env);
      const out = `${name} (exit ${ran.code ?? ran.signal}, ${ran.ms} ms)\n${ran.stdout}\n${ran.stderr}`;
      if (ran.served !== undefined && ran.served !== 200) {
        throw new Error(`${name} served ${ran.served}: ${out}`);
      }
      // A server stopped by the SIGTERM it was sent ends by it, unless it handles the signal: then
      // its handler must close everything, so that the process exits by itself.
      const handlesTerm = block.code.includes("process.on('SIGTERM'");
      const stopped = ran.served !== undefined && ran.signal === 'SIGTERM' && !handlesTerm;
      if (ran.code !== 0 && !stopped) throw new Error(`${name} failed: ${out}`);
      if (/Unhandled|Error\b|Warning:/.test(ran.stderr)) {
        throw new Error(`${name} wrote an error: ${out}`);
      }
      const unmet = unmetExpectations(block, ran.stdout + ran.stderr);
      if (unmet.length > 0) throw new Error(`${unmet.join('\n')}, but it printed: ${out}`);
    },
  );
});

describe('the harness', () => {
  it('reports a wrong block by its document and line, for every compiler and resolution', () => {
    const found = errors.get(blockName(wrongBlock)) ?? [];
    expect(found).toHaveLength(Object.keys(COMPILERS).length * RESOLUTIONS.length);
    for (const error of found) {
      expect(error).toMatch(/^TypeScript [\d.]+ (nodenext|bundler): fixture\.md:5:7 TS2322: /);
    }
  });

  it('makes each fill a real declaration on its own line', () => {
    expect(wrongBlock.fills).toEqual(['declare const given: number;']);
    expect(moduleSource(wrongBlock).split('\n')).toEqual([
      'declare const given: number;',
      "const count: number = 'three';",
    ]);
  });

  it('refuses a flag it does not know, and runnable on anything but ts', () => {
    expect(() => extractBlocks(`${FENCE}ts runable\nlet a = 1;\n${FENCE}`, 'typo.md')).toThrow(
      'typo.md:1: unknown code block flag runable',
    );
    expect(() => extractBlocks(`${FENCE}runnable\nlet a = 1;\n${FENCE}`, 'bare.md')).toThrow(
      'bare.md:1: only a ts block can be runnable',
    );
    expect(() => extractBlocks(`${FENCE}ts\nlet a = 1;\n`, 'open.md')).toThrow(
      'open.md:1: code block never closed',
    );
  });

  it('holds a runnable block to the output its comments show', () => {
    const [block] = extractBlocks(
      [
        `${FENCE}ts runnable`,
        'console.log({ allowed: true, retryAfterMs: 0 }); // { allowed: true, retryAfter: 0 }',
        "console.log('[CIRCUIT] a closed -> open'); // [CIRCUIT] a closed -> open (1 failure)",
        `${FENCE}`,
      ].join('\n'),
      'output.md',
    ) as [DocBlock];
    const printed = '{ allowed: true, retryAfterMs: 0 }\n[CIRCUIT] a closed -> open\n';
    expect(unmetExpectations(block, printed)).toEqual([
      'output.md:2 says it prints retryAfter',
      'output.md:3 says it prints [CIRCUIT] a closed -> open (1 failure)',
    ]);
    expect(unmetExpectations(block, printed.replace('retryAfterMs', 'retryAfter'))).toHaveLength(1);
  });

  it('fails a runnable block that throws', async () => {
    const ran = await runBlock(project, failingBlock, {});
    expect(ran.code).toBe(1);
    expect(ran.stderr).toContain('this block fails');
    expect(ran.stderr).toContain('fixture.md:9:7'); // the stack names the document's line
  });
});
