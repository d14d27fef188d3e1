import { describe, expect, it } from '@jest/globals';
import { resolveBreakerOptions } from './options';
import {
  CLAIM,
  CircuitStateMachine,
  FAILED,
  REJECTED,
  SUCCESS,
  isAdmitted,
  isProbe,
  type ProbeSource,
} from './state-machine';
import type { CircuitState } from './circuit-state';
import { FakeClock } from '../../test/breaker-helpers';

function machine(options: Record<string, unknown> = {}) {
  const clock = new FakeClock();
  const transitions: Array<[CircuitState, CircuitState, string]> = [];
  const o = resolveBreakerOptions({ name: 'm', clock, failureThreshold: 2, ...options });
  const m = new CircuitStateMachine(o, {
    onTransition: (from, to, reason) => {
      transitions.push([from, to, reason]);
    },
  });
  return { m, clock, transitions };
}

describe('CircuitStateMachine', () => {
  it('names its tickets: generations and probes are admitted, REJECTED and CLAIM are not', () => {
    expect(isAdmitted(1)).toBe(true);
    expect(isAdmitted(-3)).toBe(true);
    expect(isAdmitted(REJECTED)).toBe(false);
    expect(isAdmitted(CLAIM)).toBe(false);
    expect(isProbe(-3)).toBe(true);
    expect(isProbe(CLAIM)).toBe(false);
    expect(isProbe(1)).toBe(false);
  });

  it('returns a trip reason without opening; the caller trips', () => {
    const { m, transitions } = machine();
    const ticket = m.admit();
    expect(m.recordClosed(ticket, true, false)).toBeUndefined();
    expect(m.recordClosed(ticket, true, false)).toBe('2 consecutive failures');
    expect(m.current).toBe('closed');
    m.trip('2 consecutive failures');
    expect(transitions).toEqual([['closed', 'open', '2 consecutive failures']]);
    // An outcome of the old generation changes nothing.
    expect(m.recordClosed(ticket, true, false)).toBeUndefined();
  });

  it('admits probes lazily once the open time is up, up to maxConcurrent', () => {
    const { m, clock, transitions } = machine({
      openDurationMs: 100,
      halfOpen: { maxConcurrent: 2 },
    });
    m.trip('x');
    expect(m.admit()).toBe(REJECTED);
    clock.advance(100);
    const a = m.admit();
    const b = m.admit();
    expect([isProbe(a), isProbe(b)]).toEqual([true, true]);
    expect(m.admit()).toBe(REJECTED);
    expect(transitions.at(-1)).toEqual(['open', 'half_open', 'open time elapsed']);
    m.settleProbe(m.releaseProbe(a), SUCCESS);
    expect(m.current).toBe('closed');
    // b belonged to the half-open state that ended: settling it changes nothing.
    m.settleProbe(m.releaseProbe(b), FAILED);
    expect(m.current).toBe('closed');
  });

  it('asks a probe source for shared permits: a parked one, a claim, or a refusal', () => {
    const { m, clock } = machine({ openDurationMs: 100 });
    m.trip('x');
    clock.advance(100);
    let parked = true;
    const source: ProbeSource = { held: 0, takeParked: () => parked, mayClaim: () => true };
    expect(isProbe(m.admit(source))).toBe(true);
    parked = false;
    expect(m.admit(source)).toBe(REJECTED); // the parked probe holds the only permit
    m.force('open', 'again', 0);
    expect(m.admit(source)).toBe(CLAIM);
    expect(m.admit({ ...source, held: 1 })).toBe(REJECTED);
  });
});
