/**
 * What the dashboard draws, without the page's state: tile types, formatting, sparklines and the
 * state timeline. Bundled with client.ts into the page (see scripts/build-dashboard.mjs).
 */
import type { DashboardBreaker, DashboardTransition } from './history';

export type State = 'closed' | 'open' | 'half_open' | 'forced_open' | 'disabled';
export type Snapshot = Partial<Omit<DashboardBreaker, 'series' | 'transitions'>> & { name: string };

export interface Series {
  values: number[][];
}

export interface BreakerTile {
  kind: 'breaker';
  el: HTMLElement;
  f: Record<string, HTMLElement | SVGElement>;
  name: string;
  snap: Snapshot;
  state: string;
  critical: boolean;
  /** Calls, failures, rejected per sample, oldest first. */
  series: Series;
  transitions: DashboardTransition[];
  deadline: number;
  due: boolean;
  busy: boolean;
  key: string;
}

export interface LimiterTile {
  kind: 'limiter';
  el: HTMLElement;
  f: Record<string, HTMLElement | SVGElement>;
  name: string;
  series: Series;
}

export const LABEL: Record<State, string> = {
  closed: 'Closed',
  half_open: 'Half-open',
  open: 'Open',
  forced_open: 'Forced open',
  disabled: 'Disabled',
};
export const SPARK_W = 180;
export const SPARK_H = 36;

export const num = (v: unknown): number => (typeof v === 'number' && Number.isFinite(v) ? v : 0);
export const pct = (v: unknown): string => `${Math.round(num(v) * 10) / 10}%`;
export const two = (n: number): string => (n < 10 ? '0' : '') + String(n);
/** A duration as `42s`, `3m 05s` or `1h 02m`. */
export function dur(ms: number): string {
  const s = Math.ceil(ms / 1000);
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m ${two(s % 60)}s`;
  return `${Math.floor(m / 60)}h ${two(m % 60)}m`;
}
/** An event's JSON data, or undefined when it is not JSON. */
export function parse<T>(e: MessageEvent<string>): T | undefined {
  try {
    return JSON.parse(e.data) as T;
  } catch {
    return undefined;
  }
}
/** The `[data-f]` children of a tile, by name. */
export function fields(el: Element): Record<string, HTMLElement | SVGElement> {
  const f: Record<string, HTMLElement | SVGElement> = {};
  el.querySelectorAll<HTMLElement | SVGElement>('[data-f]').forEach((n) => {
    f[n.getAttribute('data-f') ?? ''] = n;
  });
  return f;
}
/** Sets a text only when it changed (no layout work otherwise). */
export function setText(el: Element | undefined, text: string): void {
  if (el !== undefined && el.textContent !== text) el.textContent = text;
}

/** Sort key: open and forced open first, then half-open, then the rest; critical first in each. */
export function rankOf(state: string, critical: boolean): number {
  const severity = state === 'open' || state === 'forced_open' ? 0 : state === 'half_open' ? 2 : 4;
  return severity + (critical ? 0 : 1);
}
/** Draws a series' sparklines, scaled to the largest value, over `capacity` samples. */
export function spark(svg: SVGElement | undefined, series: Series, capacity: number): void {
  if (svg === undefined) return;
  const lines = svg.querySelectorAll('polyline');
  let max = 0;
  for (const values of series.values) for (const v of values) if (v > max) max = v;
  const step = SPARK_W / Math.max(1, capacity - 1);
  series.values.forEach((values, i) => {
    const line = lines[i];
    if (line === undefined) return;
    const offset = capacity - values.length;
    let points = '';
    for (let j = 0; j < values.length; j++) {
      const x = (offset + j) * step;
      const y =
        max === 0 ? SPARK_H - 1 : SPARK_H - 1 - ((values[j] as number) / max) * (SPARK_H - 2);
      points += `${x.toFixed(1)},${y.toFixed(1)} `;
    }
    line.setAttribute('points', points);
  });
}

/** Appends one sample to each line, keeping at most `capacity`. */
export function push(series: Series, sample: readonly number[], capacity: number): void {
  series.values.forEach((values, i) => {
    values.push(num(sample[i]));
    if (values.length > capacity) values.shift();
  });
}

/** The newest value of line `i`. */
export function latest(series: Series, i: number): number {
  const values = series.values[i] as number[];
  return values.length === 0 ? 0 : (values[values.length - 1] as number);
}

/** The state strip over the window: one rectangle per state held, from the transitions. */
export function timeline(t: BreakerTile, now: number, windowMs: number): void {
  const svg = t.f.timeline as SVGElement | undefined;
  if (svg === undefined) return;
  const start = now - windowMs;
  const spans: { from: number; to: number; state: string }[] = [];
  const list = t.transitions.filter((x) => x.at > start);
  let state: string =
    list.length > 0
      ? (list[0] as DashboardTransition).from
      : t.state === 'unknown'
        ? 'closed'
        : t.state;
  let at = start;
  for (const x of list) {
    spans.push({ from: at, to: x.at, state });
    state = x.to;
    at = x.at;
  }
  spans.push({ from: at, to: now, state: t.state === 'unknown' ? state : t.state });
  while (svg.firstChild !== null) svg.removeChild(svg.firstChild);
  for (const span of spans) {
    const rect = document.createElementNS(svg.namespaceURI, 'rect');
    const x = ((span.from - start) / windowMs) * SPARK_W;
    const w = Math.max(0.5, ((span.to - span.from) / windowMs) * SPARK_W);
    rect.setAttribute('x', x.toFixed(1));
    rect.setAttribute('width', w.toFixed(1));
    rect.setAttribute('height', '6');
    rect.setAttribute('class', `s-${span.state}`);
    const title = document.createElementNS(svg.namespaceURI, 'title');
    title.textContent = `${LABEL[span.state as State] ?? span.state} from ${clock(span.from)}`;
    rect.appendChild(title);
    svg.appendChild(rect);
  }
  const last = list[list.length - 1];
  setText(
    t.f.last,
    last === undefined
      ? 'No transition in 15 min'
      : `${LABEL[last.from] ?? last.from} \u2192 ${LABEL[last.to] ?? last.to} at ${clock(last.at)}${last.reason ? ` (${last.reason})` : ''}`,
  );
}

/** A time of day, `hh:mm:ss`. */
export function clock(ms: number): string {
  const d = new Date(ms);
  return `${two(d.getHours())}:${two(d.getMinutes())}:${two(d.getSeconds())}`;
}
