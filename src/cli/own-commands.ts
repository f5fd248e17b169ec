import type { Command } from '../command/command.js';
import { COMPLETION_SHELLS } from './completion-script.js';

/**
 * The command line's own commands, about `authz` itself rather than the sidecar: shown in the usage lines
 * at the top of `authz --help` (with `help` and `--version`), not in the tables of commands.
 */
export const OWN_COMMANDS: readonly Command[] = Object.freeze([
  {
    name: 'completion',
    usage: [COMPLETION_SHELLS.join('|')],
    summary: [
      'prints a completion script for the shell, made from the command tables: command names, then each',
      "command's flags (files elsewhere); load it with: source <(authz completion bash)",
    ],
    run: async (argv, context) => (await import('./completion-command.js')).completionCommand(argv, context),
  },
]);
