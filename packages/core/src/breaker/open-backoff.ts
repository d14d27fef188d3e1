import type { CircuitState } from './circuit-state';
import type { ResolvedBreakerOptions } from './options';

type BackoffSettings = Pick<
  ResolvedBreakerOptions,
  | 'openDurationMs'
  | 'backoffMultiplier'
  | 'backoffMaxMs'
  | 'backoffResetAfterMs'
  | 'maxBackoffLevel'
>;

/**
 * How long a circuit stays open: `openDurationMs × multiplier^level`, capped at `backoffMaxMs`.
 * The level grows at each reopen without recovery and returns to zero once the circuit has stayed
 * closed for `backoffResetAfterMs` (at once when that is 0). The Redis breaker script mirrors
 * these functions (`openTime`, `effectiveLevel`).
 */
export function openTimeMs(settings: BackoffSettings, level: number): number {
  if (settings.backoffMultiplier === 1 || level === 0) return settings.openDurationMs;
  // Whole milliseconds, as the Redis script computes them (a 1 ms open time × 1.5 is 1 ms).
  return Math.floor(
    Math.min(settings.backoffMaxMs, settings.openDurationMs * settings.backoffMultiplier ** level),
  );
}

/** The level after one more reopen. */
export function nextLevel(settings: BackoffSettings, level: number): number {
  return Math.min(level + 1, settings.maxBackoffLevel);
}

/** The level as decayed by `now`: a circuit closed for long enough is back at zero. */
export function effectiveLevel(
  settings: BackoffSettings,
  state: CircuitState,
  level: number,
  closedAt: number,
  now: number,
): number {
  const reset = settings.backoffResetAfterMs;
  if (state === 'closed' && (reset === 0 || now - closedAt >= reset)) return 0;
  return level;
}

/** Whether a circuit that trips now had closed too recently for its level to decay. */
export function reopenedSoon(settings: BackoffSettings, closedAt: number, now: number): boolean {
  return (
    settings.backoffMultiplier > 1 &&
    settings.backoffResetAfterMs > 0 &&
    now - closedAt < settings.backoffResetAfterMs
  );
}
