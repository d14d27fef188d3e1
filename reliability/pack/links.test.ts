import { describe, expect, it } from '@jest/globals';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { posix } from 'node:path';
import { repoPath } from '../support/paths';
import {
  anchors,
  checkAbsolute,
  checkRepoPath,
  markdownLinks,
  splitAnchor,
  type LinkCheck,
} from './markdown-links';

/**
 * Every link in the markdown a package publishes works where it is read: on the npm registry a
 * relative link resolves only inside that package's tarball, so it must name a file the package
 * ships (`files`); anything else is an absolute link, and one into this repository must name a
 * file and heading that exist. The root README is read on GitHub only: its relative links must
 * resolve in the repository.
 */

interface Manifest {
  name: string;
  private?: boolean;
  files?: string[];
}

/** npm ships these whatever `files` says. */
const ALWAYS_SHIPPED = ['package.json', 'README.md', 'LICENSE'];

const published = readdirSync(repoPath('packages'))
  .filter((dir) => existsSync(repoPath('packages', dir, 'package.json')))
  .map((dir) => ({
    dir,
    manifest: JSON.parse(
      readFileSync(repoPath('packages', dir, 'package.json'), 'utf8'),
    ) as Manifest,
  }))
  .filter(({ manifest }) => manifest.private !== true);

/** The markdown files of a package that its `files` ship, relative to the package. */
function shippedMarkdown(dir: string, files: readonly string[]): string[] {
  const found: string[] = [];
  const walk = (path: string): void => {
    const full = repoPath('packages', dir, path);
    if (!existsSync(full)) return;
    if (statSync(full).isDirectory()) {
      for (const entry of readdirSync(full)) walk(posix.join(path, entry));
    } else if (path.endsWith('.md')) {
      found.push(path);
    }
  };
  for (const entry of new Set([...ALWAYS_SHIPPED, ...files])) walk(entry);
  return found.sort();
}

function isShipped(path: string, files: readonly string[]): boolean {
  return [...ALWAYS_SHIPPED, ...files].some(
    (entry) => path === entry || path.startsWith(`${entry.replace(/\/$/, '')}/`),
  );
}

/** The problems of every link in one file: `file:line target: problem`. */
function problems(path: string, check: LinkCheck): string[] {
  const text = readFileSync(repoPath(path), 'utf8');
  const own = anchors(text);
  return markdownLinks(text).flatMap(({ line, target }) => {
    let problem: string | undefined;
    if (target.startsWith('#')) {
      const anchor = decodeURIComponent(target.slice(1));
      problem = own.has(anchor) ? undefined : `no heading for ${target} in this file`;
    } else if (/^[a-z][a-z0-9+.-]*:/i.test(target)) {
      problem = target.startsWith('mailto:') ? undefined : checkAbsolute(target);
    } else {
      problem = check(target);
    }
    return problem === undefined ? [] : [`${path}:${line} ${target}: ${problem}`];
  });
}

describe('links: published markdown resolves on the registry', () => {
  it('finds the published packages', () => {
    expect(published.map(({ dir }) => dir)).toEqual(
      expect.arrayContaining(['core', 'express', 'koa', 'nestjs', 'prometheus', 'redis']),
    );
  });

  it.each(published.map(({ dir, manifest }) => [dir, manifest.files ?? []] as const))(
    '@breakwater/%s: every link is absolute, an anchor, or a file the package ships',
    (dir, files) => {
      const markdown = shippedMarkdown(dir, files);
      expect(markdown).toContain('README.md');
      const found = markdown.flatMap((file) =>
        problems(`packages/${dir}/${file}`, (target) => {
          const [path, anchor] = splitAnchor(target);
          const inPackage = posix.normalize(posix.join(posix.dirname(file), path));
          if (inPackage.startsWith('..'))
            return 'leaves the package: dead on the registry (use an absolute link)';
          if (!isShipped(inPackage, files))
            return `${inPackage} is not in "files": dead on the registry`;
          return checkRepoPath(`packages/${dir}/${inPackage}`, anchor);
        }),
      );
      expect(found).toEqual([]);
    },
  );
});

describe('links: the repository README', () => {
  it('resolves every relative link and anchor in the repository', () => {
    const found = problems('README.md', (target) => {
      const [path, anchor] = splitAnchor(target);
      return checkRepoPath(path, anchor);
    });
    expect(found).toEqual([]);
  });
});

describe('links: the checker itself', () => {
  it('finds links outside code, across lines, and GitHub anchors', () => {
    const text = [
      '# Rate `limit(req)` and *more*',
      'See [the\ndocs](docs/a.md#x), ![img](i.png) and `[not](a link)`.',
      '```md',
      '[inside](code.md)',
      '```',
      '[ref]: https://example.com/r',
      '## Rate `limit(req)` and *more*',
    ].join('\n');
    expect(markdownLinks(text)).toEqual([
      { line: 2, target: 'docs/a.md#x' },
      { line: 3, target: 'i.png' },
      { line: 7, target: 'https://example.com/r' },
    ]);
    expect([...anchors(text)]).toEqual(['rate-limitreq-and-more', 'rate-limitreq-and-more-1']);
  });

  it('flags a dead file, a dead heading and a link outside the repository tree', () => {
    expect(checkRepoPath('packages/core/README.md', undefined)).toBeUndefined();
    expect(checkRepoPath('packages/core/NOPE.md', undefined)).toMatch(/no such file/);
    expect(checkRepoPath('packages/core/README.md', 'no-such-heading')).toMatch(/no heading/);
    expect(
      checkAbsolute('https://github.com/breakwater-js/breakwater/blob/main/packages/nope.md'),
    ).toMatch(/no such file/);
    expect(checkAbsolute('https://example.com/anything')).toBeUndefined();
  });
});
