import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from '@jest/globals';
import {
  CircuitBreakerRegistry,
  RateLimiter,
  bulkhead,
  fallback,
  retry,
  timeout,
} from '@breakwater/core';
import { Registry } from 'prom-client';
import { collectMetrics } from '@breakwater/prometheus';

const root = join(__dirname, '..');
const dashboardPath = join(root, 'dashboards/grafana.json');
const rulesPath = join(root, 'alerts/prometheus-rules.yml');
const rulesTestPath = join(root, 'test/prometheus-rules.test.yml');

interface Target {
  expr: string;
  refId: string;
  datasource?: { type?: string; uid?: string };
}
interface Panel {
  id: number;
  type: string;
  title: string;
  gridPos: { x: number; y: number; w: number; h: number };
  datasource?: { type?: string; uid?: string };
  targets?: Target[];
}
interface Dashboard {
  __inputs: { name: string; type: string; pluginId: string }[];
  uid: string;
  title: string;
  panels: Panel[];
  templating: { list: { name: string; type: string; query: unknown; current?: unknown }[] };
}

const dashboardText = readFileSync(dashboardPath, 'utf8');
const dashboard = JSON.parse(dashboardText) as Dashboard;
const rulesText = readFileSync(rulesPath, 'utf8');

/** What the collector registers with the default prefix. */
function exportedNames(): readonly string[] {
  const collector = collectMetrics(new CircuitBreakerRegistry(), {
    register: new Registry(),
    limiters: [new RateLimiter({ name: 'api', rate: '1/s' })],
    policies: {
      retry: retry(),
      fallback: fallback(null),
      bulkhead: bulkhead({ maxConcurrent: 1 }),
      timeout: timeout(1_000),
      shed: { on: () => () => undefined },
    },
  });
  collector.stop();
  return collector.metricNames;
}

/** Metric names a text uses, with histogram series suffixes mapped to their family. */
function usedNames(text: string, exported: readonly string[]): Set<string> {
  const used = new Set<string>();
  for (const [name] of text.matchAll(/breakwater_[a-z_]+/g)) {
    const family = name.replace(/_(bucket|sum|count)$/, '');
    used.add(exported.includes(family) ? family : name);
  }
  return used;
}

describe('dashboard and alert rules use only exported metrics', () => {
  const exported = exportedNames();

  it('the collector exports the documented metric names', () => {
    expect(exported).toEqual([
      'breakwater_circuit_state',
      'breakwater_calls_total',
      'breakwater_call_duration_seconds',
      'breakwater_state_transitions_total',
      'breakwater_ratelimit_decisions_total',
      'breakwater_store_errors_total',
      'breakwater_store_fallback_active',
      'breakwater_retries_total',
      'breakwater_retry_give_ups_total',
      'breakwater_fallbacks_total',
      'breakwater_bulkhead_rejections_total',
      'breakwater_timeouts_total',
      'breakwater_loadshed_rejected_total',
      'breakwater_loadshed_limit',
      'breakwater_loadshed_in_flight',
    ]);
  });

  it.each([
    ['dashboards/grafana.json', dashboardText],
    ['alerts/prometheus-rules.yml', rulesText],
  ])('every metric name in %s is exported', (_file, text) => {
    const used = [...usedNames(text, exported)];
    expect(used.length).toBeGreaterThan(0);
    expect(used.filter((name) => !exported.includes(name))).toEqual([]);
  });

  it('the dashboard shows every exported metric', () => {
    const used = usedNames(dashboardText, exported);
    expect(exported.filter((name) => !used.has(name))).toEqual([]);
  });

  it('the alert rules cover open circuits, flapping, error rate, store fallback and load shedding', () => {
    const alerts = [...rulesText.matchAll(/^\s*- alert: (\S+)$/gm)].map((m) => m[1]);
    expect(alerts).toEqual([
      'BreakwaterCircuitOpen',
      'BreakwaterCircuitFlapping',
      'BreakwaterHighErrorRate',
      'BreakwaterRateLimiterOnFallback',
      'BreakwaterLoadShedding',
    ]);
  });
});

describe('grafana dashboard', () => {
  const panels = dashboard.panels.filter((panel) => panel.type !== 'row');

  it('declares its data source in __inputs, so the import dialog offers a picker', () => {
    expect(dashboard.__inputs).toEqual([
      expect.objectContaining({
        name: 'DS_PROMETHEUS',
        type: 'datasource',
        pluginId: 'prometheus',
      }),
    ]);
    const variable = dashboard.templating.list.find((v) => v.name === 'datasource');
    expect(variable?.current).toMatchObject({ value: '${DS_PROMETHEUS}' });
    // Every other data source reference goes through the variable (switchable after import);
    // the built-in annotations use Grafana itself.
    const references = [...dashboardText.matchAll(/"uid": "([^"]+)"/g)].map((m) => m[1]);
    expect(new Set(references)).toEqual(new Set(['${datasource}', 'breakwater', '-- Grafana --']));
  });

  it('has a Prometheus datasource variable that every panel and query uses', () => {
    const variable = dashboard.templating.list.find((v) => v.name === 'datasource');
    expect(variable).toMatchObject({ type: 'datasource', query: 'prometheus' });
    for (const panel of panels) {
      expect([panel.title, panel.datasource]).toEqual([
        panel.title,
        { type: 'prometheus', uid: '${datasource}' },
      ]);
      for (const target of panel.targets ?? []) {
        expect(target.datasource).toEqual({ type: 'prometheus', uid: '${datasource}' });
      }
    }
  });

  it('has the panels an operator needs, each with a query', () => {
    expect(panels.map((panel) => panel.title)).toEqual([
      'Circuits not closed',
      'State per breaker',
      'Success rate by breaker',
      'Request volume by outcome',
      'Latency p95 by breaker',
      'State transitions',
      'Rate-limit decisions',
      'Store fallback',
      'Store errors',
      'Retries',
      'Fallbacks and timeouts',
      'Bulkhead rejections',
      'Load shedding',
      'Concurrency limit and in flight',
    ]);
    for (const panel of panels) {
      expect(panel.targets?.length).toBeGreaterThan(0);
      for (const target of panel.targets ?? []) expect(target.expr.trim()).not.toBe('');
    }
    const latency = panels.find((panel) => panel.title === 'Latency p95 by breaker');
    expect(latency?.targets?.[0]?.expr).toMatch(/^histogram_quantile\(0\.95, /);
  });

  it('has unique panel ids and panels inside the 24-column grid', () => {
    const ids = dashboard.panels.map((panel) => panel.id);
    expect(new Set(ids).size).toBe(ids.length);
    for (const panel of dashboard.panels) {
      expect(panel.gridPos.x + panel.gridPos.w).toBeLessThanOrEqual(24);
    }
    expect(dashboard.uid).toBe('breakwater');
  });
});

/** Where promtool is, or undefined when it is not on the PATH. */
function findPromtool(): string | undefined {
  const probe = spawnSync('promtool', ['--version'], { encoding: 'utf8' });
  return probe.error === undefined && probe.status === 0 ? 'promtool' : undefined;
}

const promtool = findPromtool();
const ci = process.env.CI === 'true';
if (promtool === undefined && !ci) {
  console.warn(
    [
      '',
      '*******************************************************************************',
      '* promtool is not on the PATH: the alert-rule and dashboard PromQL checks are *',
      '* SKIPPED. Install it to run them (Debian/Ubuntu: apt-get install prometheus). *',
      '* Under CI=true a missing promtool fails the run.                             *',
      '*******************************************************************************',
      '',
    ].join('\n'),
  );
}
/** `it` when promtool can run (or must, under CI), skipped otherwise. */
const withPromtool = promtool !== undefined || ci ? it : it.skip;

function runPromtool(...args: string[]): string {
  if (promtool === undefined) {
    throw new Error('promtool is not on the PATH; CI must install it (apt-get install prometheus)');
  }
  const result = spawnSync(promtool, args, { encoding: 'utf8', timeout: 60_000 });
  const output = `${result.stdout}${result.stderr}`;
  if (result.error !== undefined || result.status !== 0) {
    throw new Error(`promtool ${args.join(' ')} failed:\n${output}`);
  }
  return output;
}

describe('promtool', () => {
  const scratch = mkdtempSync(join(tmpdir(), 'breakwater-promtool-'));
  afterAll(() => rmSync(scratch, { recursive: true, force: true }));

  withPromtool('check rules accepts alerts/prometheus-rules.yml', () => {
    expect(runPromtool('check', 'rules', rulesPath)).toMatch(/SUCCESS: 5 rules found/);
  });

  withPromtool('the alert rules fire (and stay quiet) as their unit tests expect', () => {
    expect(runPromtool('test', 'rules', rulesTestPath)).toMatch(/SUCCESS/);
  });

  withPromtool('every dashboard query is valid PromQL', () => {
    // Grafana's variables replaced by what they expand to, each query checked as a recording rule.
    const rules = dashboard.panels.flatMap((panel) =>
      (panel.targets ?? []).map((target) => {
        const expr = target.expr
          .replaceAll('$__rate_interval', '5m')
          .replace(/\$(job|breaker|limiter)\b/g, '.*');
        return `      - record: dashboard:panel_${panel.id}_${target.refId}\n        expr: ${JSON.stringify(expr)}`;
      }),
    );
    expect(rules.length).toBeGreaterThan(0);
    const file = join(scratch, 'dashboard-queries.yml');
    writeFileSync(file, `groups:\n  - name: dashboard\n    rules:\n${rules.join('\n')}\n`);
    expect(runPromtool('check', 'rules', file)).toMatch(`SUCCESS: ${rules.length} rules found`);
  });
});
