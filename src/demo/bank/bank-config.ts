import type { LevelWithSilent } from 'pino';
import type { Environment } from '../../args/environment.js';
import { parseListenAddress, type ListenAddress } from '../../args/listen-address.js';
import { parseLogLevel } from '../../args/log-level.js';
import { parseFlags } from '../../args/parse-command-args.js';
import { UsageError } from '../../args/usage-error.js';
import { plainHttpUrl } from '../../http/plain-http-url.js';

/** Defaults of `authz bank`. */
export const BANK_DEFAULTS = Object.freeze({
  listen: '127.0.0.1:8080',
  /** The identity provider the bank's web app signs in with: the dev IdP, as policy.yaml trusts it. */
  appIssuer: 'http://127.0.0.1:9000',
});

export interface BankConfig {
  readonly listen: ListenAddress;
  readonly logLevel: LevelWithSilent;
  /** The built web app's folder when one was named (a missing folder is then an error); else the default. */
  readonly appDir: string | undefined;
  /** The issuer the web app signs in with. */
  readonly appIssuer: string;
}

/**
 * `authz bank [--listen HOST:PORT] [--log-level L] [--app-dir DIR] [--app-issuer URL]`; env BANK_LISTEN,
 * AUTHZ_LOG_LEVEL, BANK_APP_DIR, BANK_APP_ISSUER.
 *
 * @throws UsageError naming the flag or variable that cannot be used.
 */
export function bankConfig(argv: readonly string[], env: Environment): BankConfig {
  const values = parseFlags(argv, {
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
  const appIssuer = issuerFlag ?? env['BANK_APP_ISSUER'] ?? BANK_DEFAULTS.appIssuer;
  const issuerUrl = plainHttpUrl(appIssuer);
  if (issuerUrl === undefined || issuerUrl.search !== '') {
    const source = issuerFlag !== undefined ? '--app-issuer' : 'BANK_APP_ISSUER';
    throw new UsageError(`${source}: "${appIssuer}" is not an http(s) issuer URL without query or fragment`);
  }
  return Object.freeze({
    appDir,
    appIssuer,
    listen: parseListenAddress(
      listenFlag ?? env['BANK_LISTEN'] ?? BANK_DEFAULTS.listen,
      listenFlag !== undefined ? '--listen' : 'BANK_LISTEN',
    ),
    logLevel: parseLogLevel(
      levelFlag ?? env['AUTHZ_LOG_LEVEL'],
      levelFlag !== undefined ? '--log-level' : 'AUTHZ_LOG_LEVEL',
    ),
  });
}
