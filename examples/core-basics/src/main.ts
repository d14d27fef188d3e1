/**
 * A circuit breaker in front of a simulated dependency that fails for a while, then recovers.
 * Run it with `pnpm --filter @breakwater/example-core-basics start`.
 */
import { CircuitBreaker, isCircuitOpenError } from '@breakwater/core';

let now = 0;
const clock = { now: () => now };

// The dependency fails between t = 2 s and t = 9 s.
function lookUp(id: number): Promise<string> {
  if (now >= 2_000 && now < 9_000) return Promise.reject(new Error('upstream 503'));
  return Promise.resolve(`plant #${id}`);
}

const breaker = new CircuitBreaker({
  name: 'plant-id',
  failureThreshold: 3,
  openDurationMs: '2s',
  backoff: { multiplier: 2, maxMs: '8s' },
  clock,
});
breaker.on('stateChange', ({ from, to, reason }) =>
  console.log(
    `t=${(now / 1000).toFixed(1)}s  [CIRCUIT] ${breaker.name} ${from} -> ${to} (${reason})`,
  ),
);

const identify = breaker.wrap(lookUp);
const tally = { ok: 0, failed: 0, rejected: 0 };
for (let id = 0; now <= 20_000; id++, now += 250) {
  try {
    await identify(id);
    tally.ok++;
  } catch (error) {
    if (isCircuitOpenError(error)) tally.rejected++;
    else tally.failed++;
  }
}
console.log(
  `\n${tally.ok} succeeded, ${tally.failed} reached the failing dependency, ${tally.rejected} were rejected at once`,
);
console.log(breaker.snapshot());
