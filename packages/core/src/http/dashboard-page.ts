import { ConfigError } from '../errors';
import { checkKnownKeys, checkObject, stringOption } from '../internal/validate';

/** Options of the dashboard page. */
export interface DashboardPageOptions {
  /** Where the health routes are mounted, e.g. `/health`. */
  basePath: string;
  /** Whether to show reset buttons (only when the admin route exists). */
  admin: boolean;
  /** Page title. @defaultValue `'Circuit breakers'` */
  title?: string;
}

const OWNER = 'dashboardPage';

const STYLE = `
:root{--bg:#f6f8fa;--fg:#1f2328;--muted:#59636e;--card:#fff;--line:#d1d9e0;--err:#cf222e;
--c-closed:#1a7f37;--c-half_open:#d29922;--c-open:#cf222e;--c-forced_open:#82071e;--c-disabled:#6e7781;
font:16px/1.4 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--fg);background:var(--bg)}
@media (prefers-color-scheme:dark){:root{--bg:#0d1117;--fg:#e6edf3;--muted:#9198a1;--card:#151b23;--line:#3d444d;--err:#ff7b72}}
*{box-sizing:border-box}
body{margin:0 auto;padding:1rem;max-width:80rem}
header{display:flex;flex-wrap:wrap;align-items:center;justify-content:space-between;gap:.5rem 1rem}
h1{font-size:1.5rem;margin:0}
.status{margin:0;padding:.2rem .75rem;border:1px solid var(--line);border-radius:1rem;font-size:.875rem;background:var(--card)}
.status::before{content:"";display:inline-block;width:.6rem;height:.6rem;margin-right:.45rem;border-radius:50%;background:var(--c-disabled)}
.status[data-status=live]::before{background:var(--c-closed)}
.status[data-status=reconnecting]::before,.status[data-status=error]::before{background:var(--c-half_open)}
.summary,.empty{color:var(--muted);margin:.75rem 0}
.grid{list-style:none;margin:0;padding:0;display:grid;gap:1rem;grid-template-columns:repeat(auto-fill,minmax(min(100%,17rem),1fr))}
.tile{--c:var(--c-disabled);content-visibility:auto;contain-intrinsic-size:auto 14rem;display:flex;flex-direction:column;background:var(--card);border:1px solid var(--line);border-top:.4rem solid var(--c);border-radius:.5rem;padding:.75rem 1rem}
.tile[data-state=closed]{--c:var(--c-closed)}
.tile[data-state=half_open]{--c:var(--c-half_open)}
.tile[data-state=open]{--c:var(--c-open)}
.tile[data-state=forced_open]{--c:var(--c-forced_open)}
.head{display:flex;flex-wrap:wrap;align-items:flex-start;justify-content:space-between;gap:.25rem .5rem}
.name{min-width:0;margin:0;font-size:1.05rem;overflow-wrap:break-word}
.badge{flex:none;padding:.1rem .6rem;border-radius:1rem;background:var(--c);color:#fff;font-size:.8rem;font-weight:600}
.tile[data-state=half_open] .badge{color:#1f2328}
dl{display:grid;grid-template-columns:1fr auto;gap:.25rem 1rem;margin:.75rem 0 0;font-size:.9rem}
dt{color:var(--muted)}
dd{margin:0;text-align:right;font-variant-numeric:tabular-nums}
.actions{margin-top:auto;padding-top:.75rem}
button{font:inherit;font-size:.9rem;min-height:2.25rem;padding:.3rem 1rem;border:1px solid var(--line);border-radius:.4rem;background:var(--bg);color:var(--fg);cursor:pointer}
button:hover{border-color:var(--muted)}
button:focus-visible{outline:3px solid var(--c-half_open);outline-offset:2px}
button[aria-disabled=true]{opacity:.6;cursor:progress}
.err{margin:.5rem 0 0;color:var(--err);font-size:.875rem}
.sr{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap}
`;

const SCRIPT = `
(function () {
  'use strict';
  var body = document.body;
  // Relative to where the page was served, so the routes also work under a mount prefix.
  var path = location.pathname;
  var base = path.slice(-10) === '/dashboard' ? path.slice(0, -10) : body.getAttribute('data-base') || '';
  var grid = document.getElementById('grid');
  var empty = document.getElementById('empty');
  var statusEl = document.getElementById('status');
  var summaryEl = document.getElementById('summary');
  var announceEl = document.getElementById('announce');
  var icon = document.getElementById('icon');
  var tpl = document.getElementById('tile');
  var baseTitle = document.title;
  var LABEL = { closed: 'Closed', half_open: 'Half-open', open: 'Open', forced_open: 'Forced open', disabled: 'Disabled' };
  var ORDER = ['forced_open', 'open', 'half_open', 'closed', 'disabled'];
  var rootStyle = getComputedStyle(document.documentElement);
  var colors = {};
  ORDER.forEach(function (st) { colors[st] = rootStyle.getPropertyValue('--c-' + st).trim(); });
  var tiles = new Map();
  var order = [];
  var collator = new Intl.Collator();
  var source = null;
  var retryTimer = 0;
  var lastIcon = '';

  function setStatus(kind, text) {
    if (statusEl.getAttribute('data-status') === kind && statusEl.textContent === text) return;
    statusEl.setAttribute('data-status', kind);
    statusEl.textContent = text;
  }
  function num(v) { return typeof v === 'number' && isFinite(v) ? v : 0; }
  function pct(v) { return Math.round(num(v) * 10) / 10 + '%'; }
  function two(n) { return (n < 10 ? '0' : '') + n; }
  function dur(ms) {
    var s = Math.ceil(ms / 1000);
    if (s < 60) return s + 's';
    var m = Math.floor(s / 60);
    if (m < 60) return m + 'm ' + two(s % 60) + 's';
    return Math.floor(m / 60) + 'h ' + two(m % 60) + 'm';
  }
  function parse(e) { try { return JSON.parse(e.data); } catch (_) { return null; } }

  function tile(name) {
    var t = tiles.get(name);
    if (t) return t;
    var el = tpl.content.firstElementChild.cloneNode(true);
    var f = {};
    el.querySelectorAll('[data-f]').forEach(function (n) { f[n.getAttribute('data-f')] = n; });
    el.setAttribute('data-name', name);
    f.name.textContent = name;
    t = { el: el, f: f, name: name, snap: null, deadline: 0, due: false, busy: false };
    if (f.reset) {
      f.reset.setAttribute('aria-label', 'Reset ' + name);
      f.reset.addEventListener('click', function () { reset(t); });
    }
    var lo = 0;
    var hi = order.length;
    while (lo < hi) {
      var mid = (lo + hi) >> 1;
      if (collator.compare(order[mid], name) > 0) hi = mid;
      else lo = mid + 1;
    }
    grid.insertBefore(el, lo < order.length ? tiles.get(order[lo]).el : null);
    order.splice(lo, 0, name);
    tiles.set(name, t);
    return t;
  }

  function update(s, now) {
    if (!s || typeof s.name !== 'string') return;
    var t = tile(s.name);
    var prev = t.snap ? t.el.getAttribute('data-state') : '';
    var state = LABEL[s.state] ? s.state : 'unknown';
    t.snap = s;
    t.el.setAttribute('data-state', state);
    t.f.state.textContent = LABEL[state] || String(s.state);
    t.f.rate.textContent = pct(s.failureRate);
    t.f.calls.textContent = String(num(s.calls));
    t.f.consecutive.textContent = String(num(s.consecutiveFailures));
    t.f.backoff.textContent = String(num(s.backoffLevel));
    var wait = num(s.retryAfterMs);
    t.deadline = state === 'open' && wait > 0 ? now + wait : 0;
    t.due = false;
    countdown(t, now);
    if (prev && prev !== state) say(s.name + ': ' + (LABEL[prev] || prev) + ' to ' + t.f.state.textContent);
  }

  function countdown(t, now) {
    var state = t.el.getAttribute('data-state');
    var text = '\\u2014';
    if (state === 'open') {
      var left = t.deadline - now;
      if (left > 0) text = 'in ' + dur(left);
      else {
        text = 'probe due';
        if (t.deadline && !t.due) { t.due = true; refresh(t.name); }
      }
    } else if (state === 'half_open') {
      text = 'probing' + (num(t.snap.halfOpenProbes) ? ' (' + t.snap.halfOpenProbes + ')' : '');
    } else if (state === 'forced_open') {
      text = 'after reset';
    }
    if (t.f.next.textContent !== text) t.f.next.textContent = text;
  }

  function refresh(name) {
    fetch(base + '/circuit-breakers/' + encodeURIComponent(name), { cache: 'no-store' })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (s) { if (s && tiles.has(s.name)) { update(s, Date.now()); summarize(); } })
      .catch(function () {});
  }

  function remove(name) {
    var t = tiles.get(name);
    if (!t) return;
    t.el.remove();
    tiles.delete(name);
    order.splice(order.indexOf(name), 1);
    say(name + ' removed');
  }

  function replaceAll(list, now) {
    var seen = new Set();
    list.forEach(function (s) {
      if (s && typeof s.name === 'string') { seen.add(s.name); update(s, now); }
    });
    Array.from(tiles.keys()).forEach(function (name) { if (!seen.has(name)) remove(name); });
    summarize();
  }

  function say(text) { announceEl.textContent = text; }

  function summarize() {
    var counts = {};
    tiles.forEach(function (t) {
      var st = t.el.getAttribute('data-state');
      counts[st] = (counts[st] || 0) + 1;
    });
    var parts = [];
    var worst = '';
    ORDER.forEach(function (st) {
      if (!counts[st]) return;
      if (!worst) worst = st;
      parts.push(counts[st] + ' ' + LABEL[st].toLowerCase());
    });
    var n = tiles.size;
    summaryEl.textContent = n ? n + (n === 1 ? ' breaker: ' : ' breakers: ') + parts.join(', ') : '';
    empty.hidden = n > 0;
    var bad = (counts.open || 0) + (counts.forced_open || 0);
    document.title = (bad ? '(' + bad + ' open) ' : '') + baseTitle;
    favicon(worst || 'disabled');
  }

  function favicon(state) {
    var color = colors[state];
    if (!color || color === lastIcon) return;
    var c = document.createElement('canvas');
    c.width = c.height = 32;
    var g = c.getContext('2d');
    if (!g) return;
    lastIcon = color;
    g.fillStyle = color;
    g.beginPath();
    g.arc(16, 16, 14, 0, 2 * Math.PI);
    g.fill();
    icon.setAttribute('href', c.toDataURL('image/png'));
  }

  function reset(t) {
    if (t.busy) return;
    var button = t.f.reset;
    t.busy = true;
    button.setAttribute('aria-disabled', 'true');
    showError(t, '');
    fetch(base + '/circuit-breakers/' + encodeURIComponent(t.name) + '/reset', {
      method: 'POST',
      cache: 'no-store',
      headers: { accept: 'application/json' },
    })
      .then(function (r) {
        return r.json().catch(function () { return null; }).then(function (s) {
          if (r.ok) {
            if (s && s.name === t.name) { update(s, Date.now()); summarize(); }
            return;
          }
          showError(t, r.status === 401 ? 'Sign in to reset this breaker (401).'
            : r.status === 403 ? 'You are not allowed to reset this breaker (403).'
            : 'Reset failed (HTTP ' + r.status + ').');
        });
      })
      .catch(function () { showError(t, 'Reset failed: the server did not answer.'); })
      .then(function () { t.busy = false; button.removeAttribute('aria-disabled'); });
  }

  function showError(t, text) {
    t.f.err.textContent = text;
    t.f.err.hidden = !text;
  }

  function connect() {
    clearTimeout(retryTimer);
    if (source) source.close();
    var es = new EventSource(base + '/circuit-breakers/stream');
    source = es;
    es.addEventListener('open', function () { setStatus('live', 'Live'); });
    es.addEventListener('error', function () {
      setStatus('reconnecting', 'Reconnecting\\u2026');
      if (es.readyState === 2) retryTimer = setTimeout(connect, 5000);
    });
    es.addEventListener('snapshot', function (e) {
      var list = parse(e);
      if (Array.isArray(list)) replaceAll(list, Date.now());
      setStatus('live', 'Live');
    });
    es.addEventListener('state', function (e) {
      var s = parse(e);
      if (s) { update(s, Date.now()); summarize(); }
    });
    es.addEventListener('removed', function (e) {
      var d = parse(e);
      if (d && typeof d.name === 'string') { remove(d.name); summarize(); }
    });
  }

  setInterval(function () {
    var now = Date.now();
    tiles.forEach(function (t) { countdown(t, now); });
  }, 1000);

  fetch(base + '/circuit-breakers', { cache: 'no-store', headers: { accept: 'application/json' } })
    .then(function (r) {
      if (!r.ok) throw new Error('HTTP ' + r.status);
      return r.json();
    })
    .then(function (list) { if (Array.isArray(list)) replaceAll(list, Date.now()); })
    .catch(function () { setStatus('error', 'Could not load the breakers; waiting for the stream'); })
    .then(connect);
})();
`;

/**
 * The live circuit-breaker dashboard: one self-contained HTML page (inline CSS and script, no
 * external resource) that loads `<basePath>/circuit-breakers`, follows
 * `<basePath>/circuit-breakers/stream` and, with `admin`, offers a reset button per breaker. It
 * runs under the Content-Security-Policy that `HealthRoutes` sends with it.
 *
 * @throws ConfigError when an option is invalid
 * @example
 * ```ts
 * const html = dashboardPage({ basePath: '/health', admin: false });
 * ```
 */
export function dashboardPage(options: DashboardPageOptions): string {
  checkObject(OWNER, 'options', options);
  checkKnownKeys(OWNER, '', options, ['basePath', 'admin', 'title']);
  if (typeof options.basePath !== 'string') {
    throw new ConfigError(OWNER, 'basePath', options.basePath, 'must be a string');
  }
  if (typeof options.admin !== 'boolean') {
    throw new ConfigError(OWNER, 'admin', options.admin, 'must be a boolean');
  }
  const title = escapeHtml(
    options.title === undefined ? 'Circuit breakers' : stringOption(OWNER, 'title', options.title),
  );
  const actions = options.admin
    ? '<div class="actions"><button type="button" data-f="reset">Reset</button><p class="err" data-f="err" role="alert" hidden></p></div>'
    : '';
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light dark">
<meta name="referrer" content="no-referrer">
<title>${title}</title>
<link id="icon" rel="icon" href="data:,">
<style>${STYLE}</style>
</head>
<body data-base="${escapeHtml(options.basePath)}" data-admin="${String(options.admin)}">
<header>
<h1>${title}</h1>
<p id="status" class="status" role="status" aria-live="polite" data-status="connecting">Connecting…</p>
</header>
<main>
<p id="summary" class="summary"></p>
<p id="empty" class="empty" hidden>No circuit breakers yet.</p>
<ul id="grid" class="grid" aria-label="Circuit breakers"></ul>
<p id="announce" class="sr" aria-live="polite"></p>
</main>
<template id="tile"><li class="tile" data-state="unknown"><div class="head"><h2 class="name" data-f="name"></h2><span class="badge" data-f="state"></span></div><dl><dt>Failure rate</dt><dd data-f="rate"></dd><dt>Calls in window</dt><dd data-f="calls"></dd><dt>Consecutive failures</dt><dd data-f="consecutive"></dd><dt>Backoff level</dt><dd data-f="backoff"></dd><dt>Next probe</dt><dd data-f="next"></dd></dl>${actions}</li></template>
<script>${SCRIPT}</script>
</body>
</html>
`;
}

/** Escapes text for HTML element content and attribute values. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (ch) => `&#${ch.charCodeAt(0)};`);
}
