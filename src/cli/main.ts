#!/usr/bin/env node
import { UsageError } from '../args/usage-error.js';
import { processIo } from '../ops/command-io.js';
import { PolicyError } from '../policy/policy-error.js';
import type { Command, CommandContext, CommandTable } from './command.js';
import { commandHelp, generalHelp } from './command-help.js';
import { loadGuestCommands } from './guest-commands.js';
import { nearestCommand } from './nearest-command.js';
import { SIDECAR_COMMANDS } from './sidecar-commands.js';

/*
 * `authz <command> [options]`. This module only finds the command and runs it: each command's code is
 * imported when it runs (see Command.run), and the demo's commands are looked up only when the name is
 * not one of the sidecar's, or to list every command. Exit codes: 0 success, 1 a policy or runtime
 * fault (message on stderr), 2 a usage error (message, then the usage, on stderr).
 */

const HELP_FLAGS: ReadonlySet<string> = new Set(['--help', '-h']);

/** The process as commands see it: built here, once, and passed in. */
const context: CommandContext = Object.freeze({
  env: process.env,
  io: processIo,
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
});

/** Every command table: the sidecar's, then the guests' that are installed (loaded on first call). */
async function allTables(): Promise<readonly CommandTable[]> {
  return [SIDECAR_COMMANDS, ...(await loadGuestCommands())];
}

/** The command called `name`: the sidecar's own first, so finding one of them loads no guest. */
async function findCommand(name: string): Promise<Command | undefined> {
  const own = SIDECAR_COMMANDS.commands.find((command) => command.name === name);
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
    process.stderr.write(`authz: ${error.message}\n\n${usage}`);
    process.exit(2);
  }
  if (error instanceof PolicyError) {
    process.stderr.write(`authz: the policy cannot be used (${error.code}):\n${error.message}\n`);
    process.exit(1);
  }
  process.stderr.write(`authz: ${(error as Error).message ?? String(error)}\n`);
  process.exit(1);
}

async function unknownCommand(name: string): Promise<never> {
  const tables = await allTables();
  const suggestion = nearestCommand(
    name,
    tables.flatMap((table) => table.commands.map((command) => command.name)),
  );
  const hint = suggestion === undefined ? '' : `; did you mean "${suggestion}"?`;
  fail(new UsageError(`unknown command "${name}"${hint}`), generalHelp(tables));
}

async function main(argv: readonly string[]): Promise<void> {
  const [name, ...rest] = argv;
  if (name === undefined || name === 'help' || HELP_FLAGS.has(name)) {
    // `authz help COMMAND` is `authz COMMAND --help`.
    const topic = name === 'help' ? rest[0] : undefined;
    if (topic === undefined) {
      process.stdout.write(generalHelp(await allTables()));
      return;
    }
    const command = (await findCommand(topic)) ?? (await unknownCommand(topic));
    process.stdout.write(commandHelp(command));
    return;
  }
  const command = (await findCommand(name)) ?? (await unknownCommand(name));
  if (asksForHelp(rest)) {
    process.stdout.write(commandHelp(command));
    return;
  }
  try {
    process.exitCode = await command.run(rest, context);
  } catch (error) {
    fail(error, commandHelp(command));
  }
}

main(process.argv.slice(2)).catch((error: unknown) => fail(error, ''));
