export { ATTRIBUTES, INSTRUMENT_NAMES, OTHER_BREAKERS, instrument } from './instrument';
export type { InstrumentOptions, Instrumentation } from './instrument';
export type { InstrumentablePolicy, PolicyKind } from './internal/policy-series';
