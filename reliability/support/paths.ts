import { join, resolve } from 'node:path';

/** The repository root. */
export const ROOT = resolve(__dirname, '..', '..');

/** A path inside the repository. */
export function repoPath(...segments: string[]): string {
  return join(ROOT, ...segments);
}

/** Whether the long versions of the reliability tests run (`BREAKWATER_LONG=1`). */
export const LONG = process.env.BREAKWATER_LONG === '1';
