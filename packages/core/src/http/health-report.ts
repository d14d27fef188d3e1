import type { CircuitBreakerRegistry } from '../breaker/registry';
import type { CircuitBreakerSnapshot, CircuitState } from '../breaker/circuit-breaker';
import type { RateLimiterHealth } from '../rate-limit/rate-limiter';

/** Health status in the `application/health+json` vocabulary. */
export type HealthStatus = 'pass' | 'warn' | 'fail';

/** Anything that reports rate-limit store health (a `RateLimiter`). */
export interface HealthReporter {
  readonly name: string;
  health(): RateLimiterHealth;
}

/** What a health report covers. */
export interface HealthSources {
  /** Breakers to report. */
  registry?: CircuitBreakerRegistry | undefined;
  /** Limiters whose stores to report. */
  limiters?: readonly HealthReporter[] | undefined;
  /**
   * Breakers whose open circuit makes the service fail (`/health` 503, `/health/ready` 503);
   * other open circuits only warn. A list of names or a predicate. @defaultValue none
   */
  critical?: readonly string[] | ((name: string) => boolean) | undefined;
}

/** What {@link healthReport} covers: the health sources plus load shedders. */
export interface HealthReportSources extends HealthSources {
  /** Load shedders to report: `warn` while one sheds requests. */
  loadShedders?: readonly LoadShedReporter[] | undefined;
}

/** Anything that reports load shedding (a `LoadShedder`). */
export interface LoadShedReporter {
  readonly name: string;
  snapshot(): { limit: number | null; inFlight: number; rejected: number; shedding: boolean };
}

/** One check of a health report (draft-inadarei-api-health-check). */
export interface HealthCheck {
  componentId: string;
  componentType: 'circuit-breaker' | 'rate-limit-store' | 'load-shedder';
  status: HealthStatus;
  observedValue: string;
  critical?: boolean;
  time: string;
  output?: string;
}

/** An `application/health+json` document. */
export interface HealthReport {
  status: HealthStatus;
  checks: Record<string, HealthCheck[]>;
  [member: string]: unknown;
}

const WORSE: Record<HealthStatus, number> = { pass: 0, warn: 1, fail: 2 };

/** Whether `state` rejects calls. */
export function isOpenState(state: CircuitState): boolean {
  return state === 'open' || state === 'forced_open';
}

/**
 * Resolves the `critical` option into a predicate. A predicate that throws makes the breaker
 * critical: a broken hook never hides an open circuit, nor turns a health answer into an error.
 */
export function criticalPredicate(critical: HealthSources['critical']): (name: string) => boolean {
  if (critical === undefined) return () => false;
  if (typeof critical === 'function') {
    return (name) => {
      try {
        return Boolean(critical(name));
      } catch {
        return true;
      }
    };
  }
  const names = new Set(critical);
  return (name) => names.has(name);
}

/** The status one breaker contributes: open is `fail` when critical, else `warn`. */
export function breakerStatus(snapshot: CircuitBreakerSnapshot, critical: boolean): HealthStatus {
  switch (snapshot.state) {
    case 'closed':
      return 'pass';
    case 'open':
    case 'forced_open':
      return critical ? 'fail' : 'warn';
    case 'half_open':
    case 'disabled':
      return 'warn';
  }
}

/**
 * Builds the health document: one check per breaker and per limiter store, and the worst status
 * overall. Contains states and counts only, never an error message.
 */
export function healthReport(sources: HealthReportSources, now: Date = new Date()): HealthReport {
  const isCritical = criticalPredicate(sources.critical);
  const time = now.toISOString();
  const checks: Record<string, HealthCheck[]> = {};
  let status: HealthStatus = 'pass';
  for (const snapshot of sources.registry?.snapshot() ?? []) {
    const critical = isCritical(snapshot.name);
    const check: HealthCheck = {
      componentId: snapshot.name,
      componentType: 'circuit-breaker',
      status: breakerStatus(snapshot, critical),
      observedValue: snapshot.state,
      time,
    };
    if (critical) check.critical = true;
    checks[`${snapshot.name}:circuit`] = [check];
    if (WORSE[check.status] > WORSE[status]) status = check.status;
  }
  for (const limiter of sources.limiters ?? []) {
    const health = limiter.health();
    const check: HealthCheck = {
      componentId: limiter.name,
      componentType: 'rate-limit-store',
      status: health.status,
      observedValue: health.store,
      time,
    };
    if (health.status !== 'pass') {
      check.output = `primary store unavailable; answering with policy "${health.onStoreFailure}"`;
    }
    checks[`${limiter.name}:rate-limit-store`] = [check];
    if (WORSE[check.status] > WORSE[status]) status = check.status;
  }
  for (const shedder of sources.loadShedders ?? []) {
    const check = loadShedCheck(shedder, time);
    checks[`${shedder.name}:load-shedder`] = [check];
    if (WORSE[check.status] > WORSE[status]) status = check.status;
  }
  return { status, checks };
}

function loadShedCheck(shedder: LoadShedReporter, time: string): HealthCheck {
  const { limit, inFlight, rejected, shedding } = shedder.snapshot();
  const check: HealthCheck = {
    componentId: shedder.name,
    componentType: 'load-shedder',
    status: shedding ? 'warn' : 'pass',
    observedValue: limit === null ? `${inFlight} in flight` : `${inFlight}/${limit} in flight`,
    time,
  };
  if (shedding) check.output = `shedding load (${rejected} requests shed since start)`;
  return check;
}

/** Whether the service is ready: no critical breaker rejects calls. */
export function isReady(sources: HealthSources): boolean {
  const isCritical = criticalPredicate(sources.critical);
  for (const breaker of sources.registry?.list() ?? []) {
    if (isCritical(breaker.name) && isOpenState(breaker.state)) return false;
  }
  return true;
}
