import { ConfigError } from '../errors';
import { checkKnownKeys, checkObject, stringOption } from '../internal/validate';
import {
  DASHBOARD_SCRIPT,
  DASHBOARD_SCRIPT_HASH,
  DASHBOARD_STYLE,
  DASHBOARD_STYLE_HASH,
} from './dashboard/assets.generated';

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

/**
 * The Content-Security-Policy the dashboard page runs under: no source but the page's own
 * inline script and styles (allowed by their hashes, not `'unsafe-inline'`), requests to its own
 * origin only.
 */
export const DASHBOARD_CSP = [
  "default-src 'none'",
  `script-src ${DASHBOARD_SCRIPT_HASH}`,
  `style-src ${DASHBOARD_STYLE_HASH}`,
  "connect-src 'self'",
  'img-src data:',
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

/**
 * The live circuit-breaker dashboard: one self-contained HTML page (inline CSS and script, no
 * external resource) that loads `<basePath>/dashboard/history`, follows
 * `<basePath>/circuit-breakers/stream` and, with `admin`, offers a reset button per breaker. Open
 * and critical breakers come first, each with sparklines of its calls, failures and rejections
 * and a timeline of its recent transitions; each rate limiter has a tile. Its script and styles
 * are `dashboard/client.ts` and `dashboard/dashboard.css`, bundled at build time; it runs under
 * {@link DASHBOARD_CSP}, which `HealthRoutes` sends with it.
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
  const spark = (lines: string[]): string =>
    `<svg class="spark" data-f="spark" viewBox="0 0 180 36" preserveAspectRatio="none" aria-hidden="true">${lines.map((c) => `<polyline class="${c}"/>`).join('')}</svg>`;
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light dark">
<meta name="referrer" content="no-referrer">
<title>${title}</title>
<link id="icon" rel="icon" href="data:,">
<style>${DASHBOARD_STYLE}</style>
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
<section id="limiter-section" hidden>
<h2 class="section">Rate limiters</h2>
<ul id="limiters" class="grid" aria-label="Rate limiters"></ul>
</section>
<p id="announce" class="sr" aria-live="polite"></p>
</main>
<template id="tile"><li class="tile" data-state="unknown"><div class="head"><h2 class="name" data-f="name"></h2><span class="tags"><span class="critical" data-f="critical" hidden>Critical</span><span class="badge" data-f="state"></span></span></div>${spark(['calls', 'failures', 'rejected'])}<p class="rates" data-f="rates"></p><svg class="timeline" data-f="timeline" viewBox="0 0 180 6" preserveAspectRatio="none" role="img" aria-label="State over the last 15 minutes"></svg><p class="last" data-f="last"></p><dl><dt>Failure rate</dt><dd data-f="rate"></dd><dt>Calls in window</dt><dd data-f="calls"></dd><dt>Consecutive failures</dt><dd data-f="consecutive"></dd><dt>Backoff level</dt><dd data-f="backoff"></dd><dt>Next probe</dt><dd data-f="next"></dd></dl>${actions}</li></template>
<template id="limiter"><li class="tile limiter" data-store="primary"><div class="head"><h2 class="name" data-f="name"></h2><span class="badge" data-f="store"></span></div>${spark(['allowed', 'denied'])}<dl><dt>Allowed</dt><dd data-f="allowed"></dd><dt>Denied</dt><dd data-f="denied"></dd></dl></li></template>
<script>${DASHBOARD_SCRIPT}</script>
</body>
</html>
`;
}

/** Escapes text for HTML element content and attribute values. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (ch) => `&#${ch.charCodeAt(0)};`);
}
