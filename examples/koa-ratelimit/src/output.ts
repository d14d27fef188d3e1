/** Terminal output shared by the two modes: plain lines on stdout, and a logger that writes there. */
import type { Logger } from '@breakwater/core';

/** Writes one line to stdout. */
export function line(text = ''): void {
  process.stdout.write(`${text}\n`);
}

/** A label and a value, aligned. */
export function field(label: string, value: string): void {
  line(`  ${label.padEnd(11)}${value}`);
}

/** A logger for the limiter: each line on stdout, after `prefix()`. */
export function stdoutLogger(prefix: () => string): Logger {
  const write = (message: string): void => line(`${prefix()}${message}`);
  return { info: write, warn: write, error: write };
}

/** The local time as `HH:MM:SS`. */
export function clockTime(): string {
  return new Date().toTimeString().slice(0, 8);
}
