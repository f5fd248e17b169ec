/** A clock the test moves by hand: inject `now` wherever the code under test reads the time. */
export interface ManualClock {
  /** Milliseconds since the epoch, as `Date.now()` would answer. */
  readonly now: () => number;
  /** Whole seconds since the epoch, for JWT claims. */
  readonly seconds: () => number;
  /** Moves the clock forward (or back, with a negative amount), in milliseconds. */
  advance(ms: number): void;
}

/** A manual clock starting at `startMs` (default: 2030-01-01T00:00:00Z, a fixed and round instant). */
export function createManualClock(startMs = Date.UTC(2030, 0, 1)): ManualClock {
  let current = startMs;
  return {
    now: () => current,
    seconds: () => Math.floor(current / 1000),
    advance: (ms) => {
      current += ms;
    },
  };
}
