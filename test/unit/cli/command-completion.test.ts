import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import type { Command, CommandTable } from '../../../src/command/command.js';
import { commandFlags, completionScript } from '../../../src/cli/completion-script.js';
import { SIDECAR_COMMANDS } from '../../../src/cli/sidecar-commands.js';
import { commandTable as DEMO_COMMANDS } from '../../../src/demo/demo-commands.js';

const TABLES: readonly CommandTable[] = [SIDECAR_COMMANDS, DEMO_COMMANDS];

/** What bash's completion offers for `words` (the last one being completed), with the script loaded. */
function bashCompletes(script: string, words: readonly string[]): string[] {
  const program = [
    script,
    `COMP_WORDS=(${words.map((word) => `'${word}'`).join(' ')})`,
    `COMP_CWORD=${words.length - 1}`,
    '_authz',
    'printf "%s\\n" "${COMPREPLY[@]}"',
  ].join('\n');
  return execFileSync('bash', ['-c', program], { encoding: 'utf8' }).split('\n').filter(Boolean);
}

describe('commandFlags', () => {
  it("takes a command's flags from its usage lines, each once, then --help", () => {
    const serve = SIDECAR_COMMANDS.commands.find((command) => command.name === 'serve')!;
    expect(commandFlags(serve)).toEqual([
      '--policy',
      '--listen',
      '--log-level',
      '--metrics-listen',
      '--log-allowed-sample',
      '--drain-delay',
      '--shutdown-grace',
      '--workers',
      '--dpop-nonce-key',
      '--allow-policy-errors',
      '--help',
    ]);
    const test = SIDECAR_COMMANDS.commands.find((command) => command.name === 'test')!;
    expect(commandFlags(test)).toEqual(['--json', '--junit', '--run', '--strict', '--help']);
  });
});

describe('completionScript bash', () => {
  const script = completionScript('bash', TABLES);

  it('is valid bash (bash -n)', () => {
    execFileSync('bash', ['-n'], { input: script });
  });

  it('completes every command name after authz, and help, completion, --help, --version', () => {
    const offered = bashCompletes(script, ['authz', '']);
    for (const table of TABLES) for (const { name } of table.commands) expect(offered).toContain(name);
    expect(offered).toEqual(expect.arrayContaining(['help', 'completion', '--help', '--version']));
    expect(bashCompletes(script, ['authz', 'che'])).toEqual(['check-policy']);
    expect(bashCompletes(script, ['authz', 'dev-'])).toEqual(['dev-token', 'dev-idp']);
  });

  it("completes a command's flags, and nothing (files, by bash) for other words", () => {
    expect(bashCompletes(script, ['authz', 'serve', '--pol'])).toEqual(['--policy']);
    expect(bashCompletes(script, ['authz', 'check-policy', 'policy.yaml', '--'])).toEqual([
      '--json',
      '--strict',
      '--offline',
      '--help',
    ]);
    expect(bashCompletes(script, ['authz', 'check-policy', 'pol'])).toEqual([]);
  });

  it("leaves policy arguments and --policy's value to bash, which completes directories too", () => {
    // A policy may be a directory: nothing offered here, and -o default completes file and directory names.
    expect(script).toContain('complete -o default -F _authz authz');
    for (const words of [
      ['authz', 'explain', '--policy', 'pol'],
      ['authz', 'check-policy', 'policy.gateway'],
      ['authz', 'diff', 'policy.yaml', 'policy.gateway'],
      ['authz', 'test', 'policy.gateway'],
      ['authz', 'owners', 'policy.gateway'],
    ]) {
      expect(bashCompletes(script, words), words.join(' ')).toEqual([]);
    }
    expect(bashCompletes(script, ['authz', 'owners', 'policy.gateway.d', '--'])).toEqual([
      '--prefix',
      '--help',
    ]);
  });

  it('completes command names after help, and the shells after completion', () => {
    expect(bashCompletes(script, ['authz', 'help', 'ex'])).toEqual(['explain']);
    expect(bashCompletes(script, ['authz', 'completion', ''])).toEqual(['bash', 'zsh']);
  });
});

describe('completionScript zsh', () => {
  const script = completionScript('zsh', TABLES);

  it('defines _authz for compdef, with every command and its flags', () => {
    expect(script.startsWith('#compdef authz\n')).toBe(true);
    expect(script).toContain('compdef _authz authz');
    for (const table of TABLES) {
      for (const command of table.commands) {
        expect(script).toContain(`    (${command.name}) flags=(${commandFlags(command).join(' ')}) ;;`);
      }
    }
  });

  it('completes anything but a flag with _files, which offers directories too (a policy may be one)', () => {
    expect(script).toContain('else _files; fi');
    expect(script).toContain('    (owners) flags=(--prefix --help) ;;');
  });

  it("quotes a summary's single quotes", () => {
    const quoting: Command = { name: 'say', usage: [], summary: ["it's"], run: async () => 0 };
    expect(completionScript('zsh', [{ title: 'commands', commands: [quoting] }])).toContain(
      `    'say:it'\\''s'`,
    );
  });
});

describe('completionScript', () => {
  it('refuses a name it would have to quote', () => {
    const odd: Command = { name: 'a;b', usage: [], summary: ['x'], run: async () => 0 };
    expect(() => completionScript('bash', [{ title: 'commands', commands: [odd] }])).toThrow(/a;b/);
  });
});
