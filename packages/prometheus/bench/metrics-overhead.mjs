// The price of metrics on the hot path: a closed-circuit execute() with collectMetrics attached,
// against the same breaker without it. Run with `pnpm --filter @breakwater/prometheus bench`.
// Timings are printed, never asserted.
import { CircuitBreaker, CircuitBreakerRegistry } from '@breakwater/core';
import { Registry } from 'prom-client';
import { collectMetrics } from '@breakwater/prometheus';

const TARGET = 1.3;
const ROUNDS = Number(process.env.ROUNDS ?? 15);
const CALLS = Number(process.env.CALLS ?? 200_000);
const work = async () => 42;

const bare = new CircuitBreaker({ name: 'bare' });

const timedOnly = new CircuitBreaker({ name: 'timed-only' });
timedOnly.on('success', () => {});

const registry = new CircuitBreakerRegistry();
const withMetrics = registry.get('with-metrics');
const register = new Registry();
const collector = collectMetrics(registry, { register });

const cases = [
  ['execute, no metrics', bare],
  ['execute, empty success listener (the breaker timing each call)', timedOnly],
  ['execute, collectMetrics attached', withMetrics],
];

async function round(breaker, calls) {
  const start = process.hrtime.bigint();
  for (let i = 0; i < calls; i++) {
    if ((await breaker.execute(work)) !== 42) throw new Error('the call did not resolve to 42');
  }
  return Number(process.hrtime.bigint() - start) / calls;
}

const median = (values) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
};

for (const [, breaker] of cases) await round(breaker, CALLS / 4); // warm-up
const samples = cases.map(() => []);
for (let r = 0; r < ROUNDS; r++) {
  // Interleaved rounds, so that load on the machine hits every case alike.
  for (const [i, [, breaker]] of cases.entries()) {
    globalThis.gc?.();
    samples[i].push(await round(breaker, CALLS));
  }
}

const base = median(samples[0]);
console.log(`closed-circuit execute(), ${ROUNDS} rounds x ${CALLS} awaited calls, median ns/op`);
for (const [i, [label]] of cases.entries()) {
  const ns = median(samples[i]);
  console.log(`${label.padEnd(66)} ${ns.toFixed(1).padStart(8)} ns  ${(ns / base).toFixed(2)}x`);
}
const ratio = median(samples[2]) / base;
console.log(
  `\nmetrics overhead: ${ratio.toFixed(2)}x (target <= ${TARGET}x: ${ratio <= TARGET ? 'met' : 'NOT met'})`,
);

// The counts above really went through the collector.
const calls = await register.getSingleMetric('breakwater_calls_total').get();
const success = calls.values.find((v) => v.labels.outcome === 'success')?.value ?? 0;
if (success < ROUNDS * CALLS) throw new Error(`expected the calls to be counted, got ${success}`);
collector.stop();
