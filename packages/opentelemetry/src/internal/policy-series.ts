import {
  listenToPolicy,
  loadShedGauges,
  type InstrumentablePolicy,
  type InstrumentedPolicyKind,
} from '@breakwater/core';
import type { Attributes } from '@opentelemetry/api';
import type { Instruments } from '../instrument';

/** The listeners of one named policy; attribute objects are built once. */
export class PolicySeries {
  readonly attributes: Attributes;
  readonly off: () => void;
  private lastLimit: number | undefined;

  constructor(
    readonly name: string,
    private readonly policy: InstrumentablePolicy,
    readonly kind: InstrumentedPolicyKind,
    instruments: Instruments,
  ) {
    const attributes = { 'breakwater.policy.name': name };
    this.attributes = attributes;
    const { spanEvent } = instruments;
    const listen = (
      listeners: Parameters<typeof listenToPolicy>[3],
      optional?: readonly string[],
    ): (() => void) => listenToPolicy('instrument', name, policy, listeners, optional);
    switch (kind) {
      case 'retry': {
        const byReason = new Map<string, Attributes>();
        this.off = listen({
          retry: ({ attempt, delayMs }) => {
            instruments.retries.add(1, attributes);
            spanEvent?.('breakwater.retry', {
              ...attributes,
              'breakwater.retry.attempt': Number(attempt),
              'breakwater.retry.delay_ms': Number(delayMs),
            });
          },
          giveUp: ({ reason }) => {
            const key = String(reason);
            let labels = byReason.get(key);
            if (labels === undefined) {
              byReason.set(key, (labels = { ...attributes, 'breakwater.reason': key }));
            }
            instruments.giveUps.add(1, labels);
          },
        });
        break;
      }
      case 'fallback':
        this.off = listen({
          fallback: () => {
            instruments.fallbacks.add(1, attributes);
            spanEvent?.('breakwater.fallback', attributes);
          },
        });
        break;
      case 'bulkhead': {
        const full = { ...attributes, 'breakwater.reason': 'full' };
        const queueTimeout = { ...attributes, 'breakwater.reason': 'queueTimeout' };
        this.off = listen({
          rejected: ({ reason }) => {
            const labels = reason === 'queueTimeout' ? queueTimeout : full;
            instruments.bulkheadRejections.add(1, labels);
            spanEvent?.('breakwater.bulkhead.rejected', labels);
          },
        });
        break;
      }
      case 'timeout':
        this.off = listen({ timeout: () => instruments.timeouts.add(1, attributes) });
        break;
      case 'load_shed':
        this.off = listen(
          {
            rejected: ({ limit, inFlight }) => {
              instruments.loadShedRejections.add(1, attributes);
              spanEvent?.('breakwater.loadshed.rejected', {
                ...attributes,
                'breakwater.loadshed.limit': Number(limit),
                'breakwater.loadshed.in_flight': Number(inFlight),
              });
            },
            limitChanged: ({ to }) => {
              if (typeof to === 'number' && Number.isFinite(to)) this.lastLimit = to;
            },
          },
          ['limitChanged'],
        );
        break;
    }
  }

  /** Limit and calls in flight of a load shedder, from its snapshot or its last event. */
  gauges(): { limit: number | undefined; inFlight: number | undefined } | undefined {
    if (this.kind !== 'load_shed') return undefined;
    const gauges = loadShedGauges(this.policy);
    return { limit: gauges.limit ?? this.lastLimit, inFlight: gauges.inFlight };
  }
}
