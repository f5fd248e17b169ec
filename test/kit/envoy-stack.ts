import type { DevTlsFiles } from '../../src/demo/dev-tls/dev-certificates.js';
import { startDeployedEnvoy, type RunningEnvoy } from './envoy.js';
import { freePorts } from './free-port.js';
import { startCliAndWait, type KitProcess } from './process.js';

/** Where the stack's Envoy listens, for the policy: {@link EnvoyStackOptions.policyFile}. */
export interface StackListener {
  /** `http://127.0.0.1:PORT`: a DPoP proof's htu names the origin the client called (RFC 9449 section 4.3). */
  readonly origin: string;
  readonly port: number;
}

export interface EnvoyStackOptions {
  /** Writes the policy `authz serve` serves and returns the file's path. */
  readonly policyFile: (listener: StackListener) => Promise<string>;
  /** More `authz serve` arguments, after `--policy` and `--listen`. */
  readonly authzArgs?: readonly string[];
  /** Serve authz's metrics on a free port (`--metrics-listen`). */
  readonly metrics?: boolean;
  /** Variables added to `authz serve`'s environment (its OpenTelemetry SDK's `OTEL_*`, for one). */
  readonly authzEnv?: Readonly<Record<string, string>>;
  /** Where Envoy exports its spans (the `otel_collector` cluster): a test collector's OTLP/gRPC port. */
  readonly otelCollector?: number;
  /**
   * The protected upstream behind Envoy: `authz bank` with these extra arguments (the default: none), or the
   * port of an upstream the test runs itself.
   */
  readonly upstream?: { readonly bankArgs: readonly string[] } | { readonly port: number };
  /** The TLS listener's certificate set (default: a fresh development set). */
  readonly tls?: DevTlsFiles;
}

/** Envoy on envoy/envoy.yaml -> `authz serve` -> the bank, all on free ports of 127.0.0.1. */
export interface EnvoyStack {
  readonly envoy: RunningEnvoy;
  readonly authz: KitProcess;
  /** `authz bank`; undefined when the test brought its own upstream. */
  readonly bank: KitProcess | undefined;
  /** The upstream's port (the bank's, or the test's own). */
  readonly upstreamPort: number;
  /** `http://127.0.0.1:PORT/metrics` when asked for {@link EnvoyStackOptions.metrics}. */
  readonly metricsUrl: string | undefined;
  /** Stops Envoy, then authz and the bank; safe to call twice. */
  stop(): Promise<void>;
}

/**
 * Starts the path every e2e suite tests: the built `authz serve` on the policy `policyFile` writes, the bank
 * (unless the test brings its own upstream), then the real Envoy on the deployed envoy/envoy.yaml with their
 * ports. Resolves once authz and the bank have logged `started` and Envoy reports LIVE.
 * @throws Error with the failing process's output; what had started is stopped
 */
export async function startEnvoyStack(options: EnvoyStackOptions): Promise<EnvoyStack> {
  const [listen, admin, authzPort, bankPort, metricsPort] = (await freePorts(5)) as [
    number,
    number,
    number,
    number,
    number,
  ];
  const policyFile = await options.policyFile({ origin: `http://127.0.0.1:${listen}`, port: listen });
  const started: Array<{ stop(): Promise<unknown> }> = [];
  const stop = async () => {
    for (const running of started.reverse()) await running.stop();
  };
  try {
    const metrics = options.metrics === true ? ['--metrics-listen', `127.0.0.1:${metricsPort}`] : [];
    const authz = (
      await startCliAndWait(
        [
          ...['serve', '--policy', policyFile, '--listen', `127.0.0.1:${authzPort}`],
          ...metrics,
          ...(options.authzArgs ?? []),
        ],
        options.authzEnv === undefined ? {} : { env: options.authzEnv },
      )
    ).process;
    started.push(authz);
    const upstream = options.upstream ?? { bankArgs: [] };
    let bank: KitProcess | undefined;
    if ('bankArgs' in upstream) {
      bank = (await startCliAndWait(['bank', '--listen', `127.0.0.1:${bankPort}`, ...upstream.bankArgs]))
        .process;
      started.push(bank);
    }
    const upstreamPort = 'port' in upstream ? upstream.port : bankPort;
    const envoy = await startDeployedEnvoy(
      {
        listen,
        admin,
        authz: authzPort,
        bank: upstreamPort,
        ...(options.otelCollector === undefined ? {} : { otelCollector: options.otelCollector }),
      },
      options.tls === undefined ? {} : { tls: options.tls },
    );
    started.push(envoy);
    let stopping: Promise<void> | undefined;
    return {
      envoy,
      authz,
      bank,
      upstreamPort,
      metricsUrl: options.metrics === true ? `http://127.0.0.1:${metricsPort}/metrics` : undefined,
      stop: () => (stopping ??= stop()),
    };
  } catch (error) {
    await stop();
    throw error;
  }
}
