import type { LevelWithSilent } from 'pino';
import type { Environment } from '../../args/environment.js';
import { parseListenAddress, type ListenAddress } from '../../args/listen-address.js';
import { parseLogLevel } from '../../args/log-level.js';
import { parseFlags } from '../../args/parse-command-args.js';

/** Defaults of `authz statements`. */
export const STATEMENTS_DEFAULTS = Object.freeze({
  /** Beside the bank (8080), as envoy/gateway.yaml's `statements` cluster expects. */
  listen: '127.0.0.1:8081',
});

export interface StatementsConfig {
  readonly listen: ListenAddress;
  readonly logLevel: LevelWithSilent;
}

/**
 * `authz statements [--listen HOST:PORT] [--log-level L]`; env STATEMENTS_LISTEN, AUTHZ_LOG_LEVEL.
 *
 * @throws UsageError naming the flag or variable that cannot be used.
 */
export function statementsConfig(argv: readonly string[], env: Environment): StatementsConfig {
  const values = parseFlags(argv, {
    listen: { type: 'string' },
    'log-level': { type: 'string' },
  });
  const listenFlag = values['listen'] as string | undefined;
  const levelFlag = values['log-level'] as string | undefined;
  return Object.freeze({
    listen: parseListenAddress(
      listenFlag ?? env['STATEMENTS_LISTEN'] ?? STATEMENTS_DEFAULTS.listen,
      listenFlag !== undefined ? '--listen' : 'STATEMENTS_LISTEN',
    ),
    logLevel: parseLogLevel(
      levelFlag ?? env['AUTHZ_LOG_LEVEL'],
      levelFlag !== undefined ? '--log-level' : 'AUTHZ_LOG_LEVEL',
    ),
  });
}
