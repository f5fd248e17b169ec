import { parseArgs, type ParseArgsConfig } from 'node:util';
import type { LevelWithSilent } from 'pino';
import { plainHttpUrl } from '../http/plain-http-url.js';
import { parseDurationSeconds } from '../policy/duration.js';
import { DEFAULT_DEV_DIR, DEV_AUDIENCE, DEV_ISSUER } from '../demo/dev-token/dev-keys.js';
import { redirectUriProblem } from '../demo/idp/redirect-uris.js';
import { parseListenAddress, type ListenAddress } from '../args/listen-address.js';
import { UsageError } from '../args/usage-error.js';

type Env = Readonly<Record<string, string | undefined>>;

/** Defaults for every command, with units. */
export const COMMAND_DEFAULTS = Object.freeze({
  authzListen: '127.0.0.1:9001',
  bankListen: '127.0.0.1:8080',
  devIdpListen: '127.0.0.1:9000',
  /** The identity provider the bank's web app signs in with: the dev IdP, as policy.yaml trusts it. */
  appIssuer: 'http://127.0.0.1:9000',
  logLevel: 'info' as LevelWithSilent,
  devTokenTtlSeconds: 600, // 10 minutes
  maxDevTokenTtlSeconds: 86_400, // 24 hours
});

const LOG_LEVELS: readonly LevelWithSilent[] = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

function parse(argv: readonly string[], options: NonNullable<ParseArgsConfig['options']>) {
  try {
    return parseArgs({ args: [...argv], options, strict: true, allowPositionals: false }).values;
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
}

function logLevel(value: string | undefined, source: string): LevelWithSilent {
  if (value === undefined) return COMMAND_DEFAULTS.logLevel;
  if (!LOG_LEVELS.includes(value as LevelWithSilent)) {
    throw new UsageError(`${source}: "${value}" is not one of ${LOG_LEVELS.join(', ')}`);
  }
  return value as LevelWithSilent;
}

export interface ServeConfig {
  readonly policyFile: string;
  readonly listen: ListenAddress;
  readonly logLevel: LevelWithSilent;
  /** Where to serve Prometheus metrics; undefined: off. */
  readonly metricsListen: ListenAddress | undefined;
  /** Share of allow decisions logged, 0..1. */
  readonly logAllowedSample: number;
  /** After SIGTERM, how long calls keep being served with health NOT_SERVING, in ms. */
  readonly drainDelayMs: number;
  /** Then, how long calls in flight may take before the server closes anyway, in ms. */
  readonly shutdownGraceMs: number;
}

/** `authz serve --policy FILE [--listen HOST:PORT] [--log-level L]`; env AUTHZ_POLICY, AUTHZ_LISTEN, AUTHZ_LOG_LEVEL. */
export function serveConfig(argv: readonly string[], env: Env): ServeConfig {
  const values = parse(argv, {
    policy: { type: 'string' },
    listen: { type: 'string' },
    'log-level': { type: 'string' },
    'metrics-listen': { type: 'string' },
    'log-allowed-sample': { type: 'string' },
    'drain-delay': { type: 'string' },
    'shutdown-grace': { type: 'string' },
  });
  const setting = (flag: string, variable: string): { value: string | undefined; source: string } => {
    const fromFlag = values[flag] as string | undefined;
    return fromFlag !== undefined
      ? { value: fromFlag, source: `--${flag}` }
      : { value: env[variable], source: variable };
  };
  const metrics = setting('metrics-listen', 'AUTHZ_METRICS_LISTEN');
  const sample = setting('log-allowed-sample', 'AUTHZ_LOG_ALLOWED_SAMPLE');
  const sampleRate = sample.value === undefined ? 1 : Number(sample.value);
  if (
    sample.value !== undefined &&
    (!/^(0(\.\d+)?|1(\.0+)?)$/.test(sample.value) || !(sampleRate >= 0 && sampleRate <= 1))
  ) {
    throw new UsageError(`${sample.source}: "${sample.value}" is not a number from 0 to 1`);
  }
  const duration = (flag: string, variable: string, fallbackSeconds: number, maxSeconds: number): number => {
    const { value, source } = setting(flag, variable);
    if (value === undefined) return fallbackSeconds * 1000;
    const seconds = parseDurationSeconds(value);
    if (seconds === undefined || seconds > maxSeconds) {
      throw new UsageError(
        `${source}: "${value}" is not a duration of at most ${maxSeconds}s (e.g. 0, 5s, 1m)`,
      );
    }
    return seconds * 1000;
  };
  const policyFile = (values['policy'] as string | undefined) ?? env['AUTHZ_POLICY'];
  if (policyFile === undefined || policyFile === '') {
    throw new UsageError('--policy FILE (or AUTHZ_POLICY) is required');
  }
  const listenFlag = values['listen'] as string | undefined;
  const listen = listenFlag ?? env['AUTHZ_LISTEN'] ?? COMMAND_DEFAULTS.authzListen;
  const levelFlag = values['log-level'] as string | undefined;
  return Object.freeze({
    policyFile,
    listen: parseListenAddress(listen, listenFlag !== undefined ? '--listen' : 'AUTHZ_LISTEN'),
    logLevel: logLevel(
      levelFlag ?? env['AUTHZ_LOG_LEVEL'],
      levelFlag !== undefined ? '--log-level' : 'AUTHZ_LOG_LEVEL',
    ),
    metricsListen:
      metrics.value === undefined ? undefined : parseListenAddress(metrics.value, metrics.source),
    logAllowedSample: sampleRate,
    drainDelayMs: duration('drain-delay', 'AUTHZ_DRAIN_DELAY', 0, 300),
    shutdownGraceMs: duration('shutdown-grace', 'AUTHZ_SHUTDOWN_GRACE', 10, 600),
  });
}

export interface BankConfig {
  readonly listen: ListenAddress;
  readonly logLevel: LevelWithSilent;
  /** The built web app's folder when one was named (a missing folder is then an error); else the default. */
  readonly appDir: string | undefined;
  /** The issuer the web app signs in with. */
  readonly appIssuer: string;
}

/**
 * `authz bank [--listen HOST:PORT] [--app-dir DIR] [--app-issuer URL]`; env BANK_LISTEN, BANK_APP_DIR,
 * BANK_APP_ISSUER.
 */
export function bankConfig(argv: readonly string[], env: Env): BankConfig {
  const values = parse(argv, {
    listen: { type: 'string' },
    'log-level': { type: 'string' },
    'app-dir': { type: 'string' },
    'app-issuer': { type: 'string' },
  });
  const listenFlag = values['listen'] as string | undefined;
  const levelFlag = values['log-level'] as string | undefined;
  const appDir = (values['app-dir'] as string | undefined) ?? env['BANK_APP_DIR'];
  if (appDir === '') throw new UsageError('--app-dir must name a folder');
  const issuerFlag = values['app-issuer'] as string | undefined;
  const appIssuer = issuerFlag ?? env['BANK_APP_ISSUER'] ?? COMMAND_DEFAULTS.appIssuer;
  const issuerUrl = plainHttpUrl(appIssuer);
  if (issuerUrl === undefined || issuerUrl.search !== '') {
    const source = issuerFlag !== undefined ? '--app-issuer' : 'BANK_APP_ISSUER';
    throw new UsageError(`${source}: "${appIssuer}" is not an http(s) issuer URL without query or fragment`);
  }
  return Object.freeze({
    appDir,
    appIssuer,
    listen: parseListenAddress(
      listenFlag ?? env['BANK_LISTEN'] ?? COMMAND_DEFAULTS.bankListen,
      listenFlag !== undefined ? '--listen' : 'BANK_LISTEN',
    ),
    logLevel: logLevel(
      levelFlag ?? env['AUTHZ_LOG_LEVEL'],
      levelFlag !== undefined ? '--log-level' : 'AUTHZ_LOG_LEVEL',
    ),
  });
}

export interface DevTokenConfig {
  readonly scopes: readonly string[];
  readonly acr: string | undefined;
  readonly amr: readonly string[];
  readonly authAgeSeconds: number;
  readonly subject: string;
  readonly ttlSeconds: number;
  readonly issuer: string;
  readonly audience: string;
  readonly devDir: string;
}

/** `authz dev-token --scope "a b" [--sub alice] [--ttl 10m] [--issuer URL] [--audience AUD]`; env AUTHZ_DEV_DIR. */
export function devTokenConfig(argv: readonly string[], env: Env): DevTokenConfig {
  const values = parse(argv, {
    scope: { type: 'string', default: '' },
    sub: { type: 'string', default: 'alice' },
    ttl: { type: 'string', default: String(COMMAND_DEFAULTS.devTokenTtlSeconds) },
    issuer: { type: 'string', default: DEV_ISSUER },
    audience: { type: 'string', default: DEV_AUDIENCE },
    acr: { type: 'string' },
    amr: { type: 'string', default: '' },
    'auth-age': { type: 'string', default: '0' },
  });
  const scopes = String(values['scope'])
    .split(' ')
    .filter((s) => s !== '');
  for (const scope of scopes) {
    if (!/^[\x21\x23-\x5B\x5D-\x7E]+$/.test(scope))
      throw new UsageError(`--scope: "${scope}" is not a scope token`);
  }
  const subject = String(values['sub']);
  if (subject === '' || /\p{Cc}/u.test(subject))
    throw new UsageError('--sub must be a non-empty printable string');
  const ttlSeconds = parseDurationSeconds(values['ttl']);
  if (ttlSeconds === undefined || ttlSeconds < 1 || ttlSeconds > COMMAND_DEFAULTS.maxDevTokenTtlSeconds) {
    throw new UsageError(
      `--ttl: "${String(values['ttl'])}" must be a duration from 1s to 24h (e.g. 90s, 10m, 1h)`,
    );
  }
  const acr = values['acr'] as string | undefined;
  if (acr !== undefined && !/^[\x21-\x7E]{1,256}$/.test(acr))
    throw new UsageError(`--acr: "${acr}" is not a single value`);
  const amr = String(values['amr'])
    .split(/[ ,]/)
    .filter((m) => m !== '');
  for (const method of amr) {
    if (!/^[\x21-\x7E]{1,64}$/.test(method)) throw new UsageError(`--amr: "${method}" is not a method name`);
  }
  const authAgeSeconds = parseDurationSeconds(values['auth-age']);
  if (authAgeSeconds === undefined || authAgeSeconds > 31_536_000) {
    throw new UsageError(
      `--auth-age: "${String(values['auth-age'])}" is not a duration of at most a year (e.g. 0, 90s, 10m)`,
    );
  }
  return Object.freeze({
    scopes: Object.freeze(scopes),
    acr,
    amr: Object.freeze(amr),
    authAgeSeconds,
    subject,
    ttlSeconds,
    issuer: String(values['issuer']),
    audience: String(values['audience']),
    devDir: env['AUTHZ_DEV_DIR'] ?? DEFAULT_DEV_DIR,
  });
}

export interface DevIdpConfig {
  readonly listen: ListenAddress;
  readonly issuer: string | undefined;
  readonly audience: string;
  readonly logLevel: LevelWithSilent;
  /** The browser app's redirect URIs from `--redirect-uri` (repeatable); undefined: the provider's default. */
  readonly redirectUris: readonly string[] | undefined;
}

/**
 * `authz dev-idp [--listen HOST:PORT] [--issuer URL] [--audience AUD] [--redirect-uri URL]...`.
 * Development only.
 */
export function devIdpConfig(argv: readonly string[], env: Env): DevIdpConfig {
  const values = parse(argv, {
    listen: { type: 'string', default: COMMAND_DEFAULTS.devIdpListen },
    issuer: { type: 'string' },
    audience: { type: 'string', default: DEV_AUDIENCE },
    'log-level': { type: 'string' },
    'redirect-uri': { type: 'string', multiple: true },
  });
  const levelFlag = values['log-level'] as string | undefined;
  const redirectUris = values['redirect-uri'] as string[] | undefined;
  for (const uri of redirectUris ?? []) {
    const problem = redirectUriProblem(uri);
    if (problem !== undefined) throw new UsageError(`--redirect-uri: "${uri}" ${problem}`);
  }
  return Object.freeze({
    listen: parseListenAddress(String(values['listen']), '--listen'),
    issuer: values['issuer'] as string | undefined,
    audience: String(values['audience']),
    redirectUris: redirectUris === undefined ? undefined : Object.freeze([...new Set(redirectUris)]),
    logLevel: logLevel(
      levelFlag ?? env['AUTHZ_LOG_LEVEL'],
      levelFlag !== undefined ? '--log-level' : 'AUTHZ_LOG_LEVEL',
    ),
  });
}

export interface DemoClientConfig {
  readonly api: string;
  readonly issuer: string;
  readonly audience: string;
  readonly username: string;
  readonly password: string;
  /** `auto`: read the code from the dev IdP's simulated authenticator; `prompt`: ask the person. */
  readonly otp: 'auto' | 'prompt';
}

/** `authz demo-client [--api URL] [--issuer URL] [--user NAME] [--password PW] [--otp auto|prompt]`. */
export function demoClientConfig(argv: readonly string[], interactive: boolean): DemoClientConfig {
  const values = parse(argv, {
    api: { type: 'string', default: 'http://127.0.0.1:8000' },
    issuer: { type: 'string', default: 'http://127.0.0.1:9000' },
    audience: { type: 'string', default: DEV_AUDIENCE },
    user: { type: 'string', default: 'alice' },
    password: { type: 'string' },
    otp: { type: 'string', default: interactive ? 'prompt' : 'auto' },
  });
  for (const flag of ['api', 'issuer'] as const) {
    const value = String(values[flag]);
    if (!/^https?:\/\/[^\s]+$/.test(value))
      throw new UsageError(`--${flag}: "${value}" is not an http(s) URL`);
  }
  const otp = String(values['otp']);
  if (otp !== 'auto' && otp !== 'prompt') throw new UsageError(`--otp: "${otp}" is not auto or prompt`);
  const username = String(values['user']);
  return Object.freeze({
    api: String(values['api']).replace(/\/$/, ''),
    issuer: String(values['issuer']),
    audience: String(values['audience']),
    username,
    // The demo users' passwords are public (README): alice-password, bob-password.
    password: (values['password'] as string | undefined) ?? `${username}-password`,
    otp,
  });
}
