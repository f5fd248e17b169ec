import { parseOpsArgs } from '../args/parse-command-args.js';
import { UsageError } from '../args/usage-error.js';
import type { CommandContext } from '../command/command.js';
import { COMPLETION_SHELLS, completionScript, type CompletionShell } from './completion-script.js';

/**
 * `authz completion SHELL`: writes the shell's completion script for every installed command to standard
 * output. Resolves to 0.
 *
 * @throws UsageError for a missing or unknown shell.
 */
export async function completionCommand(argv: readonly string[], context: CommandContext): Promise<number> {
  const { positionals } = parseOpsArgs(argv, {}, { min: 1, max: 1, name: 'the shell (bash or zsh)' });
  const shell = positionals[0]!;
  if (!COMPLETION_SHELLS.includes(shell as CompletionShell)) {
    throw new UsageError(`no completion for "${shell}" (shells: ${COMPLETION_SHELLS.join(', ')})`);
  }
  context.io.out(completionScript(shell as CompletionShell, await context.commandTables()));
  return 0;
}
