import type { Command, CommandTable } from '../command/command.js';

/** The shells `authz completion` writes a script for. */
export const COMPLETION_SHELLS = Object.freeze(['bash', 'zsh'] as const);

/** One of COMPLETION_SHELLS. */
export type CompletionShell = (typeof COMPLETION_SHELLS)[number];

/** What the completion offers after `authz`, besides the commands of the tables. */
const TOP_LEVEL_EXTRAS = ['help', 'completion', '--help', '--version'];

/** A command name or flag as it may appear, unquoted, in a shell script. */
const SHELL_WORD = /^-{0,2}[a-z][a-z0-9-]*$/;

/**
 * A command's flags as its usage lines name them (`--policy`, `--json`), in order, each once, then
 * `--help`, which every command takes.
 */
export function commandFlags(command: Command): string[] {
  const named = command.usage.flatMap((line) => line.match(/--[a-z][a-z0-9-]*/g) ?? []);
  return [...new Set([...named, '--help'])];
}

/**
 * The completion script for `shell`, made from the command tables: the command names (and `help`,
 * `completion`, `--help`, `--version`) after `authz`; after a command, its flags when the word starts with
 * `-`, file and directory names otherwise (the shell's own: a policy, a test run or `owners` may take a
 * policy directory, and `--policy DIR` too); command names after `help`, the shells after `completion`.
 *
 * @throws Error if a command name or flag is not a plain word (it is written into the script unquoted).
 */
export function completionScript(shell: CompletionShell, tables: readonly CommandTable[]): string {
  const commands = tables.flatMap((table) => table.commands);
  const names = commands.map((command) => command.name);
  const flags = new Map(commands.map((command) => [command.name, commandFlags(command)]));
  for (const word of [...names, ...[...flags.values()].flat()]) {
    if (!SHELL_WORD.test(word)) throw new Error(`"${word}" cannot be written into a completion script`);
  }
  return shell === 'bash' ? bashScript(names, flags) : zshScript(commands, flags);
}

function bashScript(names: readonly string[], flags: ReadonlyMap<string, readonly string[]>): string {
  const cases = [...flags].map(([name, list]) => `    ${name}) flags="${list.join(' ')}" ;;`);
  return [
    '# bash completion for authz, written by `authz completion bash`. Load it with:',
    '#   source <(authz completion bash)',
    '_authz() {',
    '  local cur=${COMP_WORDS[COMP_CWORD]} flags',
    '  COMPREPLY=()',
    '  if [[ $COMP_CWORD -eq 1 ]]; then',
    `    COMPREPLY=($(compgen -W "${[...names, ...TOP_LEVEL_EXTRAS].join(' ')}" -- "$cur"))`,
    '    return',
    '  fi',
    '  case ${COMP_WORDS[1]} in',
    `    help) [[ $COMP_CWORD -eq 2 ]] && COMPREPLY=($(compgen -W "${names.join(' ')}" -- "$cur")); return ;;`,
    `    completion) [[ $COMP_CWORD -eq 2 ]] && COMPREPLY=($(compgen -W "${COMPLETION_SHELLS.join(' ')}" -- "$cur")); return ;;`,
    ...cases,
    '    *) return ;;',
    '  esac',
    '  # A flag when the word starts with -; otherwise nothing, and bash completes file and directory names',
    '  # (-o default): a policy may be a directory.',
    '  if [[ $cur == -* ]]; then COMPREPLY=($(compgen -W "$flags" -- "$cur")); fi',
    '}',
    'complete -o default -F _authz authz',
    '',
  ].join('\n');
}

function zshScript(commands: readonly Command[], flags: ReadonlyMap<string, readonly string[]>): string {
  // _describe takes NAME:DESCRIPTION; the description is the first line of the summary, single-quoted.
  const described = commands.map(
    (command) => `    ${singleQuoted(`${command.name}:${command.summary[0] ?? ''}`)}`,
  );
  const cases = [...flags].map(([name, list]) => `    (${name}) flags=(${list.join(' ')}) ;;`);
  return [
    '#compdef authz',
    '# zsh completion for authz, written by `authz completion zsh`. Load it with (after compinit):',
    '#   source <(authz completion zsh)',
    '_authz() {',
    '  local -a commands flags',
    '  commands=(',
    ...described,
    '  )',
    '  if (( CURRENT == 2 )); then',
    "    _describe -t commands 'authz command' commands",
    `    compadd -- ${TOP_LEVEL_EXTRAS.join(' ')}`,
    '    return',
    '  fi',
    '  case ${words[2]} in',
    `    (help) (( CURRENT == 3 )) && compadd -- ${commands.map((command) => command.name).join(' ')}; return ;;`,
    `    (completion) (( CURRENT == 3 )) && compadd -- ${COMPLETION_SHELLS.join(' ')}; return ;;`,
    ...cases,
    '    (*) return ;;',
    '  esac',
    // _files offers directories as well as files: a policy may be a directory.
    '  if [[ ${words[CURRENT]} == -* ]]; then compadd -- $flags; else _files; fi',
    '}',
    'compdef _authz authz',
    '',
  ].join('\n');
}

/** `text` in single quotes for a shell, a single quote inside written as '\''. */
function singleQuoted(text: string): string {
  return `'${text.replace(/'/g, `'\\''`)}'`;
}
