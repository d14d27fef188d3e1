import type { Environment } from './env';
import type { Case, ExternalResult, MemoryResult, Result, TimedResult } from './harness';

/** A case after its run: the result, or the error that stopped it. */
export interface Measured {
  group: string;
  /** Position of the group and of the case in it, for ordering the output. */
  order: [number, number];
  case: Case;
  result?: Result;
  error?: string;
  /** Not matched by --filter; run because a selected case compares with it. */
  referenceOnly: boolean;
}

export interface EvaluatedComparison {
  vs: string;
  vsLabel: string;
  /** Undefined when the reference did not run or failed. */
  ratio: number | undefined;
  max: number | undefined;
  /** A minimum ratio (measures where more is better). */
  min: number | undefined;
  met: boolean | undefined;
}

/** Full id of a case: `group/id`. */
export function caseKey(group: string, id: string): string {
  return `${group}/${id}`;
}

function resolveVs(group: string, vs: string): string {
  return vs.includes('/') ? vs : caseKey(group, vs);
}

/** The comparisons of a case: its own list, or the group's baseline when it names none. */
export function comparisonsOf(
  m: Measured,
  all: readonly Measured[],
): { vs: string; max?: number; min?: number }[] {
  if (m.case.compare) return m.case.compare.map((c) => ({ ...c, vs: resolveVs(m.group, c.vs) }));
  if (m.case.baseline) return [];
  const baseline = all.find((o) => o.group === m.group && o.case.baseline);
  return baseline ? [{ vs: caseKey(baseline.group, baseline.case.id) }] : [];
}

function measureOf(result: Result | undefined): number | undefined {
  if (!result) return undefined;
  if (result.kind === 'external') return result.value;
  return result.kind === 'timed' ? result.nsPerOp : result.bytesPerInstance;
}

export function evaluate(m: Measured, all: readonly Measured[]): EvaluatedComparison[] {
  const byKey = new Map(all.map((o) => [caseKey(o.group, o.case.id), o]));
  return comparisonsOf(m, all).map(({ vs, max, min }) => {
    const ref = byKey.get(vs);
    const ours = measureOf(m.result);
    const theirs = measureOf(ref?.result);
    const ratio =
      ours === undefined || theirs === undefined || theirs <= 0 ? undefined : ours / theirs;
    return {
      vs,
      vsLabel: ref?.case.label ?? vs,
      ratio,
      max,
      min,
      met:
        ratio === undefined
          ? undefined
          : max !== undefined
            ? ratio <= max && (min === undefined || ratio >= min)
            : min !== undefined
              ? ratio >= min
              : undefined,
    };
  });
}

/** Absolute targets of a case (ns/op, bytes, timers) with whether each is met. */
export function absoluteTargets(m: Measured): { text: string; met: boolean | undefined }[] {
  const c = m.case;
  const r = m.result;
  const out: { text: string; met: boolean | undefined }[] = [];
  if ((c.kind === 'async' || c.kind === 'sync') && c.maxNs !== undefined) {
    out.push({
      text: `< ${c.maxNs} ns`,
      met: r?.kind === 'timed' ? r.nsPerOp < c.maxNs : undefined,
    });
  }
  if (c.kind === 'memory') {
    const mem = r?.kind === 'memory' ? r : undefined;
    if (c.maxBytes !== undefined) {
      out.push({
        text: `<= ${c.maxBytes} B`,
        met: mem ? mem.bytesPerInstance <= c.maxBytes : undefined,
      });
    }
    if (c.maxTimers !== undefined) {
      out.push({
        text: c.maxTimers === 0 ? 'no timers' : `<= ${c.maxTimers} timers`,
        met: mem ? mem.timersPerInstance <= c.maxTimers : undefined,
      });
    }
  }
  return out;
}

/** Whether every target of the case is met (undefined when it has none or could not tell). */
export function overallMet(m: Measured, all: readonly Measured[]): boolean | undefined {
  const verdicts = [
    ...evaluate(m, all)
      .filter((c) => c.max !== undefined || c.min !== undefined)
      .map((c) => c.met),
    ...absoluteTargets(m).map((t) => t.met),
  ];
  if (verdicts.length === 0) return undefined;
  if (verdicts.some((v) => v === false)) return false;
  if (verdicts.some((v) => v === undefined)) return undefined;
  return true;
}

/** One JSON object per case. */
export function jsonLine(m: Measured, all: readonly Measured[], env: Environment): string {
  const r = m.result;
  const base = {
    group: m.group,
    case: m.case.id,
    label: m.case.label,
    library: m.case.library,
    baseline: m.case.baseline === true,
    referenceOnly: m.referenceOnly,
  };
  const measures =
    r === undefined
      ? { error: m.error ?? 'not run' }
      : r.kind === 'external'
        ? {
            value: round(r.value, 2),
            unit: r.unit,
            higherIsBetter: r.higherIsBetter,
            ...Object.fromEntries(r.fields.map((f) => [f.key, f.value])),
          }
        : r.kind === 'timed'
          ? {
              nsPerOp: round(r.nsPerOp, 2),
              opsPerSec: Math.round(r.opsPerSec),
              wallNsPerOp: round(r.wallNsPerOp, 2),
              waitPct: r.waitPct === undefined ? null : round(r.waitPct, 2),
              spreadPct: round(r.spreadPct, 2),
              rounds: r.samples.length,
              batch: r.batch,
              samplesNsPerOp: r.samples.map((s) => round(s, 2)),
            }
          : {
              count: r.count,
              bytesPerInstance: Math.round(r.bytesPerInstance),
              timersPerInstance: r.timersPerInstance,
              refTimersPerInstance: r.refTimersPerInstance,
            };
  const comparisons = evaluate(m, all).map((c) => ({
    vs: c.vs,
    ratio: c.ratio === undefined ? null : round(c.ratio, 4),
    max: c.max ?? null,
    min: c.min ?? null,
    met: c.met ?? null,
  }));
  const targets = absoluteTargets(m).map((t) => ({ target: t.text, met: t.met ?? null }));
  return JSON.stringify({
    ...base,
    ...measures,
    comparisons,
    targets,
    met: overallMet(m, all) ?? null,
    env,
  });
}

function round(value: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}

export function formatNs(ns: number): string {
  if (ns < 10) return ns.toFixed(2);
  if (ns < 1_000) return ns.toFixed(1);
  return Math.round(ns).toLocaleString('en-US');
}

export function formatRate(perSec: number): string {
  if (perSec >= 1e6) return `${(perSec / 1e6).toFixed(2)}M`;
  if (perSec >= 1e3) return `${(perSec / 1e3).toFixed(1)}k`;
  return perSec.toFixed(0);
}

function formatRatio(c: EvaluatedComparison): string {
  return `${c.ratio === undefined ? '  n/a' : `${c.ratio.toFixed(2)}x`} ${c.vsLabel}`;
}

function formatMet(met: boolean | undefined): string {
  return met === undefined ? '' : met ? 'yes' : 'NO';
}

type Align = 'l' | 'r';

function renderTable(head: string[], align: Align[], rows: string[][]): string {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]): string =>
    cells
      .map((cell, i) => (align[i] === 'r' ? cell.padStart(widths[i]!) : cell.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [line(head), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}

/**
 * Target and verdict cells for a row: ratio targets pair with their comparison; absolute
 * targets fill the first rows that have none.
 */
function targetCells(m: Measured, comparisons: EvaluatedComparison[]): [string, string][] {
  const cells: [string, string][] = comparisons.map((c) => {
    const bounds = [
      ...(c.min === undefined ? [] : [`>= ${c.min}x`]),
      ...(c.max === undefined ? [] : [`<= ${c.max}x`]),
    ];
    return bounds.length === 0 ? ['', ''] : [bounds.join(', '), formatMet(c.met)];
  });
  for (const t of absoluteTargets(m)) {
    const free = cells.findIndex(([text]) => text === '');
    if (free === -1) cells.push([t.text, formatMet(t.met)]);
    else cells[free] = [t.text, formatMet(t.met)];
  }
  return cells;
}

function caseLabel(m: Measured): string {
  return `${m.case.label}${m.case.baseline ? ' [baseline]' : ''}${m.referenceOnly ? ' [ref]' : ''}`;
}

/** The human-readable report: a timing table, then a memory table when memory cases ran. */
export function renderReport(all: readonly Measured[]): string {
  const sorted = [...all].sort((a, b) => a.order[0] - b.order[0] || a.order[1] - b.order[1]);
  const timedRows: string[][] = [];
  const memoryRows: string[][] = [];
  const errors: string[] = [];
  const external = new Map<string, Measured[]>();
  let lastGroup = '';
  let lastMemoryGroup = '';

  for (const m of sorted) {
    if (m.case.kind === 'external') {
      if (m.error !== undefined) errors.push(`${caseKey(m.group, m.case.id)}: ${m.error}`);
      external.set(m.group, [...(external.get(m.group) ?? []), m]);
      continue;
    }
    const comparisons = evaluate(m, all);
    const targets = targetCells(m, comparisons);
    const lines = Math.max(1, comparisons.length, targets.length);
    const isMemory = m.case.kind === 'memory';
    const rows = isMemory ? memoryRows : timedRows;
    const previous = isMemory ? lastMemoryGroup : lastGroup;
    if (previous !== '' && previous !== m.group) rows.push([]);
    const groupCell = previous === m.group ? '' : m.group;
    if (isMemory) lastMemoryGroup = m.group;
    else lastGroup = m.group;
    if (m.error !== undefined) errors.push(`${caseKey(m.group, m.case.id)}: ${m.error}`);

    for (let i = 0; i < lines; i++) {
      const first = i === 0;
      const comparison = comparisons[i];
      const ratio = comparison
        ? formatRatio(comparison)
        : first && m.case.baseline
          ? '1.00x (baseline)'
          : '';
      const [target, met] = targets[i] ?? ['', ''];
      let measures: string[];
      if (!first) measures = isMemory ? ['', ''] : ['', '', '', ''];
      else if (m.result?.kind === 'timed') measures = timedCells(m.result);
      else if (m.result?.kind === 'memory') measures = memoryCells(m.result);
      else measures = isMemory ? ['error', ''] : ['error', '', '', ''];
      rows.push([
        first ? groupCell : '',
        first ? caseLabel(m) : '',
        ...measures,
        ratio,
        target,
        met,
      ]);
    }
  }

  const parts: string[] = [];
  if (timedRows.length > 0) {
    parts.push(
      renderTable(
        ['group', 'case', 'ns/op', '±%', 'wait%', 'ops/s', 'ratio vs reference', 'target', 'met?'],
        ['l', 'l', 'r', 'r', 'r', 'r', 'l', 'l', 'l'],
        timedRows,
      ),
    );
  }
  if (memoryRows.length > 0) {
    parts.push(
      renderTable(
        [
          'group',
          'case',
          'bytes/each',
          'timers/each',
          'ratio vs reference (bytes)',
          'target',
          'met?',
        ],
        ['l', 'l', 'r', 'r', 'l', 'l', 'l'],
        memoryRows,
      ),
    );
  }
  for (const [group, cases] of external) parts.push(renderExternal(group, cases, all));
  if (errors.length > 0) parts.push(['Failed cases:', ...errors.map((e) => `  ${e}`)].join('\n'));
  return parts.join('\n\n');
}

/**
 * The table of one group of external cases: the columns their results name, then the ratios.
 * The ratio column's header says what is compared and whether more is better.
 */
function renderExternal(
  group: string,
  cases: readonly Measured[],
  all: readonly Measured[],
): string {
  const results = cases.flatMap((m) => (m.result?.kind === 'external' ? [m.result] : []));
  const model: ExternalResult | undefined = results[0];
  const headers = model?.fields.map((f) => f.header) ?? ['result'];
  const ratioHeader =
    model === undefined
      ? 'ratio vs reference'
      : `ratio vs reference (${model.unit} ÷ reference's, ${model.higherIsBetter ? 'higher' : 'lower'} is better)`;
  const rows: string[][] = [];
  for (const [index, m] of cases.entries()) {
    const comparisons = evaluate(m, all);
    const targets = targetCells(m, comparisons);
    const lines = Math.max(1, comparisons.length, targets.length);
    const r = m.result?.kind === 'external' ? m.result : undefined;
    for (let i = 0; i < lines; i++) {
      const first = i === 0;
      const comparison = comparisons[i];
      const ratio = comparison
        ? formatRatio(comparison)
        : first && m.case.baseline
          ? '1.00x (baseline)'
          : '';
      const [target, met] = targets[i] ?? ['', ''];
      const measures = headers.map((_, column) =>
        !first ? '' : r ? (r.fields[column]?.text ?? '') : column === 0 ? 'error' : '',
      );
      rows.push([
        first && index === 0 ? group : '',
        first ? caseLabel(m) : '',
        ...measures,
        ratio,
        target,
        met,
      ]);
    }
  }
  return renderTable(
    ['group', 'case', ...headers, ratioHeader, 'target', 'met?'],
    ['l', 'l', ...headers.map((): Align => 'r'), 'l', 'l', 'l'],
    rows,
  );
}

function timedCells(r: TimedResult): string[] {
  return [
    formatNs(r.nsPerOp),
    r.spreadPct.toFixed(1),
    r.waitPct === undefined ? '' : r.waitPct.toFixed(0),
    formatRate(r.opsPerSec),
  ];
}

function memoryCells(r: MemoryResult): string[] {
  const timers = Number.isInteger(r.timersPerInstance)
    ? String(r.timersPerInstance)
    : r.timersPerInstance.toFixed(2);
  return [Math.round(r.bytesPerInstance).toLocaleString('en-US'), timers];
}
