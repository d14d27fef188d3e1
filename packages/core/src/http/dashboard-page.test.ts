import { describe, expect, it } from '@jest/globals';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { Script } from 'node:vm';
import { isConfigError } from '../errors';
import { DASHBOARD_CSP, dashboardPage, escapeHtml } from './dashboard-page';

function attributes(html: string, name: string): string[] {
  return [...html.matchAll(new RegExp(`\\s${name}\\s*=\\s*("[^"]*"|'[^']*'|[^\\s>]+)`, 'gi'))].map(
    (m) => m[1]!.replace(/^["']|["']$/g, ''),
  );
}

function scripts(html: string): string[] {
  return [...html.matchAll(/<script([^>]*)>([\s\S]*?)<\/script>/gi)].map((m) => {
    expect(m[1]!.trim()).toBe('');
    return m[2]!;
  });
}

describe('dashboardPage', () => {
  const page = dashboardPage({ basePath: '/health', admin: true });

  it('is one self-contained document', () => {
    expect(page.startsWith('<!doctype html>')).toBe(true);
    expect(page).toContain('<html lang="en">');
    expect(page).toContain('<meta name="viewport" content="width=device-width, initial-scale=1">');
    for (const name of ['src', 'href', 'action', 'poster', 'srcset']) {
      for (const value of attributes(page, name)) {
        expect(value).not.toMatch(/^\s*(https?:|\/\/)/i);
        expect(value).toMatch(/^data:/);
      }
    }
    expect(page).not.toMatch(/https?:|\/\/[a-z0-9]/i);
    expect(page).not.toMatch(/@import|<link[^>]*stylesheet|<iframe|<object|<embed/i);
    expect(page).not.toMatch(/[^A-Za-z]url\(/);
    expect(scripts(page)).toHaveLength(1);
  });

  it('ships a script that parses', () => {
    for (const script of scripts(page)) {
      expect(() => new Script(script)).not.toThrow();
      expect(script).not.toMatch(/innerHTML|outerHTML|insertAdjacentHTML|document\.write|eval\(/);
    }
  });

  it('reads the history and follows the stream under the base path', () => {
    const script = scripts(page)[0]!;
    expect(script).toContain('/dashboard/history`');
    expect(script).toContain('/circuit-breakers/stream`');
    expect(script).toContain('/reset`');
    expect(page).toContain('data-base="/health"');
  });

  it('inlines exactly the script and styles its CSP hashes allow', () => {
    const hash = (text: string): string =>
      `'sha256-${createHash('sha256').update(text, 'utf8').digest('base64')}'`;
    const style = /<style>([\s\S]*?)<\/style>/.exec(page)![1]!;
    expect(DASHBOARD_CSP).toContain(`script-src ${hash(scripts(page)[0]!)}`);
    expect(DASHBOARD_CSP).toContain(`style-src ${hash(style)}`);
    expect(DASHBOARD_CSP).not.toContain('unsafe-inline');
    expect(page).not.toMatch(/\sstyle=/);
  });

  it('is generated from client.ts and dashboard.css (assets.generated.ts is up to date)', () => {
    const script = join(__dirname, '../../scripts/build-dashboard.mjs');
    const result = spawnSync(process.execPath, [script, '--check'], { encoding: 'utf8' });
    expect(result.stderr).toBe('');
    expect(result.status).toBe(0);
  }, 30_000);

  it('has a heading and a live status region', () => {
    expect(page).toMatch(/<h1>Circuit breakers<\/h1>/);
    expect(page).toMatch(/<title>Circuit breakers<\/title>/);
    expect(page).toMatch(/<p id="status"[^>]*role="status"[^>]*aria-live="polite"/);
  });

  it('escapes the title and the base path', () => {
    const html = dashboardPage({
      basePath: '/x"><script>alert(1)</script>',
      admin: false,
      title: '</title><img src=x onerror=alert(2)> & "Ops"',
    });
    expect(html).not.toContain('<script>alert(1)');
    expect(html).not.toContain('<img src=x');
    expect(html).toContain('data-base="/x&#34;&#62;&#60;script&#62;alert(1)&#60;/script&#62;"');
    expect(html).toContain(
      '<title>&#60;/title&#62;&#60;img src=x onerror=alert(2)&#62; &#38; &#34;Ops&#34;</title>',
    );
    expect(html.match(/<script>/g)).toHaveLength(1);
  });

  it('shows reset buttons only with admin', () => {
    expect(page.match(/<button/g)).toHaveLength(1);
    expect(page).toContain('data-f="reset"');
    const readOnly = dashboardPage({ basePath: '/health', admin: false });
    expect(readOnly).not.toContain('<button');
    expect(readOnly).not.toContain('data-f="reset"');
    expect(readOnly).toContain('data-admin="false"');
  });

  it('validates its options', () => {
    const bad: unknown[] = [
      undefined,
      { admin: true },
      { basePath: 1, admin: true },
      { basePath: '/health', admin: 'yes' },
      { basePath: '/health', admin: true, title: '' },
      { basePath: '/health', admin: true, tilte: 'x' },
    ];
    for (const options of bad) {
      let thrown: unknown;
      try {
        dashboardPage(options as Parameters<typeof dashboardPage>[0]);
      } catch (error) {
        thrown = error;
      }
      expect(isConfigError(thrown)).toBe(true);
    }
  });

  it('escapeHtml escapes the five HTML specials', () => {
    expect(escapeHtml(`<a href="x">'&'</a>`)).toBe(
      '&#60;a href=&#34;x&#34;&#62;&#39;&#38;&#39;&#60;/a&#62;',
    );
  });
});
