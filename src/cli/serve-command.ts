import { createLogger } from '../log/create-logger.js';
import { createAuthzMetrics } from '../metrics/authz-metrics.js';
import { startMetricsServer } from '../metrics/metrics-server.js';
import { startAuthzServer } from '../server/authz-server.js';
import type { CommandContext } from './command.js';
import { serveConfig } from './serve-config.js';

/**
 * `authz serve`: the ext_authz gRPC server (and gRPC health), plus the Prometheus endpoint when
 * `--metrics-listen` is given. Reloads the policy on SIGHUP (and when the file changes); drains and
 * stops on SIGTERM or SIGINT. Resolves to 0 once listening.
 *
 * @throws UsageError for flags or variables it cannot use; PolicyError when the policy cannot be used.
 */
export async function serveCommand(argv: readonly string[], context: CommandContext): Promise<number> {
  const config = serveConfig(argv, context.env);
  const logger = createLogger({ level: config.logLevel });
  const metrics = config.metricsListen === undefined ? undefined : createAuthzMetrics();
  const server = await startAuthzServer({
    policyFile: config.policyFile,
    listen: config.listen.text,
    logger,
    logAllowedSample: config.logAllowedSample,
    ...(metrics === undefined ? {} : { metrics }),
  });
  const metricsServer =
    metrics === undefined || config.metricsListen === undefined
      ? undefined
      : await startMetricsServer({
          host: config.metricsListen.host,
          port: config.metricsListen.port,
          registry: metrics.registry,
          logger,
        });
  context.onReload(() => void server.reload());
  context.onShutdown(async () => {
    await server.close({ drainMs: config.drainDelayMs, graceMs: config.shutdownGraceMs });
    await metricsServer?.close();
  });
  return 0;
}
