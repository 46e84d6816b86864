/** The Clock port: time is an input, so tests and records are reproducible. */

/** @category ports */
export interface Clock {
  readonly now: () => Date
}

/** The system clock. @category constructors */
export const systemClock: Clock = { now: () => new Date() }
