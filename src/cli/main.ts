#!/usr/bin/env node
import { nearestName } from '../args/nearest-name.js';
import { UsageError } from '../args/usage-error.js';
import type { CommandIo } from '../command/command-io.js';
import { PolicyError } from '../policy/policy-error.js';
import type { Command, CommandContext, CommandTable } from '../command/command.js';
import { commandHelp, generalHelp } from './command-help.js';
import { loadGuestCommands } from './guest-commands.js';
import { OWN_COMMANDS } from './own-commands.js';
import { SIDECAR_COMMANDS } from './sidecar-commands.js';

/*
 * `authz <command> [options]`. This module only finds the command and runs it: each command's code is
 * imported when it runs (see Command.run), and the demo's commands are looked up only when the name is
 * not one of the sidecar's, or to list every command. Exit codes: 0 success, 1 a policy or runtime
 * fault (message on stderr), 2 a usage error (message, then the usage, on stderr), 141 standard output
 * or error closed by its reader (see endOnClosedPipe).
 */

const HELP_FLAGS: ReadonlySet<string> = new Set(['--help', '-h']);
const VERSION_FLAGS: ReadonlySet<string> = new Set(['--version', '-V']);

/** The exit code of a process ended by SIGPIPE as shells report it (128 + 13), e.g. `yes | head -1`. */
const CLOSED_PIPE_EXIT_CODE = 141;

/**
 * A reader that goes away before the output ends (`authz diff a b | head -1`) is not a fault: write
 * nothing more, print no stack trace, and exit at once with the code a C program killed by SIGPIPE would
 * have (Node ignores SIGPIPE, so the write fails with EPIPE instead). 141 rather than 0: the output was cut
 * short, so a `set -o pipefail` script does not take it for the command's success. Any other error of the
 * stream is rethrown, as Node would have.
 */
function endOnClosedPipe(stream: NodeJS.WriteStream): void {
  stream.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code !== 'EPIPE') throw error;
    process.exit(CLOSED_PIPE_EXIT_CODE);
  });
}

const guardedStreams = new WeakSet<NodeJS.WriteStream>();

/**
 * Writes to standard output or error, guarded by endOnClosedPipe from the first write on. Not before: opening
 * `process.stdout` makes a piped fd 1 non-blocking, which `serve`'s own writer on fd 1 (pino's sonic-boom),
 * writing there without ever touching `process.stdout`, has no reason to meet.
 */
function write(stream: NodeJS.WriteStream, text: string): void {
  if (!guardedStreams.has(stream)) {
    guardedStreams.add(stream);
    endOnClosedPipe(stream);
  }
  stream.write(text);
}

/** Standard output and error (see write), and the system clock. */
const io: CommandIo = Object.freeze({
  out: (text: string) => write(process.stdout, text),
  err: (text: string) => write(process.stderr, text),
  now: () => Date.now(),
});

/** The process as commands see it: built here, once, and passed in. */
const context: CommandContext = Object.freeze({
  env: process.env,
  io,
  // Read when asked: touching process.stdin opens it, which `serve` has no reason to do.
  interactive: () => process.stdin.isTTY === true,
  onShutdown: (close: () => Promise<void>) => {
    let closing = false;
    const stop = () => {
      if (closing) return;
      closing = true;
      close().then(
        () => process.exit(0),
        () => process.exit(1),
      );
    };
    process.on('SIGTERM', stop);
    process.on('SIGINT', stop);
  },
  onReload: (reload: () => void) => void process.on('SIGHUP', reload),
  commandTables: () => allTables(),
});

/** Every command table: the sidecar's, then the guests' that are installed (loaded on first call). */
async function allTables(): Promise<readonly CommandTable[]> {
  return [SIDECAR_COMMANDS, ...(await loadGuestCommands())];
}

/** The command called `name`: the sidecar's and the CLI's own first, so finding one of them loads no guest. */
async function findCommand(name: string): Promise<Command | undefined> {
  const own = [...SIDECAR_COMMANDS.commands, ...OWN_COMMANDS].find((command) => command.name === name);
  if (own !== undefined) return own;
  for (const table of await loadGuestCommands()) {
    const guest = table.commands.find((command) => command.name === name);
    if (guest !== undefined) return guest;
  }
  return undefined;
}

/** Whether the arguments ask for help (`--help` or `-h` anywhere before a `--` terminator). */
function asksForHelp(argv: readonly string[]): boolean {
  const end = argv.indexOf('--');
  return (end === -1 ? argv : argv.slice(0, end)).some((arg) => HELP_FLAGS.has(arg));
}

/** Writes the message (and usage) for a failure, and ends the process with its exit code at once. */
function fail(error: unknown, usage: string): never {
  if (error instanceof UsageError) {
    io.err(`authz: ${error.message}\n\n${usage}`);
    process.exit(2);
  }
  if (error instanceof PolicyError) {
    io.err(`authz: the policy cannot be used (${error.code}):\n${error.message}\n`);
    process.exit(1);
  }
  io.err(`authz: ${(error as Error).message ?? String(error)}\n`);
  process.exit(1);
}

async function unknownCommand(name: string): Promise<never> {
  const tables = await allTables();
  const suggestion = nearestName(name, [
    ...tables.flatMap((table) => table.commands.map((command) => command.name)),
    ...OWN_COMMANDS.map((command) => command.name),
    'help',
    '--help',
    '--version',
  ]);
  const hint = suggestion === undefined ? '' : `; did you mean "${suggestion}"?`;
  fail(new UsageError(`unknown command "${name}"${hint}`), generalHelp(tables, OWN_COMMANDS));
}

async function main(argv: readonly string[]): Promise<void> {
  const [name, ...rest] = argv;
  if (name !== undefined && VERSION_FLAGS.has(name)) {
    // Read relative to this file when asked (see packageVersion), so nothing else pays for it.
    io.out(`authz ${(await import('./package-version.js')).packageVersion()}\n`);
    return;
  }
  if (name === undefined || name === 'help' || HELP_FLAGS.has(name)) {
    // `authz help COMMAND` is `authz COMMAND --help`.
    const topic = name === 'help' ? rest[0] : undefined;
    if (topic === undefined) {
      io.out(generalHelp(await allTables(), OWN_COMMANDS));
      return;
    }
    const command = (await findCommand(topic)) ?? (await unknownCommand(topic));
    io.out(commandHelp(command));
    return;
  }
  const command = (await findCommand(name)) ?? (await unknownCommand(name));
  if (asksForHelp(rest)) {
    io.out(commandHelp(command));
    return;
  }
  try {
    process.exitCode = await command.run(rest, context);
  } catch (error) {
    fail(error, commandHelp(command));
  }
}

main(process.argv.slice(2)).catch((error: unknown) => fail(error, ''));
