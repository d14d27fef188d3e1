/** Options of the dashboard page. */
export interface DashboardPageOptions {
  /** Where the health routes are mounted, e.g. `/health`. */
  basePath: string;
  /** Whether to show reset buttons (only when the admin route exists). */
  admin: boolean;
  /** Page title. @defaultValue `'Circuit breakers'` */
  title?: string;
}

/** The live dashboard: one self-contained HTML page (no external resources). */
export function dashboardPage(options: DashboardPageOptions): string {
  const title = escapeHtml(options.title ?? 'Circuit breakers');
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${title}</title></head><body><h1>${title}</h1><p data-base="${escapeHtml(options.basePath)}" data-admin="${options.admin}"></p></body></html>`;
}

/** Escapes text for HTML element content and attribute values. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (ch) => `&#${ch.charCodeAt(0)};`);
}
