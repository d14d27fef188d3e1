import type { Clock } from '@breakwater/core';

/**
 * The time of the breakers and the cache: the real time plus whatever the scenario skipped.
 * `advance(60_000)` lets a 60 s open time pass at once; without calls to `advance` it is the
 * real clock.
 */
export class ScenarioClock implements Clock {
  private skippedMs = 0;

  constructor(private readonly base: () => number = Date.now) {}

  now(): number {
    return this.base() + this.skippedMs;
  }

  /** Moves the clock `ms` forward. */
  advance(ms: number): void {
    this.skippedMs += ms;
  }
}
