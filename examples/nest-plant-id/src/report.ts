/** Terminal output of the scenario: one line per request, transition and event, as they happen. */
import type { CircuitState, Clock } from '@breakwater/core';

type Paint = (text: string) => string;

const plain: Paint = (text) => text;
const sgr =
  (open: number, close: number): Paint =>
  (text) =>
    `\u001b[${open}m${text}\u001b[${close}m`;

interface Palette {
  bold: Paint;
  dim: Paint;
  red: Paint;
  green: Paint;
  yellow: Paint;
  cyan: Paint;
}

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

const SUBJECT_WIDTH = 22;
const CHANGE_WIDTH = 22;

/**
 * Writes the scenario's lines. Times are those of the scenario clock, so skipped open times show
 * as the jumps they are. Colours only on a terminal, and never with `NO_COLOR`.
 */
export class Report {
  private readonly paint: Palette;
  private startedAt: number;

  constructor(
    private readonly clock: Clock,
    private readonly write: (text: string) => void = (text) => void process.stdout.write(text),
    colour = process.stdout.isTTY === true && process.env.NO_COLOR === undefined,
  ) {
    this.paint = palette(colour);
    this.startedAt = clock.now();
  }

  /** Counts time from now on. */
  restart(): void {
    this.startedAt = this.clock.now();
  }

  /** Scenario seconds since the start. */
  get elapsedSeconds(): number {
    return (this.clock.now() - this.startedAt) / 1_000;
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
  heading(): void {
    this.line();
    this.line(this.paint.dim(`  ${'time'.padStart(7)}  ${'subject'.padEnd(SUBJECT_WIDTH)}event`));
  }

  /** A step of the story. */
  step(text: string): void {
    this.line();
    this.line(`  ${this.paint.bold(`-- ${text}`)}`);
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
      `  ${this.time()}  ${this.paint.bold(breaker.padEnd(SUBJECT_WIDTH))}${coloured}${reason}`,
    );
  }

  /** Something done to a simulated provider, or the clock moving. */
  event(subject: string, text: string): void {
    this.line(
      `  ${this.time()}  ${this.paint.dim(subject.padEnd(SUBJECT_WIDTH))}${this.paint.cyan(`* ${text}`)}`,
    );
  }

  /** A request and its answer: `status` coloured by what it means for the user. */
  request(subject: string, status: number, kind: string, text: string): void {
    const paintStatus =
      status >= 500 ? this.paint.red : kind === 'partial' ? this.paint.yellow : this.paint.green;
    this.line(
      `  ${this.time()}  ${subject.padEnd(SUBJECT_WIDTH)}${paintStatus(`${status}  ${kind.padEnd(9)}`)} ${text}`,
    );
  }

  /** A dim explanatory line under an event. */
  note(text: string): void {
    this.line(this.paint.dim(`  ${''.padStart(7)}  ${''.padEnd(SUBJECT_WIDTH)}${text}`));
  }

  private time(): string {
    return this.paint.dim(`+${this.elapsedSeconds.toFixed(1)}s`.padStart(7));
  }
}
