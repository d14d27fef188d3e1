/**
 * `--otel`: the gateway's breakers, limiter and policies as OpenTelemetry metrics, printed by the
 * SDK's console exporter (swap in an OTLP exporter to send them to a collector).
 */
import { instrument } from '@breakwater/opentelemetry';
import {
  ConsoleMetricExporter,
  MeterProvider,
  PeriodicExportingMetricReader,
} from '@opentelemetry/sdk-metrics';
import type { Gateway } from './gateway';

/** What {@link exportToConsole} returns: flushes the last export and stops. */
export interface ConsoleExport {
  close(): Promise<void>;
}

/** Exports the gateway's metrics to the console every `intervalMs`, and once more on close. */
export function exportToConsole(gateway: Gateway, intervalMs: number): ConsoleExport {
  const meterProvider = new MeterProvider({
    readers: [
      new PeriodicExportingMetricReader({
        exporter: new ConsoleMetricExporter(),
        exportIntervalMillis: intervalMs,
      }),
    ],
  });
  const instrumentation = instrument(gateway.registry, {
    meterProvider,
    limiters: [gateway.limiter],
    policies: gateway.policies,
  });
  return {
    async close() {
      await meterProvider.forceFlush();
      instrumentation.stop();
      await meterProvider.shutdown();
    },
  };
}
