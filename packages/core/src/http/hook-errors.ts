import { describeError, log, type Logger } from '../internal/log';

/** Shortest gap between two log lines about failing hooks of one middleware. */
const LOG_GAP_MS = 1_000;

/**
 * Reports errors thrown or rejected by user hooks of an HTTP middleware (`key`, `skip`,
 * `isFailureStatus`, `handler`, ...). With a logger, one `error` line names the middleware, the
 * hook and the error (no stack), at most one line a second (the lines in between are counted);
 * without one, the first error is reported once through `process.emitWarning`. Never throws.
 * @internal
 */
export class HookErrors {
  private lastLogAt = -Infinity;
  private suppressed = 0;
  private warned = false;

  constructor(
    private readonly owner: string,
    private readonly name: string,
    private readonly logger: Logger | undefined,
  ) {}

  /** Reports that `hook` failed with `error`; `outcome` says what happened to the request. */
  report(hook: string, error: unknown, outcome: string): void {
    const line = `[${this.owner}] ${this.name} ${hook} failed (${describeError(error)}); ${outcome}`;
    const logger = this.logger;
    if (logger === undefined) {
      if (this.warned) return;
      this.warned = true;
      process.emitWarning(`${line}; further failures are not reported`, {
        code: 'BREAKWATER_HOOK_FAILED',
      });
      return;
    }
    const now = Date.now();
    if (now - this.lastLogAt < LOG_GAP_MS) {
      this.suppressed++;
      return;
    }
    this.lastLogAt = now;
    const more = this.suppressed > 0 ? ` (${this.suppressed} more since the last line)` : '';
    this.suppressed = 0;
    log(logger, 'error', line + more);
  }
}
