import { describeError, log, type Logger } from '../internal/log';

/** Shortest gap between two log lines about failing hooks of one middleware. */
const LOG_GAP_MS = 1_000;

/**
 * Reports errors thrown or rejected by user hooks of an HTTP middleware (`key`, `skip`,
 * `isFailureStatus`, `handler`, ...). With a logger, one `error` line names the middleware, the
 * hook and the error (no stack), at most one line a second per hook (the rest are counted);
 * without one, the first error is reported once through `process.emitWarning`. Never throws.
 * @internal
 */
export class HookErrors {
  /** Per hook: when its last line was logged, and how many failures were not logged since. */
  private readonly logged = new Map<string, { at: number; suppressed: number }>();
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
    let last = this.logged.get(hook);
    if (last === undefined) {
      last = { at: -Infinity, suppressed: 0 };
      this.logged.set(hook, last);
    }
    if (now - last.at < LOG_GAP_MS) {
      last.suppressed++;
      return;
    }
    const more = last.suppressed > 0 ? ` (${last.suppressed} more since the last line)` : '';
    last.at = now;
    last.suppressed = 0;
    log(logger, 'error', line + more);
  }
}
