/** The states of a circuit; `forced_open` and `disabled` are set by an operator. */
export type CircuitState = 'closed' | 'open' | 'half_open' | 'forced_open' | 'disabled';

/** Every state, in the order health reports and dashboards list them. */
export const STATES: readonly CircuitState[] = [
  'closed',
  'open',
  'half_open',
  'forced_open',
  'disabled',
];
