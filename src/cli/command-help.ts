import type { Command, CommandTable } from '../command/command.js';

/** Indentation of a command's summary in the general listing. */
const SUMMARY_INDENT = ' '.repeat(8);

/**
 * `authz --help`: the usage lines of the command line itself and its `own` commands, then every command of
 * every table, each with its usage and summary:
 *
 * ```
 * usage: authz <command> [options]
 *        authz help <command>    (or: authz <command> --help)
 *        authz --version
 *        authz completion bash|zsh
 *
 * commands:
 *   serve --policy FILE|DIR [...]
 *         the ext_authz gRPC server ...
 * ```
 */
export function generalHelp(tables: readonly CommandTable[], own: readonly Command[] = []): string {
  const sections = tables.map(
    (table) => `${table.title}:\n` + table.commands.map((command) => listingEntry(command)).join(''),
  );
  return (
    'usage: authz <command> [options]\n' +
    '       authz help <command>    (or: authz <command> --help)\n' +
    '       authz --version\n' +
    own.map((command) => usageLines(`       authz ${command.name}`, command.usage)).join('') +
    '\n' +
    sections.join('\n')
  );
}

function listingEntry(command: Command): string {
  return (
    usageLines(`  ${command.name}`, command.usage) +
    command.summary.map((line) => `${SUMMARY_INDENT}${line}\n`).join('')
  );
}

/** `authz <command> --help`: the command's usage line, then what it does. */
export function commandHelp(command: Command): string {
  return (
    usageLines(`usage: authz ${command.name}`, command.usage) +
    '\n' +
    command.summary.map((line) => `  ${line}\n`).join('')
  );
}

/** `lead` and the first usage line, then the others aligned under the first. */
function usageLines(lead: string, usage: readonly string[]): string {
  const [first, ...rest] = usage;
  const indent = ' '.repeat(lead.length + 1);
  return (
    (first === undefined ? `${lead}\n` : `${lead} ${first}\n`) +
    rest.map((line) => `${indent}${line}\n`).join('')
  );
}
