import { existsSync, readFileSync, statSync } from 'node:fs';
import { posix } from 'node:path';
import { repoPath } from '../support/paths';

/**
 * Links in markdown as a reader meets them on GitHub and on the npm registry: what they are,
 * where they point, and whether that place exists.
 */

/** Where the repository lives; links to its files at `main` are checked against this checkout. */
export const REPOSITORY = 'https://github.com/breakwater-js/breakwater';

/** One link or image in a markdown file. */
export interface MarkdownLink {
  /** 1-based line of the link. */
  line: number;
  /** The destination as written. */
  target: string;
}

/** The text with fenced code blocks (and inline code spans, unless kept) blanked out. */
function withoutCode(text: string, keepInline = false): string {
  const lines = text.split('\n');
  let fence: string | undefined;
  return lines
    .map((line) => {
      const opener = /^\s{0,3}(`{3,}|~{3,})/.exec(line)?.[1];
      if (fence !== undefined) {
        if (opener !== undefined && opener[0] === fence[0] && opener.length >= fence.length)
          fence = undefined;
        return '';
      }
      if (opener !== undefined) {
        fence = opener;
        return '';
      }
      return keepInline ? line : line.replace(/(`+)[^`]*?\1/g, '');
    })
    .join('\n');
}

/** Every inline link, image, reference definition and HTML `href`/`src` outside code. */
export function markdownLinks(text: string): MarkdownLink[] {
  const prose = withoutCode(text);
  const links: MarkdownLink[] = [];
  const lineOf = (index: number): number => prose.slice(0, index).split('\n').length;
  const patterns = [
    // [text](target "title") and ![alt](target), the text possibly spanning lines
    /!?\[(?:[^\][]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g,
    // [id]: target
    /^[ \t]{0,3}\[[^\]]+\]:[ \t]*<?(\S+?)>?(?:\s|$)/gm,
    /\b(?:href|src)\s*=\s*["']([^"']+)["']/g,
  ];
  for (const pattern of patterns) {
    for (const match of prose.matchAll(pattern)) {
      links.push({ line: lineOf(match.index), target: match[1]! });
    }
  }
  return links.sort((a, b) => a.line - b.line);
}

/** GitHub's anchor for a heading text (github-slugger's rules). */
export function slug(heading: string): string {
  return heading
    .replace(/!?\[([^\]]*)\]\([^)]*\)/g, '$1')
    .replace(/`|\*\*|__/g, '')
    .replace(/<[^>]+>/g, '')
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{M}\p{N}\p{Pc} -]/gu, '')
    .replace(/ /g, '-');
}

/** The anchors GitHub gives a markdown file's headings (repeats get `-1`, `-2`, ...). */
export function anchors(text: string): Set<string> {
  const seen = new Map<string, number>();
  const result = new Set<string>();
  for (const line of withoutCode(text, true).split('\n')) {
    const heading = /^\s{0,3}#{1,6}\s+(.*?)(?:\s+#+)?\s*$/.exec(line)?.[1];
    if (heading === undefined) continue;
    const base = slug(heading);
    const count = seen.get(base) ?? 0;
    seen.set(base, count + 1);
    result.add(count === 0 ? base : `${base}-${count}`);
  }
  for (const match of text.matchAll(/<a\s+(?:name|id)=["']([^"']+)["']/g)) result.add(match[1]!);
  return result;
}

/** A problem with one link, or `undefined` when the place it names exists. */
export type LinkCheck = (target: string) => string | undefined;

/**
 * Checks a link to a file of this checkout (`path` relative to the repository root): the file or
 * folder exists and, for a markdown file, the anchor is one of its headings.
 */
export function checkRepoPath(path: string, anchor: string | undefined): string | undefined {
  const normalized = posix.normalize(path).replace(/\/$/, '');
  if (normalized.startsWith('..')) return `points outside the repository (${path})`;
  const file = repoPath(normalized);
  if (!existsSync(file)) return `no such file in the repository: ${normalized}`;
  if (anchor === undefined || anchor === '') return undefined;
  const markdown = statSync(file).isDirectory() ? posix.join(normalized, 'README.md') : normalized;
  if (!markdown.endsWith('.md')) return undefined;
  if (!existsSync(repoPath(markdown))) return `no README.md in ${normalized} for #${anchor}`;
  const known = anchors(readFileSync(repoPath(markdown), 'utf8'));
  return known.has(decodeURIComponent(anchor))
    ? undefined
    : `no heading for #${anchor} in ${markdown}`;
}

/**
 * Checks an absolute link: one into this repository at `main` (`/blob/main/...`,
 * `/tree/main/...`) must name an existing file and heading; other http(s) links pass.
 */
export function checkAbsolute(target: string): string | undefined {
  if (!/^https?:\/\//.test(target)) return `neither http(s), #anchor nor relative: ${target}`;
  if (!target.startsWith(`${REPOSITORY}/`)) return undefined;
  const match = /^\/(?:blob|tree)\/main\/([^#?]*)(?:#(.*))?$/.exec(target.slice(REPOSITORY.length));
  if (match === null) return undefined; // issues, releases, the repository page
  return checkRepoPath(match[1]!, match[2]);
}

/** Splits `path#anchor`. */
export function splitAnchor(target: string): [string, string | undefined] {
  const at = target.indexOf('#');
  return at === -1 ? [target, undefined] : [target.slice(0, at), target.slice(at + 1)];
}
