import { describe, expect, it } from 'vitest';
import { bankConfig, COMMAND_DEFAULTS, devTokenConfig, serveConfig } from '../../src/cli/command-config.js';
import { parseListenAddress } from '../../src/args/listen-address.js';
import { UsageError } from '../../src/args/usage-error.js';
import { DEFAULT_DEV_DIR, DEV_AUDIENCE, DEV_ISSUER } from '../../src/demo/dev-token/dev-keys.js';

/** The UsageError `run` throws; fails the test if it returns or throws anything else. */
function usageErrorFrom(run: () => unknown): UsageError {
  let thrown: unknown;
  try {
    run();
  } catch (error) {
    thrown = error;
  }
  expect(thrown).toBeInstanceOf(UsageError);
  expect(thrown).toMatchObject({ code: 'ERR_USAGE', name: 'UsageError' });
  return thrown as UsageError;
}

describe('parseListenAddress', () => {
  it.each([
    ['127.0.0.1:9001', { host: '127.0.0.1', port: 9001, text: '127.0.0.1:9001' }],
    ['[::1]:9001', { host: '::1', port: 9001, text: '[::1]:9001' }],
    ['[::]:0', { host: '::', port: 0, text: '[::]:0' }],
    ['0.0.0.0:65535', { host: '0.0.0.0', port: 65535, text: '0.0.0.0:65535' }],
    ['localhost:8080', { host: 'localhost', port: 8080, text: 'localhost:8080' }],
    ['authz.internal:09001', { host: 'authz.internal', port: 9001, text: 'authz.internal:9001' }],
    [' 127.0.0.1:9001 ', { host: '127.0.0.1', port: 9001, text: '127.0.0.1:9001' }],
  ])('parses %j', (value, expected) => {
    expect(parseListenAddress(value, '--listen')).toEqual(expected);
  });

  it.each([
    '9001',
    '127.0.0.1',
    ':9001',
    '127.0.0.1:',
    '127.0.0.1:65536',
    '127.0.0.1:-1',
    '::1:9001',
    '[::1]',
    'host:80:80',
    'a b:80',
    'http://127.0.0.1:9001',
    '',
  ])('refuses %j, naming where it came from', (value) => {
    const error = usageErrorFrom(() => parseListenAddress(value, 'AUTHZ_LISTEN'));

    expect(error.message).toBe(
      `AUTHZ_LISTEN: "${value}" is not HOST:PORT (e.g. 127.0.0.1:9001 or [::1]:9001)`,
    );
  });
});

describe('serveConfig', () => {
  it('needs only the policy file: listen and log level have defaults', () => {
    expect(serveConfig(['--policy', 'policy.yaml'], {})).toEqual({
      policyFile: 'policy.yaml',
      listen: { host: '127.0.0.1', port: 9001, text: '127.0.0.1:9001' },
      logLevel: 'info',
      metricsListen: undefined,
      logAllowedSample: 1,
      drainDelayMs: 0,
      shutdownGraceMs: 10_000,
    });
    expect(COMMAND_DEFAULTS.authzListen).toBe('127.0.0.1:9001');
  });

  it('takes every setting from the environment when no flag is given', () => {
    const env = {
      AUTHZ_POLICY: '/etc/authz/policy.yaml',
      AUTHZ_LISTEN: '[::1]:9101',
      AUTHZ_LOG_LEVEL: 'debug',
      AUTHZ_METRICS_LISTEN: '127.0.0.1:9464',
      AUTHZ_LOG_ALLOWED_SAMPLE: '0.25',
      AUTHZ_DRAIN_DELAY: '2s',
      AUTHZ_SHUTDOWN_GRACE: '30s',
    };

    expect(serveConfig([], env)).toEqual({
      policyFile: '/etc/authz/policy.yaml',
      listen: { host: '::1', port: 9101, text: '[::1]:9101' },
      logLevel: 'debug',
      metricsListen: { host: '127.0.0.1', port: 9464, text: '127.0.0.1:9464' },
      logAllowedSample: 0.25,
      drainDelayMs: 2000,
      shutdownGraceMs: 30_000,
    });
  });

  it('lets flags beat the environment', () => {
    const env = { AUTHZ_POLICY: 'env.yaml', AUTHZ_LISTEN: '127.0.0.1:1', AUTHZ_LOG_LEVEL: 'debug' };
    const argv = ['--policy', 'flag.yaml', '--listen', '0.0.0.0:9002', '--log-level', 'warn'];

    expect(serveConfig(argv, env)).toMatchObject({
      policyFile: 'flag.yaml',
      listen: { host: '0.0.0.0', port: 9002, text: '0.0.0.0:9002' },
      logLevel: 'warn',
    });
  });

  it('lets the operational flags beat their variables', () => {
    const env = {
      AUTHZ_LOG_ALLOWED_SAMPLE: '0.5',
      AUTHZ_DRAIN_DELAY: '9s',
      AUTHZ_METRICS_LISTEN: '127.0.0.1:1',
    };
    const argv = [
      '--policy',
      'p.yaml',
      '--log-allowed-sample',
      '0',
      '--drain-delay',
      '1s',
      '--metrics-listen',
      '127.0.0.1:9464',
    ];
    expect(serveConfig(argv, env)).toMatchObject({
      logAllowedSample: 0,
      drainDelayMs: 1000,
      metricsListen: { port: 9464 },
    });
  });

  it.each([
    [['--log-allowed-sample', '1.5'], '--log-allowed-sample: "1.5" is not a number from 0 to 1'],
    [['--log-allowed-sample', 'half'], '--log-allowed-sample: "half" is not a number from 0 to 1'],
    [['--drain-delay', '10m'], '--drain-delay: "10m" is not a duration of at most 300s (e.g. 0, 5s, 1m)'],
    [
      ['--shutdown-grace', 'soon'],
      '--shutdown-grace: "soon" is not a duration of at most 600s (e.g. 0, 5s, 1m)',
    ],
  ])('refuses %j naming the flag', (flags, message) => {
    expect(() => serveConfig(['--policy', 'p.yaml', ...flags], {})).toThrow(message);
  });

  it('accepts the --flag=value form', () => {
    expect(serveConfig(['--policy=p.yaml', '--log-level=silent'], {})).toMatchObject({
      policyFile: 'p.yaml',
      logLevel: 'silent',
    });
  });

  it.each([
    ['no flag and no variable', [], {}],
    ['an empty variable', [], { AUTHZ_POLICY: '' }],
    ['an empty flag', ['--policy', ''], {}],
  ])('refuses to start without a policy: %s', (_case, argv, env) => {
    expect(usageErrorFrom(() => serveConfig(argv, env)).message).toBe(
      '--policy FILE (or AUTHZ_POLICY) is required',
    );
  });

  it.each([
    ['the --listen flag', ['--policy', 'p.yaml', '--listen', 'nowhere'], {}, '--listen: "nowhere"'],
    ['AUTHZ_LISTEN', ['--policy', 'p.yaml'], { AUTHZ_LISTEN: 'nowhere' }, 'AUTHZ_LISTEN: "nowhere"'],
    ['the --log-level flag', ['--policy', 'p.yaml', '--log-level', 'loud'], {}, '--log-level: "loud"'],
    ['AUTHZ_LOG_LEVEL', ['--policy', 'p.yaml'], { AUTHZ_LOG_LEVEL: 'INFO' }, 'AUTHZ_LOG_LEVEL: "INFO"'],
  ])('names %s when its value is bad', (_case, argv, env, start) => {
    expect(usageErrorFrom(() => serveConfig(argv, env)).message.startsWith(start)).toBe(true);
  });

  it('lists the log levels it accepts', () => {
    expect(usageErrorFrom(() => serveConfig(['--policy', 'p', '--log-level', 'verbose'], {})).message).toBe(
      '--log-level: "verbose" is not one of fatal, error, warn, info, debug, trace, silent',
    );
  });

  it.each([
    ['an unknown flag', ['--policy', 'p.yaml', '--port', '9001'], /--port/],
    ['a positional argument', ['policy.yaml'], /policy\.yaml/],
    ['a flag without its value', ['--policy'], /--policy/],
  ])('refuses %s, naming it', (_case, argv, named) => {
    expect(usageErrorFrom(() => serveConfig(argv, {})).message).toMatch(named);
  });
});

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
