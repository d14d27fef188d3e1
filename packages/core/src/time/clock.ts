/** A source of the current time in milliseconds. Inject one in tests. */
export interface Clock {
  now(): number;
}

/** The system clock (`Date.now()`, read at each call so fake timers apply). */
export const systemClock: Clock = { now: () => Date.now() };
