import { describe, expect, it } from 'vitest';
import { nearestName } from '../../../src/args/nearest-name.js';
import type { Command } from '../../../src/command/command.js';
import { commandHelp, generalHelp } from '../../../src/cli/command-help.js';
import { SIDECAR_COMMANDS } from '../../../src/cli/sidecar-commands.js';
import { commandTable as DEMO_COMMANDS } from '../../../src/demo/demo-commands.js';

const NAMES = [...SIDECAR_COMMANDS.commands, ...DEMO_COMMANDS.commands].map((command) => command.name);

describe('the command tables', () => {
  it('hold the documented commands, each once, the sidecar first', () => {
    expect(SIDECAR_COMMANDS.commands.map((command) => command.name)).toEqual([
      'serve',
      'check-policy',
      'explain',
      'test',
      'diff',
      'owners',
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
        '       authz --version',
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

  it("adds the CLI's own commands to the usage lines at the top", () => {
    const own: Command = { ...example, name: 'shell', usage: ['bash|zsh'] };
    expect(generalHelp([], [own])).toBe(
      [
        'usage: authz <command> [options]',
        '       authz help <command>    (or: authz <command> --help)',
        '       authz --version',
        '       authz shell bash|zsh',
        '',
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

describe('nearestName', () => {
  it.each([
    ['servee', 'serve'],
    ['serv', 'serve'],
    ['tset', 'test'],
    ['tests', 'test'],
    ['dif', 'diff'],
    ['ownres', 'owners'],
    ['explian', 'explain'],
    ['check-polcy', 'check-policy'],
    ['checkpolicy', 'check-policy'],
    ['dev-tokn', 'dev-token'],
    ['devidp', 'dev-idp'],
    ['bnak', 'bank'],
    ['chek-policy', 'check-policy'],
    ['check', 'check-policy'],
    ['demo', 'demo-client'],
    ['dev-i', 'dev-idp'],
  ])('suggests %s -> %s', (typed, expected) => {
    expect(nearestName(typed, NAMES)).toBe(expected);
  });

  it.each(['frobnicate', 'x', 'tt', 'start', 'run', 'policy', 'deploy', 'dev', 'd', ''])(
    'suggests nothing for %s',
    (typed) => {
      expect(nearestName(typed, NAMES)).toBeUndefined();
    },
  );

  it('suggests a name that only extends what was typed when no name is a few edits away', () => {
    expect(nearestName('exp', NAMES)).toBe('explain');
    expect(nearestName('st', NAMES)).toBe('statements');
    expect(nearestName('de', NAMES)).toBeUndefined(); // dev-token, dev-idp and demo-client
  });

  it('prefers the nearer name, then the first listed', () => {
    expect(nearestName('bat', ['bank', 'bar'])).toBe('bar');
    expect(nearestName('bax', ['bar', 'baz'])).toBe('bar');
  });
});
