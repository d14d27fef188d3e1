/**
 * Finds the TypeScript code blocks of the documentation and turns each into a module.
 *
 * Conventions (see test/docs/README.md):
 * - a block fenced as ```ts is type-checked; ```ts runnable is also run with Node;
 * - a comment line `// declare const app: Express;` in a block is a fill: the test makes it a
 *   real `declare` statement, so a fragment can name what the reader already has.
 */
import { readdirSync, readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';

/** One ```ts block of a markdown file. */
export interface DocBlock {
  /** The markdown file, relative to the repository root. */
  readonly file: string;
  /** The line of the opening fence (1-based): the code starts on the next line. */
  readonly line: number;
  /** Whether the info string says `runnable`. */
  readonly runnable: boolean;
  /** The block's code as written. */
  readonly code: string;
  /** The fills the block declares (`// declare ...` lines), without the comment marker. */
  readonly fills: readonly string[];
}

const FENCE = /^(\s*)```(.*)$/;
const FILL = /^(\s*)\/\/ (declare .*)$/;

/** `file:line` of a block: how failures name it. */
export function blockName(block: Pick<DocBlock, 'file' | 'line'>): string {
  return `${block.file}:${block.line}`;
}

/**
 * The ```ts blocks of one markdown text. Any other fence (```sh, ```json, ```text, a bare ```)
 * is skipped; an unknown word after `ts` is an error, so a typo in `runnable` cannot silently
 * turn a check off.
 */
export function extractBlocks(markdown: string, file: string): DocBlock[] {
  const lines = markdown.split('\n');
  const blocks: DocBlock[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = FENCE.exec(lines[i] ?? '');
    if (open === null) continue;
    const [, indent = '', info = ''] = open;
    let end = i + 1;
    while (end < lines.length && !/^\s*```\s*$/.test(lines[end] ?? '')) end++;
    if (end >= lines.length) throw new Error(`${file}:${i + 1}: code block never closed`);
    const [language, ...flags] = info.trim().split(/\s+/);
    if (language === 'runnable' || (language !== 'ts' && flags.includes('runnable'))) {
      throw new Error(`${file}:${i + 1}: only a ts block can be runnable: \`\`\`${info}`);
    }
    if (language === 'ts' || language === 'typescript') {
      const unknown = flags.filter((flag) => flag !== 'runnable');
      if (unknown.length > 0) {
        throw new Error(`${file}:${i + 1}: unknown code block flag ${unknown.join(' ')}`);
      }
      const body = lines.slice(i + 1, end).map((line) => line.slice(indent.length));
      blocks.push({
        file,
        line: i + 1,
        runnable: flags.includes('runnable'),
        code: body.join('\n'),
        fills: body.flatMap((line) => {
          const fill = FILL.exec(line);
          return fill?.[2] === undefined ? [] : [fill[2]];
        }),
      });
    }
    i = end;
  }
  return blocks;
}

/**
 * The module the test compiles for a block: the code with every fill comment made a real
 * statement in place, so line N of the module is line N of the block.
 */
export function moduleSource(block: DocBlock): string {
  return block.code
    .split('\n')
    .map((line) => line.replace(FILL, '$1$2'))
    .join('\n');
}

/** The documentation files whose blocks are checked, relative to `root`. */
export function docFiles(root: string): string[] {
  const files = ['README.md'];
  for (const name of readdirSync(join(root, 'packages')).sort()) {
    const readme = join('packages', name, 'README.md');
    if (existsSync(join(root, readme))) files.push(readme);
    const docs = join('packages', name, 'docs');
    if (existsSync(join(root, docs))) {
      for (const doc of readdirSync(join(root, docs)).sort()) {
        if (doc.endsWith('.md')) files.push(join(docs, doc));
      }
    }
  }
  return files;
}

/** Every ```ts block of the documentation under `root`. */
export function collectBlocks(root: string): DocBlock[] {
  return docFiles(root).flatMap((file) =>
    extractBlocks(readFileSync(join(root, file), 'utf8'), file),
  );
}

/** The bare module specifiers a block imports (`express`, `@nestjs/common`, `node:fs`, ...). */
export function importedPackages(code: string): string[] {
  const names = new Set<string>();
  for (const match of code.matchAll(/\bfrom\s+'([^'.][^']*)'|\bimport\s+'([^'.][^']*)'/g)) {
    const specifier = match[1] ?? match[2] ?? '';
    if (specifier.startsWith('node:')) continue;
    const parts = specifier.split('/');
    names.add(specifier.startsWith('@') ? parts.slice(0, 2).join('/') : (parts[0] ?? specifier));
  }
  return [...names];
}

/** What a runnable block says it prints, from the comments on and after its console calls. */
export interface Expectation {
  /** The line in the markdown file. */
  readonly line: number;
  /** A log line (`// [CIRCUIT] ...`) that must appear as written. */
  readonly text?: string;
  /** The property names of a value (`// { allowed: true, limit: 100 }`) that must be printed. */
  readonly keys?: readonly string[];
}

/**
 * The output a block describes: a comment on a line that calls `console`, and the comment lines
 * right after it, when it shows an object (`{ key: ... }`, `[{ key: ... }]`: its keys must be
 * printed, values may differ) or a tagged log line (`[CIRCUIT] ...`: printed as written).
 */
export function expectedOutput(block: DocBlock): Expectation[] {
  const lines = block.code.split('\n');
  const expectations: Expectation[] = [];
  lines.forEach((line, i) => {
    if (!/\bconsole\.\w+\(|^\s*\)/.test(line)) return;
    let text = /\/\/ (.*)$/.exec(line)?.[1] ?? '';
    for (let j = i + 1; /^\s*\/\/ /.test(lines[j] ?? '') && /^\[?\{|^$/.test(text.trim()); j++) {
      text += ` ${(lines[j] ?? '').replace(/^\s*\/\/ /, '')}`;
    }
    text = text.trim();
    const where = block.line + i + 1;
    if (/^\[[A-Z]+\] /.test(text)) expectations.push({ line: where, text });
    else if (/^\[?\{/.test(text)) {
      const keys = [...text.matchAll(/([A-Za-z_]\w*):/g)].map((match) => match[1] ?? '');
      expectations.push({ line: where, keys });
    }
  });
  return expectations;
}

/** The expectations of `block` that `output` does not meet, as `<doc>:<line> ...` messages. */
export function unmetExpectations(block: DocBlock, output: string): string[] {
  return expectedOutput(block).flatMap(({ line, text, keys }) => {
    const missing =
      text !== undefined
        ? [text].filter((expected) => !output.includes(expected))
        : (keys ?? []).filter((key) => !output.includes(`${key}:`));
    return missing.length === 0
      ? []
      : [`${block.file}:${line} says it prints ${missing.join(', ')}`];
  });
}
