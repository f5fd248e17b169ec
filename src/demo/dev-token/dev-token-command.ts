import type { CommandContext } from '../../command/command.js';
import { ensureDevKeys } from './dev-keys.js';
import { devTokenConfig } from './dev-token-config.js';
import { mintDevToken } from './mint-dev-token.js';
import { readCertificateThumbprint, type TokenConfirmation } from './token-binding.js';

/**
 * `authz dev-token`: prints an access token signed with the local development key (created on first
 * use in AUTHZ_DEV_DIR, default `.authz-dev/`), bound to a client certificate (`--bind-cert`) and/or a
 * DPoP key (`--dpop-jkt`) when asked. Development only.
 *
 * @throws UsageError for flags it cannot use, and for a --bind-cert file without a certificate.
 */
export async function devTokenCommand(argv: readonly string[], context: CommandContext): Promise<number> {
  const config = devTokenConfig(argv, context.env);
  const confirmation: TokenConfirmation = {
    ...(config.dpopJkt === undefined ? {} : { jkt: config.dpopJkt }),
    ...(config.bindCertFile === undefined
      ? {}
      : { 'x5t#S256': await readCertificateThumbprint(config.bindCertFile) }),
  };
  const keys = await ensureDevKeys(config.devDir);
  context.io.out((await mintDevToken(keys, { ...config, confirmation })) + '\n');
  return 0;
}
