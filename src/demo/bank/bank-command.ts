import type { Logger } from 'pino';
import type { CommandContext } from '../../command/command.js';
import { createLogger } from '../../log/create-logger.js';
import { DEV_AUDIENCE } from '../dev-token/dev-keys.js';
import { bankConfig, type BankConfig } from './bank-config.js';
import { startBank } from './bank-server.js';
import {
  BUILT_APP_DIR,
  loadWebApp,
  WEB_APP_CLIENT_ID,
  WEB_APP_SIGN_IN_SCOPE,
  WebAppError,
  type WebAppFile,
} from './web-app.js';

/**
 * `authz bank`: the stub banking upstream and its web app, until SIGTERM or SIGINT. Resolves to 0 once
 * listening.
 *
 * @throws UsageError for flags or variables it cannot use; WebAppError when a named app folder is unusable.
 */
export async function bankCommand(argv: readonly string[], context: CommandContext): Promise<number> {
  const config = bankConfig(argv, context.env);
  const logger = createLogger({ level: config.logLevel });
  const app = await bankWebApp(config, logger);
  const bank = await startBank({
    host: config.listen.host,
    port: config.listen.port,
    logger,
    ...(app === undefined ? {} : { app }),
  });
  context.onShutdown(() => bank.close());
  return 0;
}

/**
 * The bank's web app: the folder named on the command line must hold a built app; without one, the
 * built `dist/web` is served when present, and the bank runs API-only (with a warning) when not.
 */
async function bankWebApp(
  config: BankConfig,
  logger: Logger,
): Promise<((path: string) => WebAppFile | undefined) | undefined> {
  const settings = {
    issuer: config.appIssuer,
    clientId: WEB_APP_CLIENT_ID,
    audience: DEV_AUDIENCE,
    scope: WEB_APP_SIGN_IN_SCOPE,
  };
  if (config.appDir !== undefined) return loadWebApp(config.appDir, settings);
  try {
    return await loadWebApp(BUILT_APP_DIR, settings);
  } catch (error) {
    if (!(error instanceof WebAppError)) throw error;
    logger.warn({ event: 'web_app_missing', dir: BUILT_APP_DIR }, `no web app served: ${error.message}`);
    return undefined;
  }
}
