/** Per-service counters of the gateway, for the demo's summary table and its own metric. */
import { Counter, type Registry } from 'prom-client';

/** The upstream services behind the gateway. */
export const SERVICES = ['plant-id', 'weather', 'inventory'] as const;

/** The name of an upstream service. */
export type ServiceName = (typeof SERVICES)[number];

/** What happened to the requests for one service. */
export interface ServiceStats {
  /** Requests the gateway received for the service. */
  calls: number;
  /** Answered with fresh data (from the upstream, or from a cache entry still fresh). */
  successes: number;
  /** The upstream was called and failed (after retries): error, 5xx, timeout or quota. */
  failures: number;
  /** Not sent upstream at all: the circuit was open. */
  rejected: number;
  /** Failed or rejected requests answered with the last good answer, marked degraded. */
  fallbacks: number;
  /** Refused with 429 by the per-client rate limit. */
  rateLimited: number;
  /** Extra attempts made after a failed one. */
  retries: number;
}

type Field = Exclude<keyof ServiceStats, 'calls'>;

const METRIC_OUTCOME: Record<Exclude<Field, 'retries'>, string> = {
  successes: 'success',
  failures: 'failure',
  rejected: 'rejected',
  fallbacks: 'fallback',
  rateLimited: 'rate_limited',
};

/**
 * Counters per service, mirrored in `gateway_requests_total{service, outcome}` and
 * `gateway_upstream_retries_total{service}`.
 */
export class GatewayStats {
  private readonly byService = new Map<ServiceName, ServiceStats>();
  private readonly outcomes: Counter<'service' | 'outcome'>;
  private readonly retries: Counter<'service'>;

  constructor(register: Registry) {
    for (const service of SERVICES) {
      this.byService.set(service, {
        calls: 0,
        successes: 0,
        failures: 0,
        rejected: 0,
        fallbacks: 0,
        rateLimited: 0,
        retries: 0,
      });
    }
    this.outcomes = new Counter({
      name: 'gateway_requests_total',
      help: 'Outcomes of the requests through the gateway by service (success, failure, rejected, fallback, rate_limited).',
      labelNames: ['service', 'outcome'],
      registers: [register],
    });
    this.retries = new Counter({
      name: 'gateway_upstream_retries_total',
      help: 'Attempts made again after a failed upstream call, by service.',
      labelNames: ['service'],
      registers: [register],
    });
  }

  /** Counts one request received for `service`. */
  call(service: ServiceName): void {
    this.byService.get(service)!.calls++;
  }

  /** Counts one outcome for `service`. */
  count(service: ServiceName, field: Field): void {
    this.byService.get(service)![field]++;
    if (field === 'retries') this.retries.inc({ service });
    else this.outcomes.inc({ service, outcome: METRIC_OUTCOME[field] });
  }

  /** A copy of the counters of every service. */
  snapshot(): Record<ServiceName, ServiceStats> {
    const copy = {} as Record<ServiceName, ServiceStats>;
    for (const [service, stats] of this.byService) copy[service] = { ...stats };
    return copy;
  }
}
