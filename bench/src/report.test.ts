import { describe, expect, it } from '@jest/globals';
import type { Environment } from './env';
import type { Case, Result } from './harness';
import {
  evaluate,
  formatNs,
  formatRate,
  jsonLine,
  overallMet,
  renderReport,
  type Measured,
} from './report';

const env: Environment = {
  node: 'v20.0.0',
  cpu: 'Test CPU',
  cores: 2,
  platform: 'linux x64',
  date: '2025-01-01T00:00:00.000Z',
  mode: 'quick',
  schedule: 'interleaved',
  loadCorrected: true,
  loadAvg: 0.5,
};

function timed(
  group: string,
  c: Partial<Case> & { id: string },
  nsPerOp: number | undefined,
  order: [number, number],
): Measured {
  const result: Result | undefined =
    nsPerOp === undefined
      ? undefined
      : {
          kind: 'timed',
          nsPerOp,
          opsPerSec: 1e9 / nsPerOp,
          wallNsPerOp: nsPerOp * 2,
          samples: [nsPerOp],
          waitPct: 50,
          batch: 1_000,
          spreadPct: 0,
        };
  return {
    group,
    order,
    case: { label: c.id, library: 'node', kind: 'async', fn: () => undefined, ...c } as Case,
    referenceOnly: false,
    ...(result ? { result } : { error: 'boom' }),
  };
}

const wrapper = timed('floor', { id: 'wrapper', baseline: true }, 100, [0, 0]);
const ours = timed(
  'closed',
  {
    id: 'ours',
    compare: [{ vs: 'floor/wrapper', max: 1.15 }, { vs: 'peer', max: 0.75 }, { vs: 'other' }],
  },
  110,
  [1, 0],
);
const peer = timed('closed', { id: 'peer' }, 200, [1, 1]);
const all = [wrapper, ours, peer];

describe('evaluate', () => {
  it('divides the row by each named case, resolving ids inside the group', () => {
    const [vsWrapper, vsPeer, vsMissing] = evaluate(ours, all);
    expect(vsWrapper).toMatchObject({ vs: 'floor/wrapper', ratio: 1.1, max: 1.15, met: true });
    expect(vsPeer).toMatchObject({ vs: 'closed/peer', ratio: 0.55, met: true });
    expect(vsMissing).toMatchObject({ vs: 'closed/other', ratio: undefined, met: undefined });
  });

  it('compares a row without its own list with the baseline of its group', () => {
    const base = timed('g', { id: 'base', baseline: true }, 50, [0, 0]);
    const row = timed('g', { id: 'row' }, 75, [0, 1]);
    expect(evaluate(row, [base, row])).toEqual([
      { vs: 'g/base', vsLabel: 'base', ratio: 1.5, max: undefined, met: undefined },
    ]);
    expect(evaluate(base, [base, row])).toEqual([]);
  });
});

describe('overallMet', () => {
  it('is false as soon as one target is missed', () => {
    const slow = timed('closed', { id: 'ours', compare: [{ vs: 'peer', max: 0.5 }] }, 150, [1, 0]);
    expect(overallMet(slow, [slow, peer])).toBe(false);
    expect(overallMet(ours, all)).toBe(true);
  });

  it('checks an absolute ns/op target strictly', () => {
    const sync = timed('open', { id: 'try', kind: 'sync', maxNs: 50 }, 50, [2, 0]);
    expect(overallMet(sync, [sync])).toBe(false);
  });

  it('has no verdict without targets or when the reference failed', () => {
    expect(overallMet(peer, all)).toBeUndefined();
    const failed = timed('closed', { id: 'peer' }, undefined, [1, 1]);
    const row = timed('closed', { id: 'ours', compare: [{ vs: 'peer', max: 1 }] }, 10, [1, 0]);
    expect(overallMet(row, [row, failed])).toBeUndefined();
  });

  it('checks bytes and timers of a memory case', () => {
    const memory: Measured = {
      group: 'memory',
      order: [3, 0],
      case: {
        id: 'ours',
        label: 'ours',
        library: 'breakwater',
        kind: 'memory',
        count: 10,
        create: () => ({}),
        maxBytes: 700,
        maxTimers: 0,
      },
      referenceOnly: false,
      result: {
        kind: 'memory',
        count: 10,
        bytesPerInstance: 650,
        timersPerInstance: 1,
        refTimersPerInstance: 0,
      },
    };
    expect(overallMet(memory, [memory])).toBe(false);
  });
});

describe('jsonLine', () => {
  it('writes one parseable object with measures, ratios, verdict and environment', () => {
    const line = jsonLine(ours, all, env);
    expect(line).not.toContain('\n');
    expect(JSON.parse(line)).toMatchObject({
      group: 'closed',
      case: 'ours',
      nsPerOp: 110,
      wallNsPerOp: 220,
      comparisons: [
        { vs: 'floor/wrapper', ratio: 1.1, max: 1.15, met: true },
        { vs: 'closed/peer', ratio: 0.55, max: 0.75, met: true },
        { vs: 'closed/other', ratio: null, max: null, met: null },
      ],
      met: true,
      env: { node: 'v20.0.0', cpu: 'Test CPU' },
    });
  });

  it('carries the error of a failed case', () => {
    const failed = timed('closed', { id: 'peer' }, undefined, [1, 1]);
    expect(JSON.parse(jsonLine(failed, [failed], env))).toMatchObject({ error: 'boom' });
  });
});

describe('renderReport', () => {
  it('prints one row per case, one line per extra comparison, and the verdicts', () => {
    const text = renderReport(all);
    const lines = text.split('\n');
    expect(lines[0]).toMatch(/^group\s+case\s+ns\/op/);
    const row = lines.find((l) => l.includes('1.10x wrapper'));
    expect(row).toBeDefined();
    expect(row).toMatch(/<= 1\.15x\s+yes$/);
    expect(text).toMatch(/0\.55x peer\s+<= 0\.75x\s+yes/);
    expect(text).toContain('1.00x (baseline)');
  });

  it('lists failed cases under the table', () => {
    const failed = timed('closed', { id: 'peer' }, undefined, [1, 1]);
    expect(renderReport([failed])).toContain('closed/peer: boom');
  });
});

describe('external cases', () => {
  function external(id: string, reqPerSec: number | undefined, c: Partial<Case> = {}): Measured {
    return {
      group: 'http',
      order: [5, id === 'bare' ? 0 : 1],
      case: {
        id,
        label: id,
        library: 'node',
        kind: 'external',
        measure: () => Promise.reject(new Error('not run here')),
        ...c,
      } as Case,
      referenceOnly: false,
      ...(reqPerSec === undefined
        ? { error: 'server exited' }
        : {
            result: {
              kind: 'external',
              value: reqPerSec,
              unit: 'req/s',
              higherIsBetter: true,
              fields: [
                { key: 'reqPerSec', header: 'req/s', value: reqPerSec, text: String(reqPerSec) },
                { key: 'p99Ms', header: 'p99 ms', value: 2.5, text: '2.50' },
              ],
            },
          }),
    };
  }
  const bare = external('bare', 10_000, { baseline: true });
  const fast = external('fast', 9_700, { compare: [{ vs: 'bare', min: 0.95 }] });
  const slow = external('slow', 9_000, { compare: [{ vs: 'bare', min: 0.95 }] });

  it('divides the measures and checks a minimum ratio', () => {
    expect(evaluate(fast, [bare, fast])).toEqual([
      { vs: 'http/bare', vsLabel: 'bare', ratio: 0.97, max: undefined, min: 0.95, met: true },
    ]);
    expect(overallMet(fast, [bare, fast])).toBe(true);
    expect(overallMet(slow, [bare, slow])).toBe(false);
  });

  it('renders a table of their own columns, saying which way the ratio is better', () => {
    const text = renderReport([bare, fast, slow, ...all]);
    const tables = text.split('\n\n');
    const http = tables.find((t) => /^group\s+case\s+req\/s/.test(t));
    expect(http).toBeDefined();
    expect(http).toContain("ratio vs reference (req/s ÷ reference's, higher is better)");
    expect(http).toMatch(/fast\s+9700\s+2\.50\s+0\.97x bare\s+>= 0\.95x\s+yes/);
    expect(http).toMatch(/slow\s+9000\s+2\.50\s+0\.90x bare\s+>= 0\.95x\s+NO/);
    // The timed table is unchanged by them.
    expect(tables[0]).toMatch(/^group\s+case\s+ns\/op/);
    expect(tables[0]).not.toContain('fast');
  });

  it('writes their fields and the minimum into the JSON line', () => {
    expect(JSON.parse(jsonLine(fast, [bare, fast], env))).toMatchObject({
      value: 9_700,
      unit: 'req/s',
      higherIsBetter: true,
      reqPerSec: 9_700,
      p99Ms: 2.5,
      comparisons: [{ vs: 'http/bare', ratio: 0.97, max: null, min: 0.95, met: true }],
      met: true,
    });
  });

  it('lists a failed one under the tables', () => {
    const failed = external('fast', undefined, { compare: [{ vs: 'bare', min: 0.95 }] });
    const text = renderReport([bare, failed]);
    expect(text).toMatch(/fast\s+error\s+n\/a bare\s+>= 0\.95x/);
    expect(text).toContain('http/fast: server exited');
  });
});

describe('formatting', () => {
  it('keeps digits where they matter', () => {
    expect(formatNs(3.456)).toBe('3.46');
    expect(formatNs(186.34)).toBe('186.3');
    expect(formatNs(12_345.6)).toBe('12,346');
    expect(formatRate(5_370_000)).toBe('5.37M');
    expect(formatRate(41_234)).toBe('41.2k');
    expect(formatRate(512)).toBe('512');
  });
});
