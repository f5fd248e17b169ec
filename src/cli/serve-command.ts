import cluster from 'node:cluster';
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { Environment } from '../args/environment.js';
import { UsageError } from '../args/usage-error.js';
import { MIN_NONCE_KEY_BYTES } from '../authn/dpop-nonces.js';
import { createBufferedDestination, type BufferedDestination } from '../log/buffered-destination.js';
import { createLogger } from '../log/create-logger.js';
import { createAuthzMetrics, type AuthzMetrics } from '../metrics/authz-metrics.js';
import {
  startMetricsServer,
  type MetricsSource,
  type RunningMetricsServer,
} from '../metrics/metrics-server.js';
import { startAuthzServer } from '../server/authz-server.js';
import type { ClusterMember } from '../server/cluster-member.js';
import type { CommandContext } from '../command/command.js';
import type { StartedTracing } from '../tracing/start-tracing.js';
import { packageVersion } from './package-version.js';
import { serveConfig, type ServeConfig } from './serve-config.js';

/** After SIGTERM, how much longer than its drain and grace a worker gets to exit before it is killed. */
const WORKER_STOP_MARGIN_MS = 5_000; // 5 seconds
/** The largest nonce key file read, in bytes. */
const MAX_NONCE_KEY_BYTES = 4096;

/**
 * The key of DPoP server nonces (docs/sender-constraints.md): the file `--dpop-nonce-key` names, shared by
 * replicas; else, for a worker, the key its primary hands it over IPC; else a random key for this start.
 *
 * @throws UsageError when the file cannot be read or holds fewer than 32 bytes.
 */
async function dpopNonceKey(config: ServeConfig): Promise<Uint8Array> {
  const file = config.dpopNonceKeyFile;
  if (file !== undefined) {
    let key: Buffer;
    try {
      key = await readFile(file);
    } catch (error) {
      throw new UsageError(
        `--dpop-nonce-key: cannot read ${file} (${(error as NodeJS.ErrnoException).code ?? 'error'})`,
      );
    }
    if (key.length < MIN_NONCE_KEY_BYTES || key.length > MAX_NONCE_KEY_BYTES) {
      throw new UsageError(
        `--dpop-nonce-key: ${file} must hold ${MIN_NONCE_KEY_BYTES} to ${MAX_NONCE_KEY_BYTES} bytes (e.g. openssl rand 32)`,
      );
    }
    return key;
  }
  if (cluster.isWorker) {
    const { receiveSecrets } = await import('../server/cluster-worker.js');
    return (await receiveSecrets()).dpopNonceKey;
  }
  return randomBytes(MIN_NONCE_KEY_BYTES);
}

/**
 * `authz serve`: the ext_authz gRPC server (and gRPC health), plus the Prometheus endpoint when
 * `--metrics-listen` is given. Reloads the policy on SIGHUP (and when the file changes); drains and
 * stops on SIGTERM or SIGINT. Resolves to 0 once listening.
 *
 * Decision lines are buffered (see createBufferedDestination) and written out on shutdown, after the server
 * has closed, so that no line is lost on SIGTERM.
 *
 * With `--workers N` (N > 1) this process becomes the cluster primary, which forks N workers running this
 * same command (src/server/worker-cluster.ts); in each of them, it serves as one worker.
 *
 * @throws UsageError for flags or variables it cannot use; PolicyError when the policy cannot be used.
 */
export async function serveCommand(argv: readonly string[], context: CommandContext): Promise<number> {
  const config = serveConfig(argv, context.env);
  const nonceKey = await dpopNonceKey(config);
  // Under --workers, the primary and every worker write to one standard output.
  const output = createBufferedDestination({ shared: cluster.isWorker || config.workers > 1 });
  const logger = createLogger({ level: config.logLevel, destination: output });
  output.reportDropsTo(logger);
  await startWithSignals(context, () =>
    cluster.isWorker
      ? serveAsWorker(config, logger, output, context.env, nonceKey)
      : config.workers > 1
        ? serveAsPrimary(config, logger, output, nonceKey)
        : serveHere(config, logger, output, nonceKey),
  );
  return 0;
}

/** A started `serve`, in one of its three forms. */
interface Serving {
  /** SIGHUP. */
  reload(): void;
  /** SIGTERM or SIGINT: drain, close, write the last log lines. */
  stop(): Promise<void>;
}

/**
 * Runs `start` with the signal handlers already in place. The `started` line can reach a reader (a test, a
 * supervisor) before this process has finished starting, and a SIGTERM sent at once must not meet Node's
 * default action, which ends the process on the spot: it waits for the start to finish, then stops.
 */
async function startWithSignals(context: CommandContext, start: () => Promise<Serving>): Promise<void> {
  const serving = start();
  context.onShutdown(async () => (await serving).stop());
  context.onReload(
    () =>
      void serving.then(
        (started) => started.reload(),
        () => undefined, // it did not start: serveCommand rejects with the reason
      ),
  );
  await serving;
}

/**
 * A server in this process: alone (`--workers 1`, the default, `join` undefined), or as one worker of a
 * cluster, whose metrics the primary collects and serves for the whole cluster (so a worker serves none).
 */
async function serveHere(
  config: ServeConfig,
  logger: Logger,
  output: BufferedDestination,
  nonceKey: Uint8Array,
  join?: (registry: Registry | undefined) => ClusterMember,
): Promise<Serving> {
  const metrics = config.metricsListen === undefined ? undefined : createAuthzMetrics();
  metrics?.readLogLinesDroppedFrom(() => output.droppedLines);
  const cluster = join?.(metrics?.registry);
  const tracing = await startTracingIfOn(config, logger, metrics);
  const server = await startAuthzServer({
    policyFile: config.policyFile,
    listen: config.listen.text,
    logger,
    logAllowedSample: config.logAllowedSample,
    dpopNonceKey: nonceKey,
    allowPolicyErrors: config.allowPolicyErrors,
    ...(cluster === undefined ? {} : { cluster }),
    ...(metrics === undefined ? {} : { metrics }),
    ...(tracing === undefined ? {} : { tracing: tracing.checks }),
  }).catch(async (error: unknown) => {
    await tracing?.shutdown();
    throw error;
  });
  const metricsServer =
    metrics === undefined || cluster !== undefined
      ? undefined
      : await serveMetrics(config, logger, metrics.registry);
  return {
    reload: () => void server.reload(),
    stop: async () => {
      await server.close({ drainMs: config.drainDelayMs, graceMs: config.shutdownGraceMs });
      await tracing?.shutdown(); // the last spans, within its bound
      await metricsServer?.close();
      await output.flush();
    },
  };
}

/**
 * The cluster primary: serves no Check itself. It forks and watches the workers, passes SIGHUP and SIGTERM
 * on to them, and serves `/metrics` for all of them.
 *
 * Its `/metrics` are the workers' sums, `authz_log_lines_dropped_total` included; the primary's own drops are
 * not in it. It logs a few lines per start, stop or worker exit, and could fill its 8 MiB only across
 * thousands of worker restarts within one stall of the output, long after the restart budget has ended the
 * cluster. Were it ever to drop lines, its `log_lines_dropped` line still says how many.
 */
async function serveAsPrimary(
  config: ServeConfig,
  logger: Logger,
  output: BufferedDestination,
  nonceKey: Uint8Array,
): Promise<Serving> {
  const { startWorkerCluster, CLUSTER_METRICS_CONTENT_TYPE } = await import('../server/worker-cluster.js');
  const workers = await startWorkerCluster({
    workers: config.workers,
    listen: config.listen.text,
    logger,
    stopTimeoutMs: config.drainDelayMs + config.shutdownGraceMs + WORKER_STOP_MARGIN_MS,
    // Every worker accepts the nonces of the others: one key for all of them, handed over IPC.
    dpopNonceKey: nonceKey,
  });
  let metricsServer: RunningMetricsServer | undefined;
  try {
    metricsServer = await serveMetrics(config, logger, {
      contentType: CLUSTER_METRICS_CONTENT_TYPE,
      metrics: () => workers.metrics(),
    });
  } catch (error) {
    await workers.close();
    throw error;
  }
  let stopping: Promise<void> | undefined;
  const stop = () =>
    (stopping ??= (async () => {
      try {
        await workers.close();
      } finally {
        await metricsServer?.close();
        await output.flush();
      }
    })());
  // Workers kept dying: stop the rest as on SIGTERM, then exit 1 (the CommandContext has no exit code for a
  // server that fails after it has started, so the primary ends its own process here).
  void workers.failed.then(() => stop().finally(() => process.exit(1)));
  return { reload: () => workers.reload(), stop };
}

/** One worker of the cluster: a server on the shared port, reporting to the primary. */
async function serveAsWorker(
  config: ServeConfig,
  logger: Logger,
  output: BufferedDestination,
  env: Environment,
  nonceKey: Uint8Array,
): Promise<Serving> {
  const { joinCluster, readWorkerNumber } = await import('../server/cluster-worker.js');
  const worker = readWorkerNumber(env);
  return serveHere(config, logger, output, nonceKey, (registry) =>
    joinCluster({ worker, ...(registry === undefined ? {} : { registry }) }),
  );
}

/**
 * Tracing, when the OpenTelemetry variables turn it on: the SDK is imported only then, so a process with
 * tracing off never loads it. Export failures are logged once per change of state, drops counted.
 */
async function startTracingIfOn(
  config: ServeConfig,
  logger: Logger,
  metrics: Pick<AuthzMetrics, 'recordTraceSpansDropped'> | undefined,
): Promise<StartedTracing | undefined> {
  const settings = config.tracing;
  if (!settings.enabled) return undefined;
  const { startTracing } = await import('../tracing/start-tracing.js');
  const tracing = startTracing(settings, {
    serviceVersion: packageVersion(),
    onDropped: (cause, spans) => metrics?.recordTraceSpansDropped(cause, spans),
    onExportState: ({ state, detail }) => {
      if (state === 'ok') logger.info({ event: 'trace_export', state }, 'trace export works again');
      else {
        logger.warn(
          { event: 'trace_export', state, endpoint: settings.endpoint, detail },
          'trace export failing: spans are dropped (counted in authz_trace_spans_dropped_total); Checks are not affected',
        );
      }
    },
  });
  logger.info(
    {
      event: 'tracing',
      endpoint: settings.endpoint,
      protocol: settings.protocol,
      sampler: settings.sampler,
      ...(settings.sampler.endsWith('traceidratio') ? { ratio: settings.ratio } : {}),
    },
    'tracing on: Check spans exported over OTLP',
  );
  return tracing;
}

/** The Prometheus endpoint, with `--metrics-listen`. */
async function serveMetrics(
  config: ServeConfig,
  logger: Logger,
  registry: MetricsSource,
): Promise<RunningMetricsServer | undefined> {
  const address = config.metricsListen;
  if (address === undefined) return undefined;
  return startMetricsServer({ host: address.host, port: address.port, registry, logger });
}
