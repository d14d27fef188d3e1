import { STATES } from './circuit-state';
import type { RestoredCircuit } from './state-machine';
import type { CircuitBreakerStateJSON } from './types';
import { checkObject, integerOption, numberOption, oneOf } from '../internal/validate';

const OWNER = 'CircuitBreaker';

/**
 * Validates an `initialState` (the output of `toJSON()`, perhaps from storage) into the fields a
 * state machine restores. Missing times are NaN.
 * @throws ConfigError naming the `initialState.*` field that is invalid
 */
export function parseStateJSON(initial: CircuitBreakerStateJSON): RestoredCircuit {
  checkObject(OWNER, 'initialState', initial);
  const state = oneOf(OWNER, 'initialState.state', initial.state, STATES);
  const time = (key: 'openedAt' | 'nextAttemptAt' | 'closedAt'): number => {
    const value = initial[key];
    if (value === null || value === undefined) return NaN;
    return numberOption(OWNER, `initialState.${key}`, value, 0, Number.MAX_SAFE_INTEGER);
  };
  const backoffLevel = integerOption(
    OWNER,
    'initialState.backoffLevel',
    initial.backoffLevel ?? 0,
    0,
    64,
  );
  const consecutiveFailures = integerOption(
    OWNER,
    'initialState.consecutiveFailures',
    initial.consecutiveFailures ?? 0,
    0,
  );
  const closedAt = time('closedAt');
  return {
    state,
    consecutiveFailures,
    openedAt: time('openedAt'),
    nextAttemptAt: time('nextAttemptAt'),
    closedAt: Number.isNaN(closedAt) ? -Infinity : closedAt,
    backoffLevel,
  };
}

/** `toJSON()`'s shape from the machine's fields (NaN and infinite times as null). */
export function stateJSON(
  name: string,
  state: CircuitBreakerStateJSON['state'],
  consecutiveFailures: number,
  openedAt: number,
  nextAttemptAt: number,
  backoffLevel: number,
  closedAt: number,
): CircuitBreakerStateJSON {
  return {
    name,
    state,
    consecutiveFailures,
    openedAt: Number.isNaN(openedAt) ? null : openedAt,
    nextAttemptAt: Number.isNaN(nextAttemptAt) ? null : nextAttemptAt,
    backoffLevel,
    closedAt: Number.isFinite(closedAt) ? closedAt : null,
  };
}
