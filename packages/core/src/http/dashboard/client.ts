/**
 * The dashboard page's script, run in the browser. Bundled into the page at build time (see
 * scripts/build-dashboard.mjs); it only talks to the health routes it was served from.
 */
import type {
  DashboardHistoryDocument,
  DashboardLimiterView,
  DashboardSample,
  DashboardTransition,
} from './history';
import {
  LABEL,
  dur,
  fields,
  latest,
  num,
  parse,
  pct,
  push,
  rankOf,
  setText,
  spark,
  timeline,
  type BreakerTile,
  type LimiterTile,
  type Snapshot,
  type State,
} from './client-view';

const WORST_FIRST: State[] = ['forced_open', 'open', 'half_open', 'closed', 'disabled'];

const body = document.body;
// Relative to where the page was served, so the routes also work under a mount prefix.
const path = location.pathname;
const base = path.endsWith('/dashboard')
  ? path.slice(0, -'/dashboard'.length)
  : (body.getAttribute('data-base') ?? '');
const admin = body.getAttribute('data-admin') === 'true';
const byId = (id: string): HTMLElement => document.getElementById(id) as HTMLElement;
const grid = byId('grid');
const limiterGrid = byId('limiters');
const limiterSection = byId('limiter-section');
const empty = byId('empty');
const statusEl = byId('status');
const summaryEl = byId('summary');
const announceEl = byId('announce');
const icon = byId('icon');
const breakerTemplate = byId('tile') as HTMLTemplateElement;
const limiterTemplate = byId('limiter') as HTMLTemplateElement;
const baseTitle = document.title;
const rootStyle = getComputedStyle(document.documentElement);
const colors: Record<string, string> = {};
for (const state of WORST_FIRST) colors[state] = rootStyle.getPropertyValue(`--c-${state}`).trim();

const tiles = new Map<string, BreakerTile>();
/** Breaker tiles in page order: by rank (open and critical first), then name. */
const order: BreakerTile[] = [];
const limiters = new Map<string, LimiterTile>();
const collator = new Intl.Collator();
let intervalMs = 5000;
let windowMs = 15 * 60_000;
let capacity = 180;
let source: EventSource | undefined;
let retryTimer = 0;
let lastIcon = '';

function setStatus(kind: string, text: string): void {
  if (statusEl.getAttribute('data-status') === kind && statusEl.textContent === text) return;
  statusEl.setAttribute('data-status', kind);
  statusEl.textContent = text;
}
function perSecond(count: number): string {
  const rate = count / (intervalMs / 1000);
  return rate >= 10 ? String(Math.round(rate)) : String(Math.round(rate * 10) / 10);
}
function before(a: BreakerTile, b: BreakerTile): boolean {
  const ra = rankOf(a.state, a.critical);
  const rb = rankOf(b.state, b.critical);
  return ra !== rb ? ra < rb : collator.compare(a.name, b.name) < 0;
}

/** Puts a tile where its rank and name say, moving only that tile. */
function place(t: BreakerTile): void {
  const key = `${rankOf(t.state, t.critical)}`;
  const at = order.indexOf(t);
  if (at !== -1) {
    if (t.key === key) return;
    order.splice(at, 1);
  }
  t.key = key;
  let lo = 0;
  let hi = order.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (before(order[mid] as BreakerTile, t)) lo = mid + 1;
    else hi = mid;
  }
  const next = order[lo];
  grid.insertBefore(t.el, next === undefined ? null : next.el);
  order.splice(lo, 0, t);
}

function breakerTile(name: string): BreakerTile {
  const existing = tiles.get(name);
  if (existing !== undefined) return existing;
  const el = (breakerTemplate.content.firstElementChild as HTMLElement).cloneNode(
    true,
  ) as HTMLElement;
  const f = fields(el);
  el.setAttribute('data-name', name);
  setText(f.name, name);
  const t: BreakerTile = {
    kind: 'breaker',
    el,
    f,
    name,
    snap: { name },
    state: 'unknown',
    critical: false,
    series: { values: [[], [], []] },
    transitions: [],
    deadline: 0,
    due: false,
    busy: false,
    key: '',
  };
  const button = f.reset;
  if (button !== undefined) {
    button.setAttribute('aria-label', `Reset ${name}`);
    button.addEventListener('click', () => reset(t));
  }
  tiles.set(name, t);
  place(t);
  return t;
}

function update(s: Snapshot | undefined, now: number): void {
  if (s === undefined || s === null || typeof s.name !== 'string') return;
  const t = breakerTile(s.name);
  const prev = t.state;
  const state = typeof s.state === 'string' && s.state in LABEL ? s.state : 'unknown';
  t.snap = s;
  t.state = state;
  if (typeof s.critical === 'boolean') t.critical = s.critical;
  t.el.setAttribute('data-state', state);
  t.el.toggleAttribute('data-critical', t.critical);
  if (t.f.critical !== undefined) (t.f.critical as HTMLElement).hidden = !t.critical;
  setText(t.f.state, LABEL[state as State] ?? String(s.state));
  setText(t.f.rate, pct(s.failureRate));
  setText(t.f.calls, String(num(s.calls)));
  setText(t.f.consecutive, String(num(s.consecutiveFailures)));
  setText(t.f.backoff, String(num(s.backoffLevel)));
  const wait = num(s.retryAfterMs);
  t.deadline = state === 'open' && wait > 0 ? now + wait : 0;
  t.due = false;
  countdown(t, now);
  place(t);
  if (prev !== 'unknown' && prev !== state) {
    say(`${s.name}: ${LABEL[prev as State] ?? prev} to ${LABEL[state as State] ?? state}`);
  }
}

function countdown(t: BreakerTile, now: number): void {
  let text = '\u2014';
  if (t.state === 'open') {
    const left = t.deadline - now;
    if (left > 0) text = `in ${dur(left)}`;
    else {
      text = 'probe due';
      if (t.deadline !== 0 && !t.due) {
        t.due = true;
        refresh(t.name);
      }
    }
  } else if (t.state === 'half_open') {
    const probes = num(t.snap.halfOpenProbes);
    text = `probing${probes > 0 ? ` (${probes})` : ''}`;
  } else if (t.state === 'forced_open') {
    text = 'after reset';
  }
  setText(t.f.next, text);
}

/** Draws up to three series as polylines scaled to their common maximum. */
function breakerRates(t: BreakerTile): void {
  spark(t.f.spark as SVGElement | undefined, t.series, capacity);
  setText(
    t.f.rates,
    `${perSecond(latest(t.series, 0))} calls/s \u00b7 ${perSecond(latest(t.series, 1))} failed/s \u00b7 ${perSecond(latest(t.series, 2))} rejected/s`,
  );
}

function limiterTile(view: Pick<DashboardLimiterView, 'name'>): LimiterTile {
  const existing = limiters.get(view.name);
  if (existing !== undefined) return existing;
  const el = (limiterTemplate.content.firstElementChild as HTMLElement).cloneNode(
    true,
  ) as HTMLElement;
  const f = fields(el);
  el.setAttribute('data-name', view.name);
  setText(f.name, view.name);
  const t: LimiterTile = { kind: 'limiter', el, f, name: view.name, series: { values: [[], []] } };
  limiters.set(view.name, t);
  limiterGrid.appendChild(el);
  limiterSection.hidden = false;
  return t;
}

function limiterStore(t: LimiterTile, store: string): void {
  t.el.setAttribute('data-store', store);
  setText(t.f.store, store === 'primary' ? 'Store OK' : 'Fallback');
}

function limiterRates(t: LimiterTile): void {
  spark(t.f.spark as SVGElement | undefined, t.series, capacity);
  setText(t.f.allowed, `${perSecond(latest(t.series, 0))}/s`);
  setText(t.f.denied, `${perSecond(latest(t.series, 1))}/s`);
}

function refresh(name: string): void {
  fetch(`${base}/circuit-breakers/${encodeURIComponent(name)}`, { cache: 'no-store' })
    .then((r) => (r.ok ? (r.json() as Promise<Snapshot>) : undefined))
    .then((s) => {
      if (s !== undefined && tiles.has(s.name)) {
        update(s, Date.now());
        summarize();
      }
    })
    .catch(() => undefined);
}

function remove(name: string): void {
  const t = tiles.get(name);
  if (t === undefined) return;
  t.el.remove();
  tiles.delete(name);
  order.splice(order.indexOf(t), 1);
  say(`${name} removed`);
}

function replaceAll(list: Snapshot[], now: number): void {
  const seen = new Set<string>();
  for (const s of list) {
    if (s !== null && typeof s === 'object' && typeof s.name === 'string') {
      seen.add(s.name);
      update(s, now);
    }
  }
  for (const name of [...tiles.keys()]) if (!seen.has(name)) remove(name);
  summarize();
}

function load(doc: DashboardHistoryDocument): void {
  intervalMs = num(doc.intervalMs) || intervalMs;
  windowMs = num(doc.windowMs) || windowMs;
  capacity = Math.max(2, Math.round(windowMs / intervalMs));
  const now = Date.now();
  const list = Array.isArray(doc.breakers) ? doc.breakers : [];
  replaceAll(list, now);
  for (const b of list) {
    const t = tiles.get(b.name);
    if (t === undefined) continue;
    const s = b.series;
    t.series = {
      values: [s.calls.slice(-capacity), s.failures.slice(-capacity), s.rejected.slice(-capacity)],
    };
    t.transitions = Array.isArray(b.transitions) ? b.transitions.slice() : [];
    breakerRates(t);
    timeline(t, now, windowMs);
  }
  for (const view of Array.isArray(doc.limiters) ? doc.limiters : []) {
    const t = limiterTile(view);
    t.series = {
      values: [view.series.allowed.slice(-capacity), view.series.denied.slice(-capacity)],
    };
    limiterStore(t, view.store);
    limiterRates(t);
  }
}

function sample(data: DashboardSample): void {
  const now = Date.now();
  for (const [name, values] of Object.entries(data.breakers ?? {})) {
    const t = tiles.get(name);
    if (t === undefined) continue;
    push(t.series, values, capacity);
    breakerRates(t);
    timeline(t, now, windowMs);
  }
  for (const [name, values] of Object.entries(data.limiters ?? {})) {
    const t = limiterTile({ name });
    push(t.series, values.slice(0, 2) as number[], capacity);
    limiterStore(t, String(values[2]));
    limiterRates(t);
  }
}

function say(text: string): void {
  announceEl.textContent = text;
}

function summarize(): void {
  const counts: Record<string, number> = {};
  let critical = 0;
  for (const t of tiles.values()) {
    counts[t.state] = (counts[t.state] ?? 0) + 1;
    if (t.critical && (t.state === 'open' || t.state === 'forced_open')) critical++;
  }
  const parts: string[] = [];
  let worst = '';
  for (const state of WORST_FIRST) {
    const n = counts[state];
    if (n === undefined) continue;
    if (worst === '') worst = state;
    parts.push(`${n} ${LABEL[state].toLowerCase()}`);
  }
  const n = tiles.size;
  summaryEl.textContent =
    n > 0
      ? `${n}${n === 1 ? ' breaker: ' : ' breakers: '}${parts.join(', ')}${critical > 0 ? ` (${critical} critical open)` : ''}`
      : '';
  empty.hidden = n > 0;
  const bad = (counts.open ?? 0) + (counts.forced_open ?? 0);
  document.title = (bad > 0 ? `(${bad} open) ` : '') + baseTitle;
  favicon(worst === '' ? 'disabled' : worst);
}

function favicon(state: string): void {
  const color = colors[state];
  if (color === undefined || color === '' || color === lastIcon) return;
  const canvas = document.createElement('canvas');
  canvas.width = canvas.height = 32;
  const g = canvas.getContext('2d');
  if (g === null) return;
  lastIcon = color;
  g.fillStyle = color;
  g.beginPath();
  g.arc(16, 16, 14, 0, 2 * Math.PI);
  g.fill();
  icon.setAttribute('href', canvas.toDataURL('image/png'));
}

function reset(t: BreakerTile): void {
  const button = t.f.reset;
  if (t.busy || button === undefined) return;
  t.busy = true;
  button.setAttribute('aria-disabled', 'true');
  showError(t, '');
  fetch(`${base}/circuit-breakers/${encodeURIComponent(t.name)}/reset`, {
    method: 'POST',
    cache: 'no-store',
    headers: { accept: 'application/json' },
  })
    .then((r) =>
      (r.json() as Promise<Snapshot>)
        .catch(() => undefined)
        .then((s) => {
          if (r.ok) {
            if (s !== undefined && s.name === t.name) {
              update(s, Date.now());
              summarize();
            }
            return;
          }
          showError(
            t,
            r.status === 401
              ? 'Sign in to reset this breaker (401).'
              : r.status === 403
                ? 'You are not allowed to reset this breaker (403).'
                : `Reset failed (HTTP ${r.status}).`,
          );
        }),
    )
    .catch(() => showError(t, 'Reset failed: the server did not answer.'))
    .then(() => {
      t.busy = false;
      button.removeAttribute('aria-disabled');
    })
    .catch(() => undefined);
}

function showError(t: BreakerTile, text: string): void {
  const err = t.f.err as HTMLElement | undefined;
  if (err === undefined) return;
  err.textContent = text;
  err.hidden = text === '';
}

function connect(): void {
  clearTimeout(retryTimer);
  source?.close();
  const es = new EventSource(`${base}/circuit-breakers/stream`);
  source = es;
  es.addEventListener('open', () => setStatus('live', 'Live'));
  es.addEventListener('error', () => {
    setStatus('reconnecting', 'Reconnecting\u2026');
    if (es.readyState === EventSource.CLOSED) retryTimer = window.setTimeout(connect, 5000);
  });
  es.addEventListener('snapshot', (e: MessageEvent<string>) => {
    const list = parse<Snapshot[]>(e);
    if (Array.isArray(list)) replaceAll(list, Date.now());
    setStatus('live', 'Live');
  });
  es.addEventListener('state', (e: MessageEvent<string>) => {
    const s = parse<Snapshot & { transition?: DashboardTransition }>(e);
    if (s === undefined || s === null) return;
    // The time to apply one update, in the browser's performance timeline (devtools, tests).
    const started = performance.now();
    const now = Date.now();
    update(s, now);
    const t = tiles.get(s.name);
    const x = s.transition;
    if (t !== undefined && x !== undefined && typeof x.to === 'string') {
      t.transitions.push({
        at: num(x.at) || now,
        from: x.from,
        to: x.to,
        reason: String(x.reason),
      });
      if (t.transitions.length > 24) t.transitions.shift();
      timeline(t, now, windowMs);
    }
    summarize();
    performance.measure('breakwater:update', { start: started });
  });
  es.addEventListener('removed', (e: MessageEvent<string>) => {
    const d = parse<{ name?: unknown }>(e);
    if (d !== undefined && typeof d.name === 'string') {
      remove(d.name);
      summarize();
    }
  });
  es.addEventListener('sample', (e: MessageEvent<string>) => {
    const data = parse<DashboardSample>(e);
    if (data === undefined || data === null || typeof data !== 'object') return;
    const started = performance.now();
    sample(data);
    performance.measure('breakwater:sample', { start: started });
  });
}

window.setInterval(() => {
  const now = Date.now();
  for (const t of tiles.values()) countdown(t, now);
}, 1000);

if (!admin) body.classList.add('read-only');

fetch(`${base}/dashboard/history`, { cache: 'no-store', headers: { accept: 'application/json' } })
  .then((r) => {
    if (!r.ok) throw new Error(`HTTP ${r.status}`);
    return r.json() as Promise<DashboardHistoryDocument>;
  })
  .then(load)
  .catch(() => setStatus('error', 'Could not load the breakers; waiting for the stream'))
  .then(connect)
  .catch(() => undefined);
