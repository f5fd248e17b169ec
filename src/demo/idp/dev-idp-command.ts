import type { CommandContext } from '../../command/command.js';
import { createLogger } from '../../log/create-logger.js';
import { devIdpConfig } from './dev-idp-config.js';
import { startDevIdp } from './dev-idp-server.js';

/**
 * `authz dev-idp`: the development identity provider, until SIGTERM or SIGINT. Resolves to 0 once
 * listening. Development only.
 *
 * @throws UsageError for flags or variables it cannot use.
 */
export async function devIdpCommand(argv: readonly string[], context: CommandContext): Promise<number> {
  const config = devIdpConfig(argv, context.env);
  const logger = createLogger({ level: config.logLevel });
  const idp = await startDevIdp({
    host: config.listen.host,
    port: config.listen.port,
    audience: config.audience,
    logger,
    ...(config.issuer === undefined ? {} : { issuer: config.issuer }),
    ...(config.redirectUris === undefined ? {} : { redirectUris: config.redirectUris }),
  });
  context.onShutdown(() => idp.close());
  return 0;
}
