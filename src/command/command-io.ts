/**
 * What a command needs from its process: where to write, and the time. Injected so that the
 * commands run in tests without a child process and with a fixed clock.
 */
export interface CommandIo {
  /** Writes to standard output (text as given; lines end with `\n`). */
  readonly out: (text: string) => void;
  /** Writes to standard error. */
  readonly err: (text: string) => void;
  /** Milliseconds since the epoch. */
  readonly now: () => number;
}
