import type { Environment } from '../args/environment.js';
import type { CommandIo } from './command-io.js';

/**
 * What a command receives from the process that runs it. The CLI entry point builds the one real
 * context; commands never reach for `process` themselves, so their wiring can be read in one place.
 */
export interface CommandContext {
  /** Environment variables (`AUTHZ_*`, `BANK_*`). */
  readonly env: Environment;
  /** Standard output and error, and the clock. */
  readonly io: CommandIo;
  /** Whether standard input is a terminal, so a person can answer a prompt. */
  readonly interactive: () => boolean;
  /**
   * For a command that keeps running: on the first SIGTERM or SIGINT, `close` is awaited and the
   * process exits 0 (1 if `close` rejects).
   */
  readonly onShutdown: (close: () => Promise<void>) => void;
  /** Calls `reload` on every SIGHUP (the conventional "re-read your configuration"). */
  readonly onReload: (reload: () => void) => void;
  /** Every installed command table, the sidecar's then the guests', for commands about commands. */
  readonly commandTables: () => Promise<readonly CommandTable[]>;
}

/**
 * One `authz` command: its name, the help generated for it, and how to run it. `run` loads the
 * command's implementation with `import()` when it is called, so a table of commands costs nothing but
 * itself to load.
 */
export interface Command {
  /** What is typed after `authz`, e.g. `serve`. */
  readonly name: string;
  /** The arguments it takes, as in a usage line; one string per printed line (no indentation). */
  readonly usage: readonly string[];
  /** What it does, with its defaults and environment variables; one string per printed line. */
  readonly summary: readonly string[];
  /**
   * Runs the command with the arguments that follow its name. Resolves to the exit code (0 success,
   * 1 a policy or runtime fault); a server resolves once it is listening and keeps the process alive
   * until `onShutdown` ends it.
   *
   * @throws UsageError for arguments or settings it cannot use (the CLI prints it with the usage, exit 2).
   */
  readonly run: (argv: readonly string[], context: CommandContext) => Promise<number>;
}

/** A list of commands under a heading, as `authz --help` prints it. */
export interface CommandTable {
  /** The heading above the commands, e.g. `commands`. */
  readonly title: string;
  readonly commands: readonly Command[];
}
