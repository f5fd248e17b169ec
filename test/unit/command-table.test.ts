import { describe, expect, it } from 'vitest';
import type { Command } from '../../src/cli/command.js';
import { commandHelp, generalHelp } from '../../src/cli/command-help.js';
import { nearestCommand } from '../../src/cli/nearest-command.js';
import { SIDECAR_COMMANDS } from '../../src/cli/sidecar-commands.js';
import { commandTable as DEMO_COMMANDS } from '../../src/demo/demo-commands.js';

const NAMES = [...SIDECAR_COMMANDS.commands, ...DEMO_COMMANDS.commands].map((command) => command.name);

describe('the command tables', () => {
  it('hold the documented commands, each once, the sidecar first', () => {
    expect(SIDECAR_COMMANDS.commands.map((command) => command.name)).toEqual([
      'serve',
      'check-policy',
      'explain',
      'test',
      'diff',
    ]);
    expect(DEMO_COMMANDS.commands.map((command) => command.name)).toEqual([
      'bank',
      'statements',
      'dev-token',
      'dev-idp',
      'demo-client',
    ]);
    expect(new Set(NAMES).size).toBe(NAMES.length);
  });

  it('give every command a usage and a summary that fit a terminal', () => {
    for (const command of [...SIDECAR_COMMANDS.commands, ...DEMO_COMMANDS.commands]) {
      expect(command.summary.length, command.name).toBeGreaterThan(0);
      for (const line of commandHelp(command).split('\n')) {
        expect(line.length, `${command.name}: ${line}`).toBeLessThanOrEqual(110);
        expect(line).toBe(line.trimEnd());
      }
    }
  });

  it('name the defaults the configurations use', () => {
    const help = generalHelp([SIDECAR_COMMANDS, DEMO_COMMANDS]);
    for (const text of ['127.0.0.1:9001', '127.0.0.1:8080', '127.0.0.1:9000', 'http://127.0.0.1:8000']) {
      expect(help).toContain(text);
    }
  });
});

describe('help text', () => {
  const example: Command = {
    name: 'frob',
    usage: ['--in FILE [--out FILE]', '[--verbose]'],
    summary: ['frobs a file', 'twice'],
    run: async () => 0,
  };

  it('lists each command with its usage aligned under the first line and its summary indented', () => {
    expect(generalHelp([{ title: 'commands', commands: [example] }])).toBe(
      [
        'usage: authz <command> [options]',
        '       authz help <command>    (or: authz <command> --help)',
        '',
        'commands:',
        '  frob --in FILE [--out FILE]',
        '       [--verbose]',
        '        frobs a file',
        '        twice',
        '',
      ].join('\n'),
    );
  });

  it("separates tables, each under its title, in the tables' order", () => {
    const other: Command = { ...example, name: 'zap', usage: [] };
    const help = generalHelp([
      { title: 'commands', commands: [example] },
      { title: 'guest commands', commands: [other] },
    ]);
    expect(help).toContain('        twice\n\nguest commands:\n  zap\n        frobs a file\n');
  });

  it('prints one command as a usage line, then what it does', () => {
    expect(commandHelp(example)).toBe(
      [
        'usage: authz frob --in FILE [--out FILE]',
        '                  [--verbose]',
        '',
        '  frobs a file',
        '  twice',
        '',
      ].join('\n'),
    );
  });
});

describe('nearestCommand', () => {
  it.each([
    ['servee', 'serve'],
    ['serv', 'serve'],
    ['tset', 'test'],
    ['tests', 'test'],
    ['dif', 'diff'],
    ['explian', 'explain'],
    ['check-polcy', 'check-policy'],
    ['checkpolicy', 'check-policy'],
    ['dev-tokn', 'dev-token'],
    ['devidp', 'dev-idp'],
    ['bnak', 'bank'],
  ])('suggests %s -> %s', (typed, expected) => {
    expect(nearestCommand(typed, NAMES)).toBe(expected);
  });

  it.each(['frobnicate', 'x', 'tt', 'start', 'run', 'policy', 'deploy'])(
    'suggests nothing for %s',
    (typed) => {
      expect(nearestCommand(typed, NAMES)).toBeUndefined();
    },
  );

  it('prefers the nearer name, then the first listed', () => {
    expect(nearestCommand('bat', ['bank', 'bar'])).toBe('bar');
    expect(nearestCommand('bax', ['bar', 'baz'])).toBe('bar');
  });
});
