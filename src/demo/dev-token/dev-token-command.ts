import type { CommandContext } from '../../cli/command.js';
import { ensureDevKeys } from './dev-keys.js';
import { devTokenConfig } from './dev-token-config.js';
import { mintDevToken } from './mint-dev-token.js';

/**
 * `authz dev-token`: prints an access token signed with the local development key (created on first
 * use in AUTHZ_DEV_DIR, default `.authz-dev/`). Development only.
 *
 * @throws UsageError for flags it cannot use.
 */
export async function devTokenCommand(argv: readonly string[], context: CommandContext): Promise<number> {
  const config = devTokenConfig(argv, context.env);
  const keys = await ensureDevKeys(config.devDir);
  context.io.out((await mintDevToken(keys, config)) + '\n');
  return 0;
}
