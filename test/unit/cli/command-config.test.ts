import { describe, expect, it } from 'vitest';
import { parseListenAddress } from '../../../src/args/listen-address.js';
import { usageErrorFrom } from '../../kit/usage-error-from.js';
import { SERVE_DEFAULTS, serveConfig } from '../../../src/cli/serve-config.js';

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
      workers: 1,
      allowPolicyErrors: false,
      tracing: { enabled: false },
    });
    expect(SERVE_DEFAULTS.listen).toBe('127.0.0.1:9001');
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
      AUTHZ_WORKERS: '4',
      AUTHZ_DPOP_NONCE_KEY_FILE: '/run/secrets/dpop-nonce-key',
      AUTHZ_ALLOW_POLICY_ERRORS: 'true',
    };

    expect(serveConfig([], env)).toEqual({
      policyFile: '/etc/authz/policy.yaml',
      listen: { host: '::1', port: 9101, text: '[::1]:9101' },
      logLevel: 'debug',
      metricsListen: { host: '127.0.0.1', port: 9464, text: '127.0.0.1:9464' },
      logAllowedSample: 0.25,
      drainDelayMs: 2000,
      shutdownGraceMs: 30_000,
      workers: 4,
      dpopNonceKeyFile: '/run/secrets/dpop-nonce-key',
      allowPolicyErrors: true,
      tracing: { enabled: false },
    });
  });

  it('takes --allow-policy-errors, or AUTHZ_ALLOW_POLICY_ERRORS true or false, and refuses other values', () => {
    expect(serveConfig(['--policy', 'p', '--allow-policy-errors'], {}).allowPolicyErrors).toBe(true);
    expect(serveConfig(['--policy', 'p'], { AUTHZ_ALLOW_POLICY_ERRORS: 'false' }).allowPolicyErrors).toBe(
      false,
    );
    expect(
      usageErrorFrom(() => serveConfig(['--policy', 'p'], { AUTHZ_ALLOW_POLICY_ERRORS: '1' })).message,
    ).toBe('AUTHZ_ALLOW_POLICY_ERRORS: "1" is not true or false');
  });

  it('takes the DPoP nonce key file from --dpop-nonce-key over AUTHZ_DPOP_NONCE_KEY_FILE, and refuses an empty name', () => {
    const env = { AUTHZ_DPOP_NONCE_KEY_FILE: 'from-env' };
    expect(serveConfig(['--policy', 'p', '--dpop-nonce-key', 'from-flag'], env).dpopNonceKeyFile).toBe(
      'from-flag',
    );
    expect(serveConfig(['--policy', 'p'], env).dpopNonceKeyFile).toBe('from-env');
    expect(serveConfig(['--policy', 'p'], {}).dpopNonceKeyFile).toBeUndefined();
    expect(usageErrorFrom(() => serveConfig(['--policy', 'p', '--dpop-nonce-key='], {})).message).toBe(
      '--dpop-nonce-key: a file name is required',
    );
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

  describe('--workers (AUTHZ_WORKERS)', () => {
    const workers = (argv: string[], env: Record<string, string> = {}, cores = 8) =>
      serveConfig(['--policy', 'p.yaml', ...argv], env, () => cores).workers;

    it('runs one process by default, and takes 1 to 64 worker processes', () => {
      expect(workers([])).toBe(1);
      expect(workers(['--workers', '1'])).toBe(1);
      expect(workers(['--workers', '2'])).toBe(2);
      expect(workers(['--workers=64'])).toBe(64);
      expect(workers([], { AUTHZ_WORKERS: '3' })).toBe(3);
      expect(workers(['--workers', '2'], { AUTHZ_WORKERS: '3' })).toBe(2);
    });

    it('takes auto as one worker per core the process may use, at most 64', () => {
      expect(workers(['--workers', 'auto'], {}, 2)).toBe(2);
      expect(workers([], { AUTHZ_WORKERS: 'auto' }, 12)).toBe(12);
      expect(workers(['--workers', 'auto'], {}, 256)).toBe(64);
    });

    it.each([
      [['--workers', '0'], {}, '--workers: "0"'],
      [['--workers', '65'], {}, '--workers: "65"'],
      [['--workers', '1.5'], {}, '--workers: "1.5"'],
      [['--workers=-2'], {}, '--workers: "-2"'],
      [['--workers', ''], {}, '--workers: ""'],
      [['--workers', 'all'], {}, '--workers: "all"'],
      [[], { AUTHZ_WORKERS: ' 2' }, 'AUTHZ_WORKERS: " 2"'],
      [[], { AUTHZ_WORKERS: 'AUTO' }, 'AUTHZ_WORKERS: "AUTO"'],
    ])('refuses %j %j, naming where it came from', (argv, env, start) => {
      expect(usageErrorFrom(() => workers(argv, env)).message).toBe(
        `${start} is not a number of workers from 1 to 64, or auto`,
      );
    });
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
