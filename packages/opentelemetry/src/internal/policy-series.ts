import { ConfigError } from '@breakwater/core';
import type { Attributes } from '@opentelemetry/api';
import type { Instruments } from '../instrument';

/**
 * A policy {@link instrument} can report: anything with `on(event, listener)` returning an
 * unsubscribe function. Core's policies say what they are in `kind`; any other object is taken
 * for a load shedder or concurrency limiter (`rejected` and `limitChanged` events, and an
 * optional `snapshot()` with numeric `limit` and `inFlight`).
 */
export interface InstrumentablePolicy {
  /** `'retry'`, `'fallback'`, `'bulkhead'` or `'timeout'` for core's policies. */
  readonly kind?: string;
  /** Subscribes to an event; returns the function that unsubscribes. */
  on(event: never, listener: never): unknown;
  /** The current limit and calls in flight of a load shedder, read at collection time. */
  snapshot?(): unknown;
}

/** What a policy is, as far as metrics go. */
export type PolicyKind = 'retry' | 'fallback' | 'bulkhead' | 'timeout' | 'load_shed';

const CORE_KINDS = new Set<string>(['retry', 'fallback', 'bulkhead', 'timeout']);

/** Core policies by their `kind`; any other object is a load shedder. */
export function policyKind(policy: InstrumentablePolicy): PolicyKind {
  const kind = policy.kind;
  return typeof kind === 'string' && CORE_KINDS.has(kind) ? (kind as PolicyKind) : 'load_shed';
}

type Listen = (event: string, listener: (payload: Record<string, unknown>) => void) => unknown;

/** The listeners of one named policy. */
export class PolicySeries {
  readonly attributes: Attributes;
  private readonly offs: (() => void)[] = [];
  private lastLimit: number | undefined;

  constructor(
    readonly name: string,
    private readonly policy: InstrumentablePolicy,
    readonly kind: PolicyKind,
    instruments: Instruments,
  ) {
    const attributes = { 'breakwater.policy.name': name };
    this.attributes = attributes;
    const { spanEvent } = instruments;
    const event = (eventName: string, extra: Attributes): void =>
      spanEvent?.(eventName, { ...attributes, ...extra });
    switch (kind) {
      case 'retry': {
        const byReason = new Map<string, Attributes>();
        this.listen('retry', ({ attempt, delayMs }) => {
          instruments.retries.add(1, attributes);
          if (spanEvent !== undefined) {
            event('breakwater.retry', {
              'breakwater.retry.attempt': Number(attempt),
              'breakwater.retry.delay_ms': Number(delayMs),
            });
          }
        });
        this.listen('giveUp', ({ reason }) => {
          const key = String(reason);
          let labels = byReason.get(key);
          if (labels === undefined) {
            byReason.set(key, (labels = { ...attributes, 'breakwater.reason': key }));
          }
          instruments.giveUps.add(1, labels);
        });
        break;
      }
      case 'fallback':
        this.listen('fallback', () => {
          instruments.fallbacks.add(1, attributes);
          if (spanEvent !== undefined) event('breakwater.fallback', {});
        });
        break;
      case 'bulkhead': {
        const full = { ...attributes, 'breakwater.reason': 'full' };
        const queueTimeout = { ...attributes, 'breakwater.reason': 'queueTimeout' };
        this.listen('rejected', ({ reason }) => {
          const labels = reason === 'queueTimeout' ? queueTimeout : full;
          instruments.bulkheadRejections.add(1, labels);
          if (spanEvent !== undefined) event('breakwater.bulkhead.rejected', labels);
        });
        break;
      }
      case 'timeout':
        this.listen('timeout', () => instruments.timeouts.add(1, attributes));
        break;
      case 'load_shed':
        this.listen('rejected', ({ limit, inFlight }) => {
          instruments.loadShedRejections.add(1, attributes);
          if (spanEvent !== undefined) {
            event('breakwater.loadshed.rejected', {
              'breakwater.loadshed.limit': Number(limit),
              'breakwater.loadshed.in_flight': Number(inFlight),
            });
          }
        });
        this.listen(
          'limitChanged',
          ({ to }) => {
            if (typeof to === 'number' && Number.isFinite(to)) this.lastLimit = to;
          },
          true,
        );
        break;
    }
  }

  /** Limit and calls in flight of a load shedder, from its snapshot or its last event. */
  gauges(): { limit: number | undefined; inFlight: number | undefined } | undefined {
    if (this.kind !== 'load_shed') return undefined;
    let limit = this.lastLimit;
    let inFlight: number | undefined;
    if (typeof this.policy.snapshot === 'function') {
      try {
        const snapshot = this.policy.snapshot() as { limit?: unknown; inFlight?: unknown } | null;
        if (typeof snapshot?.limit === 'number' && Number.isFinite(snapshot.limit)) {
          limit = snapshot.limit;
        }
        if (typeof snapshot?.inFlight === 'number' && Number.isFinite(snapshot.inFlight)) {
          inFlight = snapshot.inFlight;
        }
      } catch {
        // A failing snapshot leaves the gauges out of this collection.
      }
    }
    return { limit, inFlight };
  }

  off(): void {
    for (const off of this.offs) off();
  }

  /** Subscribes through the policy's own `on`; an event it does not know is a config error. */
  private listen(
    event: string,
    listener: (payload: Record<string, unknown>) => void,
    optional = false,
  ): void {
    let off: unknown;
    try {
      off = (this.policy.on as unknown as Listen).call(this.policy, event, listener);
    } catch (error) {
      if (optional) return;
      this.off();
      throw new ConfigError(
        'instrument',
        `policies.${this.name}`,
        this.policy,
        `must accept on('${event}', listener) (${String(error)})`,
      );
    }
    if (typeof off === 'function') this.offs.push(off as () => void);
  }
}
