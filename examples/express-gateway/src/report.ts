/** Terminal output of the demo: one line per event as it happens, and the summary table. */
import type { CircuitState } from '@breakwater/core';
import { SERVICES, type ServiceName, type ServiceStats } from './stats';

type Paint = (text: string) => string;

interface Palette {
  bold: Paint;
  dim: Paint;
  red: Paint;
  green: Paint;
  yellow: Paint;
  cyan: Paint;
}

const plain: Paint = (text) => text;
const sgr =
  (open: number, close: number): Paint =>
  (text) =>
    `\u001b[${open}m${text}\u001b[${close}m`;

function palette(colour: boolean): Palette {
  if (!colour)
    return { bold: plain, dim: plain, red: plain, green: plain, yellow: plain, cyan: plain };
  return {
    bold: sgr(1, 22),
    dim: sgr(2, 22),
    red: sgr(31, 39),
    green: sgr(32, 39),
    yellow: sgr(33, 39),
    cyan: sgr(36, 39),
  };
}

const NAME_WIDTH = 18;
const CHANGE_WIDTH = 22;

/** Writes the demo's lines; colours only on a terminal, and never with `NO_COLOR`. */
export class Report {
  private readonly paint: Palette;
  private readonly startedAt = performance.now();

  constructor(
    private readonly write: (text: string) => void = (text) => void process.stdout.write(text),
    colour = process.stdout.isTTY === true && process.env.NO_COLOR === undefined,
  ) {
    this.paint = palette(colour);
  }

  /** Seconds since the report was created. */
  get elapsedSeconds(): number {
    return (performance.now() - this.startedAt) / 1_000;
  }

  line(text = ''): void {
    this.write(`${text}\n`);
  }

  title(text: string): void {
    this.line(this.paint.bold(text));
  }

  /** `label   value` lines of the banner. */
  field(label: string, value: string): void {
    this.line(`  ${this.paint.dim(label.padEnd(13))}${value}`);
  }

  /** The heading of the event lines. */
  eventsHeading(): void {
    this.line();
    this.line(
      this.paint.dim(
        `  ${'time'.padStart(7)}  ${'breaker'.padEnd(NAME_WIDTH)}${'transition'.padEnd(CHANGE_WIDTH)}reason`,
      ),
    );
  }

  /** A breaker's state change, as it happens. */
  transition(breaker: string, from: CircuitState, to: CircuitState, reason: string): void {
    const change = `${from} -> ${to}`.padEnd(CHANGE_WIDTH);
    const coloured =
      to === 'closed'
        ? this.paint.green(change)
        : to === 'half_open'
          ? this.paint.yellow(change)
          : this.paint.red(change);
    this.line(
      `  ${this.time()}  ${this.paint.bold(breaker.padEnd(NAME_WIDTH))}${coloured}${reason}`,
    );
  }

  /** Something that happened to an upstream or a store (the scenario, a Retry-After). */
  event(subject: string, text: string): void {
    this.line(
      `  ${this.time()}  ${this.paint.dim(subject.padEnd(NAME_WIDTH))}${this.paint.cyan(`* ${text}`)}`,
    );
  }

  /** The summary table: one row per service, a total, and what the columns mean. */
  summary(
    stats: Record<ServiceName, ServiceStats>,
    states: Record<ServiceName, CircuitState>,
    sent: number,
  ): void {
    const columns: [header: string, field: keyof ServiceStats][] = [
      ['calls', 'calls'],
      ['successes', 'successes'],
      ['failures', 'failures'],
      ['rejected', 'rejected'],
      ['fallbacks', 'fallbacks'],
      ['rate-limited', 'rateLimited'],
      ['retries', 'retries'],
    ];
    const total = {} as ServiceStats;
    for (const [, field] of columns)
      total[field] = SERVICES.reduce((n, s) => n + stats[s][field], 0);
    const rows: string[][] = SERVICES.map((service) => [
      service,
      ...columns.map(([, field]) => String(stats[service][field])),
      states[service],
    ]);
    rows.push(['total', ...columns.map(([, field]) => String(total[field])), '']);
    const headers = ['service', ...columns.map(([header]) => header), 'breaker'];
    const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
    // Text columns left-aligned, numbers right-aligned.
    const cell = (text: string, i: number): string =>
      i === 0 || i === headers.length - 1 ? text.padEnd(widths[i]!) : text.padStart(widths[i]!);
    const render = (row: string[]): string => `  ${row.map(cell).join('  ')}`.trimEnd();

    this.line();
    this.title(
      `Summary after ${this.elapsedSeconds.toFixed(1)} s: ${sent} requests sent to the gateway`,
    );
    this.line();
    this.line(this.paint.bold(render(headers)));
    this.line(this.paint.dim(render(widths.map((w) => '-'.repeat(w)))));
    rows.forEach((row, index) => {
      const line = render(row);
      if (index === rows.length - 1) {
        this.line(this.paint.dim(render(widths.map((w) => '-'.repeat(w)))));
        this.line(this.paint.bold(line));
      } else {
        this.line(line);
      }
    });
    this.line();
    this.line(
      this.paint.dim(
        '  successes  fresh answers (from the upstream, or a cache entry still fresh)',
      ),
    );
    this.line(this.paint.dim('  failures   the upstream was called and failed, after retries'));
    this.line(this.paint.dim('  rejected   the circuit was open: the upstream was not called'));
    this.line(
      this.paint.dim(
        '  fallbacks  failures and rejections answered with the last good answer ("degraded": true)',
      ),
    );
  }

  private time(): string {
    return this.paint.dim(`+${this.elapsedSeconds.toFixed(2)}s`.padStart(7));
  }
}
