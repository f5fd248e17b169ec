import type { CommandContext } from '../../command/command.js';
import { createLogger } from '../../log/create-logger.js';
import { statementsConfig } from './statements-config.js';
import { startStatements } from './statements-server.js';

/**
 * `authz statements`: the stub statements upstream, until SIGTERM or SIGINT. Resolves to 0 once listening.
 *
 * @throws UsageError for flags or variables it cannot use.
 */
export async function statementsCommand(argv: readonly string[], context: CommandContext): Promise<number> {
  const config = statementsConfig(argv, context.env);
  const logger = createLogger({ level: config.logLevel });
  const statements = await startStatements({ host: config.listen.host, port: config.listen.port, logger });
  context.onShutdown(() => statements.close());
  return 0;
}
