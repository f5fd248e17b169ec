import { availableParallelism } from 'node:os';
import type { LevelWithSilent } from 'pino';
import type { Environment } from '../args/environment.js';
import { parseListenAddress, type ListenAddress } from '../args/listen-address.js';
import { parseLogLevel } from '../args/log-level.js';
import { parseFlags } from '../args/parse-command-args.js';
import { UsageError } from '../args/usage-error.js';
import { parseDurationSeconds } from '../policy/duration.js';
import { tracingSettings, type TracingSettings } from '../tracing/tracing-settings.js';

/** Defaults of `authz serve`, with units. */
export const SERVE_DEFAULTS = Object.freeze({
  /** gRPC listen address: loopback, as a sidecar is reached by the Envoy beside it. */
  listen: '127.0.0.1:9001',
  logAllowedSample: 1, // every allow decision is logged
  drainDelaySeconds: 0, // 0 seconds
  maxDrainDelaySeconds: 300, // 5 minutes
  shutdownGraceSeconds: 10, // 10 seconds
  maxShutdownGraceSeconds: 600, // 10 minutes
  workers: 1, // one process, as without the flag: no cluster
  maxWorkers: 64, // processes; also the cap on `auto`
});

export interface ServeConfig {
  readonly policyFile: string;
  readonly listen: ListenAddress;
  readonly logLevel: LevelWithSilent;
  /** Where to serve Prometheus metrics; undefined: off. */
  readonly metricsListen: ListenAddress | undefined;
  /** Share of allow decisions logged, 0..1. */
  readonly logAllowedSample: number;
  /** After SIGTERM, how long calls keep being served with health NOT_SERVING, in ms. */
  readonly drainDelayMs: number;
  /** Then, how long calls in flight may take before the server closes anyway, in ms. */
  readonly shutdownGraceMs: number;
  /** Worker processes sharing the listening port, 1..64; 1 serves from this process, without a cluster. */
  readonly workers: number;
  /**
   * The file holding the key of DPoP server nonces (at least 32 bytes, used as they are), so that every
   * replica accepts the nonces of the others; undefined: a random key per start, shared with its workers.
   */
  readonly dpopNonceKeyFile: string | undefined;
  /**
   * Serve a policy with error-level findings not accepted (`--allow-policy-errors`): the escape hatch for
   * an emergency, when no fixed policy can be written in time. Without it `serve` refuses such a policy at
   * start, as the reload guard refuses it on reload, so a restart never undoes the guard.
   */
  readonly allowPolicyErrors: boolean;
  /** Tracing, from the standard OpenTelemetry variables only (OTEL_*): off unless they configure it. */
  readonly tracing: TracingSettings;
}

/**
 * `authz serve --policy FILE|DIR [--listen HOST:PORT] [--log-level L] [--metrics-listen HOST:PORT]
 * [--log-allowed-sample RATE] [--drain-delay D] [--shutdown-grace D] [--workers N|auto]
 * [--dpop-nonce-key FILE] [--allow-policy-errors]`; each flag beats its variable (AUTHZ_POLICY,
 * AUTHZ_LISTEN, AUTHZ_LOG_LEVEL, AUTHZ_METRICS_LISTEN, AUTHZ_LOG_ALLOWED_SAMPLE, AUTHZ_DRAIN_DELAY,
 * AUTHZ_SHUTDOWN_GRACE, AUTHZ_WORKERS, AUTHZ_DPOP_NONCE_KEY_FILE, AUTHZ_ALLOW_POLICY_ERRORS=true).
 *
 * @param cores how many processes can run at once, for `--workers auto` (default `os.availableParallelism`).
 * @throws UsageError naming the flag or variable that cannot be used.
 */
export function serveConfig(
  argv: readonly string[],
  env: Environment,
  cores: () => number = availableParallelism,
): ServeConfig {
  const values = parseFlags(argv, {
    policy: { type: 'string' },
    listen: { type: 'string' },
    'log-level': { type: 'string' },
    'metrics-listen': { type: 'string' },
    'log-allowed-sample': { type: 'string' },
    'drain-delay': { type: 'string' },
    'shutdown-grace': { type: 'string' },
    workers: { type: 'string' },
    'dpop-nonce-key': { type: 'string' },
    'allow-policy-errors': { type: 'boolean' },
  });
  const setting = (flag: string, variable: string): { value: string | undefined; source: string } => {
    const fromFlag = values[flag] as string | undefined;
    return fromFlag !== undefined
      ? { value: fromFlag, source: `--${flag}` }
      : { value: env[variable], source: variable };
  };
  const metrics = setting('metrics-listen', 'AUTHZ_METRICS_LISTEN');
  const sample = setting('log-allowed-sample', 'AUTHZ_LOG_ALLOWED_SAMPLE');
  const sampleRate = sample.value === undefined ? SERVE_DEFAULTS.logAllowedSample : Number(sample.value);
  if (
    sample.value !== undefined &&
    (!/^(0(\.\d+)?|1(\.0+)?)$/.test(sample.value) || !(sampleRate >= 0 && sampleRate <= 1))
  ) {
    throw new UsageError(`${sample.source}: "${sample.value}" is not a number from 0 to 1`);
  }
  const duration = (flag: string, variable: string, fallbackSeconds: number, maxSeconds: number): number => {
    const { value, source } = setting(flag, variable);
    if (value === undefined) return fallbackSeconds * 1000;
    const seconds = parseDurationSeconds(value);
    if (seconds === undefined || seconds > maxSeconds) {
      throw new UsageError(
        `${source}: "${value}" is not a duration of at most ${maxSeconds}s (e.g. 0, 5s, 1m)`,
      );
    }
    return seconds * 1000;
  };
  const policyFile = (values['policy'] as string | undefined) ?? env['AUTHZ_POLICY'];
  if (policyFile === undefined || policyFile === '') {
    throw new UsageError('--policy FILE (or AUTHZ_POLICY) is required');
  }
  const listen = setting('listen', 'AUTHZ_LISTEN');
  const workers = setting('workers', 'AUTHZ_WORKERS');
  const level = setting('log-level', 'AUTHZ_LOG_LEVEL');
  const nonceKey = setting('dpop-nonce-key', 'AUTHZ_DPOP_NONCE_KEY_FILE');
  if (nonceKey.value === '') throw new UsageError(`${nonceKey.source}: a file name is required`);
  const allowErrors = env['AUTHZ_ALLOW_POLICY_ERRORS'];
  if (allowErrors !== undefined && allowErrors !== 'true' && allowErrors !== 'false') {
    throw new UsageError(`AUTHZ_ALLOW_POLICY_ERRORS: "${allowErrors}" is not true or false`);
  }
  return Object.freeze({
    policyFile,
    listen: parseListenAddress(listen.value ?? SERVE_DEFAULTS.listen, listen.source),
    logLevel: parseLogLevel(level.value, level.source),
    metricsListen:
      metrics.value === undefined ? undefined : parseListenAddress(metrics.value, metrics.source),
    logAllowedSample: sampleRate,
    drainDelayMs: duration(
      'drain-delay',
      'AUTHZ_DRAIN_DELAY',
      SERVE_DEFAULTS.drainDelaySeconds,
      SERVE_DEFAULTS.maxDrainDelaySeconds,
    ),
    shutdownGraceMs: duration(
      'shutdown-grace',
      'AUTHZ_SHUTDOWN_GRACE',
      SERVE_DEFAULTS.shutdownGraceSeconds,
      SERVE_DEFAULTS.maxShutdownGraceSeconds,
    ),
    workers:
      workers.value === undefined
        ? SERVE_DEFAULTS.workers
        : parseWorkers(workers.value, workers.source, cores),
    dpopNonceKeyFile: nonceKey.value,
    allowPolicyErrors: values['allow-policy-errors'] === true || allowErrors === 'true',
    tracing: tracingSettings(env),
  });
}

/**
 * `--workers`: 1 to 64, or `auto` for one per core (at most 64).
 * @throws UsageError naming `source`.
 */
function parseWorkers(value: string, source: string, cores: () => number): number {
  if (value === 'auto') return Math.min(Math.max(1, cores()), SERVE_DEFAULTS.maxWorkers);
  const count = /^\d{1,3}$/.test(value) ? Number(value) : NaN;
  if (!(count >= 1 && count <= SERVE_DEFAULTS.maxWorkers)) {
    throw new UsageError(
      `${source}: "${value}" is not a number of workers from 1 to ${SERVE_DEFAULTS.maxWorkers}, or auto`,
    );
  }
  return count;
}
