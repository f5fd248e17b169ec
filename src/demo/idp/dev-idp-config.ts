import type { LevelWithSilent } from 'pino';
import type { Environment } from '../../args/environment.js';
import { parseListenAddress, type ListenAddress } from '../../args/listen-address.js';
import { parseLogLevel } from '../../args/log-level.js';
import { parseFlags } from '../../args/parse-command-args.js';
import { UsageError } from '../../args/usage-error.js';
import { DEV_AUDIENCE } from '../dev-token/dev-keys.js';
import { redirectUriProblem } from './redirect-uris.js';

/** Defaults of `authz dev-idp`. */
export const DEV_IDP_DEFAULTS = Object.freeze({
  /** Its issuer is then `http://127.0.0.1:9000`, the one policy.yaml trusts. */
  listen: '127.0.0.1:9000',
});

export interface DevIdpConfig {
  readonly listen: ListenAddress;
  readonly issuer: string | undefined;
  readonly audience: string;
  readonly logLevel: LevelWithSilent;
  /** The browser app's redirect URIs from `--redirect-uri` (repeatable); undefined: the provider's default. */
  readonly redirectUris: readonly string[] | undefined;
}

/**
 * `authz dev-idp [--listen HOST:PORT] [--issuer URL] [--audience AUD] [--log-level L] [--redirect-uri URL]...`;
 * env AUTHZ_LOG_LEVEL. Development only.
 *
 * @throws UsageError naming the flag or variable that cannot be used.
 */
export function devIdpConfig(argv: readonly string[], env: Environment): DevIdpConfig {
  const values = parseFlags(argv, {
    listen: { type: 'string', default: DEV_IDP_DEFAULTS.listen },
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
    logLevel: parseLogLevel(
      levelFlag ?? env['AUTHZ_LOG_LEVEL'],
      levelFlag !== undefined ? '--log-level' : 'AUTHZ_LOG_LEVEL',
    ),
  });
}
