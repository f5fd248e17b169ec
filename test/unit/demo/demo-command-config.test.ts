import { describe, expect, it } from 'vitest';
import { usageErrorFrom } from '../../kit/usage-error-from.js';
import { bankConfig } from '../../../src/demo/bank/bank-config.js';
import { DEFAULT_DEV_DIR, DEV_AUDIENCE, DEV_ISSUER } from '../../../src/demo/dev-token/dev-keys.js';
import { devTokenConfig } from '../../../src/demo/dev-token/dev-token-config.js';

/*
 * The demo commands' settings (`authz bank`, `authz dev-token`); `authz serve`'s are in
 * command-config.test.ts, `authz dev-idp`'s in dev-idp-command-config.test.ts.
 */

describe('bankConfig', () => {
  it('listens on 127.0.0.1:8080 at level info by default', () => {
    expect(bankConfig([], {})).toEqual({
      listen: { host: '127.0.0.1', port: 8080, text: '127.0.0.1:8080' },
      logLevel: 'info',
      appDir: undefined,
      appIssuer: 'http://127.0.0.1:9000',
    });
  });

  it('takes BANK_LISTEN and AUTHZ_LOG_LEVEL from the environment', () => {
    expect(
      bankConfig([], {
        BANK_LISTEN: '[::1]:8081',
        AUTHZ_LOG_LEVEL: 'error',
        BANK_APP_DIR: '/srv/web',
        BANK_APP_ISSUER: 'https://idp.example/',
      }),
    ).toEqual({
      listen: { host: '::1', port: 8081, text: '[::1]:8081' },
      logLevel: 'error',
      appDir: '/srv/web',
      appIssuer: 'https://idp.example/',
    });
  });

  it('lets flags beat the environment', () => {
    const config = bankConfig(
      [
        ...['--listen', '0.0.0.0:18080', '--log-level', 'trace'],
        ...['--app-dir', 'web-build', '--app-issuer', 'http://127.0.0.1:19000'],
      ],
      {
        BANK_LISTEN: '127.0.0.1:1',
        AUTHZ_LOG_LEVEL: 'error',
        BANK_APP_DIR: '/srv/web',
        BANK_APP_ISSUER: 'https://idp.example/',
      },
    );

    expect(config).toEqual({
      listen: { host: '0.0.0.0', port: 18080, text: '0.0.0.0:18080' },
      logLevel: 'trace',
      appDir: 'web-build',
      appIssuer: 'http://127.0.0.1:19000',
    });
  });

  it('names the --listen flag when the flag is bad', () => {
    expect(usageErrorFrom(() => bankConfig(['--listen', 'nowhere'], {})).message).toMatch(
      /^--listen: "nowhere"/,
    );
  });

  it.each([
    ['not a url'],
    ['ftp://idp.example/'],
    ['http://idp.example/?tenant=1'],
    ['http://idp.example/#x'],
    ['http://user:pw@idp.example/'],
  ])('refuses --app-issuer %s, naming the flag', (issuer) => {
    expect(usageErrorFrom(() => bankConfig(['--app-issuer', issuer], {})).message).toMatch(/^--app-issuer: /);
  });

  it('names BANK_APP_ISSUER when the variable is bad, and refuses an empty --app-dir', () => {
    expect(usageErrorFrom(() => bankConfig([], { BANK_APP_ISSUER: 'nope' })).message).toMatch(
      /^BANK_APP_ISSUER: "nope"/,
    );
    expect(usageErrorFrom(() => bankConfig(['--app-dir', ''], {})).message).toMatch(/--app-dir/);
  });

  it('names BANK_LISTEN when the variable is bad', () => {
    expect(usageErrorFrom(() => bankConfig([], { BANK_LISTEN: 'nowhere' })).message).toMatch(
      /^BANK_LISTEN: "nowhere"/,
    );
  });

  it('names a bad log level and refuses unknown flags', () => {
    expect(usageErrorFrom(() => bankConfig([], { AUTHZ_LOG_LEVEL: 'chatty' })).message).toMatch(
      /^AUTHZ_LOG_LEVEL: "chatty"/,
    );
    expect(usageErrorFrom(() => bankConfig(['--policy', 'p.yaml'], {})).message).toMatch(/--policy/);
  });
});

describe('devTokenConfig', () => {
  it('defaults to no scopes, subject alice, a 10-minute token for the demo issuer and audience', () => {
    expect(devTokenConfig([], {})).toEqual({
      scopes: [],
      subject: 'alice',
      ttlSeconds: 600,
      issuer: DEV_ISSUER,
      audience: DEV_AUDIENCE,
      devDir: DEFAULT_DEV_DIR,
      acr: undefined,
      amr: [],
      authAgeSeconds: 0,
    });
    expect([DEV_ISSUER, DEV_AUDIENCE, DEFAULT_DEV_DIR]).toEqual([
      'https://idp.example/',
      'https://my-banking-api',
      '.authz-dev',
    ]);
  });

  it('takes every flag, and AUTHZ_DEV_DIR from the environment', () => {
    const argv = [
      '--scope',
      ' view:balance  transfer:funds ',
      '--sub',
      'bob',
      '--ttl',
      '1h',
      '--issuer',
      'https://other.example/',
      '--audience',
      'api://x',
      '--acr',
      'urn:bank:mfa',
      '--amr',
      'pwd mfa',
      '--auth-age',
      '15m',
    ];

    expect(devTokenConfig(argv, { AUTHZ_DEV_DIR: '/tmp/dev-keys' })).toEqual({
      scopes: ['view:balance', 'transfer:funds'],
      subject: 'bob',
      ttlSeconds: 3600,
      issuer: 'https://other.example/',
      audience: 'api://x',
      devDir: '/tmp/dev-keys',
      acr: 'urn:bank:mfa',
      amr: ['pwd', 'mfa'],
      authAgeSeconds: 900,
    });
  });

  it.each([
    ['90', 90],
    ['90s', 90],
    ['1', 1],
    ['10m', 600],
    ['24h', 86_400],
    ['1d', 86_400],
  ])('accepts --ttl %s as %i seconds', (ttl, seconds) => {
    expect(devTokenConfig(['--ttl', ttl], {}).ttlSeconds).toBe(seconds);
  });

  it.each(['0', '0s', '86401', '25h', '2d', '-5', '1.5h', 'soon', ''])('refuses --ttl %j', (ttl) => {
    expect(usageErrorFrom(() => devTokenConfig([`--ttl=${ttl}`], {})).message).toBe(
      `--ttl: "${ttl}" must be a duration from 1s to 24h (e.g. 90s, 10m, 1h)`,
    );
  });

  it.each(['view:"balance"', 'view\\balance', 'vüe:balance', 'view:balance\ttransfer:funds'])(
    'refuses the scope token %j',
    (scope) => {
      expect(usageErrorFrom(() => devTokenConfig(['--scope', scope], {})).message).toMatch(
        /^--scope: ".*" is not a scope token$/,
      );
    },
  );

  it.each(['', 'al\nice', 'bob\u0000'])('refuses the subject %j', (sub) => {
    expect(usageErrorFrom(() => devTokenConfig(['--sub', sub], {})).message).toBe(
      '--sub must be a non-empty printable string',
    );
  });

  it('refuses an unknown flag, naming it', () => {
    expect(usageErrorFrom(() => devTokenConfig(['--scopes', 'view:balance'], {})).message).toMatch(
      /--scopes/,
    );
  });
});

describe('devTokenConfig: the login a dev token describes (--acr, --amr, --auth-age)', () => {
  it.each([
    ['space-separated', 'pwd mfa', ['pwd', 'mfa']],
    ['comma-separated', 'pwd,mfa', ['pwd', 'mfa']],
    ['comma- and space-separated', ' pwd, otp ,mfa ', ['pwd', 'otp', 'mfa']],
    ['a single method', 'hwk', ['hwk']],
    ['nothing but separators', ' , ', []],
  ])('reads --amr %s', (_case, amr, expected) => {
    expect(devTokenConfig(['--amr', amr], {}).amr).toEqual(expected);
  });

  it.each([
    ['0', 0],
    ['90', 90],
    ['90s', 90],
    ['15m', 900],
    ['2h', 7200],
    ['1d', 86_400],
  ])('reads --auth-age %s as %i seconds', (age, seconds) => {
    expect(devTokenConfig(['--auth-age', age], {}).authAgeSeconds).toBe(seconds);
  });

  it.each(['urn:bank:mfa', 'https://bank.example/loa/2', '1'])('takes --acr %s as given', (acr) => {
    expect(devTokenConfig(['--acr', acr], {}).acr).toBe(acr);
  });

  it.each(['urn:bank mfa', '', 'niveau-\u00e9lev\u00e9', 'urn:bank:mfa\n', 'a'.repeat(257)])(
    'refuses --acr %j: not a single value',
    (acr) => {
      expect(usageErrorFrom(() => devTokenConfig([`--acr=${acr}`], {})).message).toBe(
        `--acr: "${acr}" is not a single value`,
      );
    },
  );

  it.each([
    ['a non-ASCII method', 'pwd,m\u00e9thode', 'm\u00e9thode'],
    ['a control character', 'pwd\tmfa', 'pwd\tmfa'],
    ['a method of 65 characters', 'x'.repeat(65), 'x'.repeat(65)],
  ])('refuses --amr with %s, naming the method', (_case, amr, method) => {
    expect(usageErrorFrom(() => devTokenConfig(['--amr', amr], {})).message).toBe(
      `--amr: "${method}" is not a method name`,
    );
  });

  it.each(['soon', '-5', '1.5h', '', '10 m', '1y', '366d'])('refuses --auth-age %j', (age) => {
    expect(usageErrorFrom(() => devTokenConfig([`--auth-age=${age}`], {})).message).toBe(
      `--auth-age: "${age}" is not a duration of at most a year (e.g. 0, 90s, 10m)`,
    );
  });
});
