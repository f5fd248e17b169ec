import { describe, expect, it } from 'vitest';
import { commandHelp } from '../../../../src/cli/command-help.js';
import { commandTable } from '../../../../src/demo/demo-commands.js';
import { statementsConfig } from '../../../../src/demo/statements/statements-config.js';
import { usageErrorFrom } from '../../../kit/usage-error-from.js';

/* `authz statements`: its settings, and its entry in the demo command table. */

describe('statementsConfig', () => {
  it('listens on 127.0.0.1:8081 at level info by default', () => {
    expect(statementsConfig([], {})).toEqual({
      listen: { host: '127.0.0.1', port: 8081, text: '127.0.0.1:8081' },
      logLevel: 'info',
    });
  });

  it('takes STATEMENTS_LISTEN and AUTHZ_LOG_LEVEL from the environment', () => {
    expect(statementsConfig([], { STATEMENTS_LISTEN: '[::1]:18081', AUTHZ_LOG_LEVEL: 'error' })).toEqual({
      listen: { host: '::1', port: 18081, text: '[::1]:18081' },
      logLevel: 'error',
    });
  });

  it('lets flags beat the environment', () => {
    expect(
      statementsConfig(['--listen', '0.0.0.0:0', '--log-level', 'silent'], {
        STATEMENTS_LISTEN: '127.0.0.1:1',
        AUTHZ_LOG_LEVEL: 'error',
      }),
    ).toEqual({ listen: { host: '0.0.0.0', port: 0, text: '0.0.0.0:0' }, logLevel: 'silent' });
  });

  it('names the flag or the variable that is bad', () => {
    expect(usageErrorFrom(() => statementsConfig(['--listen', 'nowhere'], {})).message).toMatch(
      /^--listen: "nowhere"/,
    );
    expect(usageErrorFrom(() => statementsConfig([], { STATEMENTS_LISTEN: 'nowhere' })).message).toMatch(
      /^STATEMENTS_LISTEN: "nowhere"/,
    );
    expect(usageErrorFrom(() => statementsConfig(['--log-level', 'chatty'], {})).message).toMatch(
      /^--log-level: "chatty"/,
    );
  });

  it('refuses flags it does not know, naming them', () => {
    expect(usageErrorFrom(() => statementsConfig(['--app-dir', 'web'], {})).message).toMatch(/--app-dir/);
  });
});

describe('authz statements --help', () => {
  it('is listed after the bank, with its default address and its environment variable', () => {
    const names = commandTable.commands.map((command) => command.name);
    expect(names.indexOf('statements')).toBe(names.indexOf('bank') + 1);
    const help = commandHelp(commandTable.commands.find((command) => command.name === 'statements')!);
    expect(help).toMatch(/^usage: authz statements \[--listen HOST:PORT\] \[--log-level LEVEL\]\n/);
    expect(help).toContain('127.0.0.1:8081');
    expect(help).toContain('STATEMENTS_LISTEN');
  });
});
