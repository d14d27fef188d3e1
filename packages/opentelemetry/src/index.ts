export { ATTRIBUTES, INSTRUMENT_NAMES, OTHER_BREAKERS, instrument } from './instrument';
export type { InstrumentOptions, Instrumentation } from './instrument';
