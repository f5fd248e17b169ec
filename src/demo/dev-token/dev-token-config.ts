import type { Environment } from '../../args/environment.js';
import { parseFlags } from '../../args/parse-command-args.js';
import { UsageError } from '../../args/usage-error.js';
import { parseDurationSeconds } from '../../policy/duration.js';
import { DEFAULT_DEV_DIR, DEV_AUDIENCE, DEV_ISSUER } from './dev-keys.js';
import { isSha256Thumbprint } from './token-binding.js';

/** Defaults and limits of `authz dev-token`, with units. */
export const DEV_TOKEN_DEFAULTS = Object.freeze({
  subject: 'alice',
  ttlSeconds: 600, // 10 minutes
  maxTtlSeconds: 86_400, // 24 hours
  maxAuthAgeSeconds: 31_536_000, // a year
});

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
  /** `--bind-cert`: the PEM certificate file whose thumbprint becomes `cnf["x5t#S256"]` (RFC 8705). */
  readonly bindCertFile: string | undefined;
  /** `--dpop-jkt`: the DPoP key thumbprint that becomes `cnf.jkt` (RFC 9449 section 6.1). */
  readonly dpopJkt: string | undefined;
}

/**
 * `authz dev-token --scope "a b" [--sub alice] [--ttl 10m] [--issuer URL] [--audience AUD] [--acr ACR]
 * [--amr "pwd mfa"] [--auth-age 0s] [--bind-cert FILE] [--dpop-jkt THUMBPRINT]`; env AUTHZ_DEV_DIR.
 * Development only. The certificate file is read by the command, not here.
 *
 * @throws UsageError naming the flag that cannot be used.
 */
export function devTokenConfig(argv: readonly string[], env: Environment): DevTokenConfig {
  const values = parseFlags(argv, {
    scope: { type: 'string', default: '' },
    sub: { type: 'string', default: DEV_TOKEN_DEFAULTS.subject },
    ttl: { type: 'string', default: String(DEV_TOKEN_DEFAULTS.ttlSeconds) },
    issuer: { type: 'string', default: DEV_ISSUER },
    audience: { type: 'string', default: DEV_AUDIENCE },
    acr: { type: 'string' },
    amr: { type: 'string', default: '' },
    'auth-age': { type: 'string', default: '0' },
    'bind-cert': { type: 'string' },
    'dpop-jkt': { type: 'string' },
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
  const ttlSeconds = parseDurationSeconds(String(values['ttl']));
  if (ttlSeconds === undefined || ttlSeconds < 1 || ttlSeconds > DEV_TOKEN_DEFAULTS.maxTtlSeconds) {
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
  const authAgeSeconds = parseDurationSeconds(String(values['auth-age']));
  if (authAgeSeconds === undefined || authAgeSeconds > DEV_TOKEN_DEFAULTS.maxAuthAgeSeconds) {
    throw new UsageError(
      `--auth-age: "${String(values['auth-age'])}" is not a duration of at most a year (e.g. 0, 90s, 10m)`,
    );
  }
  const bindCertFile = values['bind-cert'] as string | undefined;
  if (bindCertFile === '') throw new UsageError('--bind-cert needs the file of a PEM certificate');
  const dpopJkt = values['dpop-jkt'] as string | undefined;
  if (dpopJkt !== undefined && !isSha256Thumbprint(dpopJkt)) {
    throw new UsageError(
      `--dpop-jkt: "${dpopJkt}" is not a JWK SHA-256 thumbprint (RFC 7638: 43 base64url characters)`,
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
    bindCertFile,
    dpopJkt,
  });
}
