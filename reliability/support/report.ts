import { mkdirSync, writeFileSync } from 'node:fs';
import { repoPath } from './paths';

/** A row of measured figures. */
export type Figures = Record<string, string | number | boolean>;

/**
 * Prints measured figures as a table and writes them to `test-results/reliability/<name>.json`
 * (git-ignored), so a run leaves its numbers behind for the README.
 */
export function report(name: string, rows: Figures[]): void {
  const dir = repoPath('test-results', 'reliability');
  mkdirSync(dir, { recursive: true });
  writeFileSync(`${dir}/${name}.json`, `${JSON.stringify(rows, null, 2)}\n`);
  const columns = [...new Set(rows.flatMap((row) => Object.keys(row)))];
  const lines = [
    `| ${columns.join(' | ')} |`,
    `| ${columns.map(() => '---').join(' | ')} |`,
    ...rows.map((row) => `| ${columns.map((c) => String(row[c] ?? '')).join(' | ')} |`),
  ];
  process.stdout.write(`\n[reliability] ${name}\n${lines.join('\n')}\n`);
}
