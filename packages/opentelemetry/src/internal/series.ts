import { isTimeoutError, type CircuitBreaker, type RateLimiter } from '@breakwater/core';
import { trace, type Tracer } from '@opentelemetry/api';
import { ATTRIBUTES, type Instruments } from '../instrument';

/** Listeners of one breaker; attribute objects are built once, never per call. */
export class BreakerSeries {
  readonly label: string;
  private readonly offs: (() => void)[] = [];

  constructor(
    readonly breaker: CircuitBreaker,
    label: string,
    instruments: Instruments,
    tracer: Tracer | undefined,
  ) {
    this.label = label;
    const name = { [ATTRIBUTES.breaker]: label };
    const { duration, spanEvent } = instruments;
    if (duration !== undefined) {
      const success = { ...name, [ATTRIBUTES.outcome]: 'success' };
      const failure = { ...name, [ATTRIBUTES.outcome]: 'failure' };
      const timeout = { ...name, [ATTRIBUTES.outcome]: 'timeout' };
      this.offs.push(
        breaker.on('success', ({ durationMs }) => duration.record(seconds(durationMs), success)),
        breaker.on('failure', ({ error, durationMs }) =>
          duration.record(seconds(durationMs), isTimeoutError(error) ? timeout : failure),
        ),
      );
    }
    this.offs.push(
      breaker.on('stateChange', ({ from, to, reason }) => {
        instruments.transitions.add(1, { ...name, [ATTRIBUTES.from]: from, [ATTRIBUTES.to]: to });
        if (spanEvent === undefined) return;
        const attributes = {
          [ATTRIBUTES.breaker]: breaker.name,
          [ATTRIBUTES.from]: from,
          [ATTRIBUTES.to]: to,
          [ATTRIBUTES.reason]: reason,
        };
        if (trace.getActiveSpan() === undefined && tracer !== undefined) {
          const span = tracer.startSpan('breakwater.circuit.transition', { attributes });
          span.end();
        } else {
          spanEvent('breakwater.circuit.transition', attributes);
        }
      }),
    );
    if (spanEvent !== undefined) {
      this.offs.push(
        breaker.on('rejected', ({ retryAfterMs }) =>
          spanEvent('breakwater.circuit.rejected', {
            [ATTRIBUTES.breaker]: breaker.name,
            'breakwater.retry_after_ms': retryAfterMs,
          }),
        ),
      );
    }
  }

  off(): void {
    for (const off of this.offs) off();
  }
}

/** Listeners of one limiter. */
export class LimiterSeries {
  private readonly offs: (() => void)[];

  constructor(
    readonly limiter: RateLimiter,
    instruments: Instruments,
  ) {
    const name = { [ATTRIBUTES.limiter]: limiter.name };
    const allowed = { ...name, [ATTRIBUTES.decision]: 'allowed' };
    const refused = { ...name, [ATTRIBUTES.decision]: 'refused' };
    const { spanEvent } = instruments;
    this.offs = [
      limiter.on('decision', ({ decision }) => {
        instruments.decisions.add(1, decision.allowed ? allowed : refused);
        if (!decision.allowed && spanEvent !== undefined) {
          spanEvent('breakwater.ratelimit.refused', {
            [ATTRIBUTES.limiter]: limiter.name,
            'breakwater.retry_after_ms': decision.retryAfterMs,
          });
        }
      }),
      limiter.on('storeFailure', () => instruments.storeErrors.add(1, name)),
    ];
  }

  off(): void {
    for (const off of this.offs) off();
  }
}

/** Milliseconds as the seconds OpenTelemetry records durations in. */
function seconds(durationMs: number): number {
  return durationMs > 0 ? durationMs / 1000 : 0;
}
