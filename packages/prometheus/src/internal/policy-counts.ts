import {
  listenToPolicy,
  loadShedGauges,
  type InstrumentablePolicy,
  type InstrumentedPolicyKind,
} from '@breakwater/core';

/** Event counts of one named policy; written by its listeners, read at scrape time. */
export class PolicyCounts {
  /** Retries (retry), fallbacks, timeouts or rejections (bulkhead, load shedder). */
  events = 0;
  /** Give-ups of a retry policy, or rejections of a bulkhead, by reason. */
  readonly byReason = new Map<string, number>();
  readonly off: () => void;
  private lastLimit: number | undefined;

  constructor(
    readonly name: string,
    private readonly policy: InstrumentablePolicy,
    readonly kind: InstrumentedPolicyKind,
  ) {
    const count = (): void => {
      this.events++;
    };
    const countReason = ({ reason }: Readonly<Record<string, unknown>>): void => {
      const key = String(reason);
      this.byReason.set(key, (this.byReason.get(key) ?? 0) + 1);
    };
    const listen = (
      listeners: Parameters<typeof listenToPolicy>[3],
      optional?: readonly string[],
    ): (() => void) => listenToPolicy('collectMetrics', name, policy, listeners, optional);
    switch (kind) {
      case 'retry':
        for (const reason of ['maxAttempts', 'budget', 'aborted']) this.byReason.set(reason, 0);
        this.off = listen({ retry: count, giveUp: countReason });
        break;
      case 'fallback':
        this.off = listen({ fallback: count });
        break;
      case 'bulkhead':
        for (const reason of ['full', 'queueTimeout']) this.byReason.set(reason, 0);
        this.off = listen({ rejected: countReason });
        break;
      case 'timeout':
        this.off = listen({ timeout: count });
        break;
      case 'load_shed':
        this.off = listen(
          {
            rejected: count,
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
  gauges(): { limit: number | undefined; inFlight: number | undefined } {
    const gauges = loadShedGauges(this.policy);
    return { limit: gauges.limit ?? this.lastLimit, inFlight: gauges.inFlight };
  }
}
