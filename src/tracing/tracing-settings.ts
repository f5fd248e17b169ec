import type { Environment } from '../args/environment.js';
import { UsageError } from '../args/usage-error.js';

/** The OTLP encodings over HTTP this service exports spans with (OTEL_EXPORTER_OTLP_PROTOCOL). */
export type OtlpProtocol = 'http/protobuf' | 'http/json';

/** OTEL_TRACES_SAMPLER's values this service implements (the SDK's built-in samplers). */
export type SamplerName =
  | 'always_on'
  | 'always_off'
  | 'traceidratio'
  | 'parentbased_always_on'
  | 'parentbased_always_off'
  | 'parentbased_traceidratio';

/** Tracing as the standard OpenTelemetry environment variables configure it; frozen. */
export type TracingSettings =
  | { readonly enabled: false }
  | {
      readonly enabled: true;
      readonly protocol: OtlpProtocol;
      /** The URL spans are posted to (`.../v1/traces`). */
      readonly url: string;
      /** The same, for the start-up log line: never with credentials (the URL's user part is cut). */
      readonly endpoint: string;
      /** OTEL_SERVICE_NAME, if set (else `service.name` from the attributes, else `authz`). */
      readonly serviceName: string | undefined;
      /** OTEL_RESOURCE_ATTRIBUTES as given (`key=value,...`, values percent-encoded). */
      readonly resourceAttributes: string | undefined;
      readonly sampler: SamplerName;
      /** For the ratio samplers, 0..1. */
      readonly ratio: number;
      /** The batch span processor (OTEL_BSP_*). */
      readonly batch: {
        /** Spans held for export at most; past it, spans are dropped and counted. */
        readonly maxQueueSize: number;
        readonly maxExportBatchSize: number;
        /** Milliseconds between exports. */
        readonly scheduleDelayMs: number;
        /** Milliseconds one export may take. */
        readonly exportTimeoutMs: number;
      };
    };

/**
 * Defaults, from the OpenTelemetry specification's environment variables (specification/configuration/
 * sdk-environment-variables.md), but the sampler's, which is its default too: parent-based, always on.
 */
export const TRACING_DEFAULTS = Object.freeze({
  protocol: 'http/protobuf' as OtlpProtocol,
  /** OTLP/HTTP's default endpoint (specification/protocol/exporter.md); the exporter appends /v1/traces. */
  endpoint: 'http://localhost:4318',
  sampler: 'parentbased_always_on' as SamplerName,
  ratio: 1,
  maxQueueSize: 2048, // spans
  maxExportBatchSize: 512, // spans
  scheduleDelayMs: 5000, // 5 seconds
  exportTimeoutMs: 30_000, // 30 seconds
});

/** Upper bounds of the batch settings: a queue is memory (a span holds about 1 KiB), a wait is a wait. */
const LIMITS = Object.freeze({
  maxQueueSize: 65_536, // spans
  scheduleDelayMs: 60_000, // 1 minute
  exportTimeoutMs: 60_000, // 1 minute
});

const SAMPLERS: readonly SamplerName[] = [
  'always_on',
  'always_off',
  'traceidratio',
  'parentbased_always_on',
  'parentbased_always_off',
  'parentbased_traceidratio',
];

/**
 * Reads tracing's settings from the standard OpenTelemetry variables, and only from them: tracing is off
 * unless configured (OTEL_TRACES_EXPORTER=otlp, or an OTLP endpoint is set), and OTEL_SDK_DISABLED=true
 * turns it off whatever else is set. The OTLP exporter reads its own variables besides (headers, timeout,
 * compression, certificates); the endpoints are checked here so that a typo is refused at start.
 *
 * Refused, rather than guessed at: `console` (it would mix spans into the JSON log lines on standard
 * output), OTLP over gRPC (not built in: the collector takes OTLP/HTTP too), unknown samplers, ratios outside
 * 0..1, and batch sizes out of bounds.
 *
 * @throws UsageError naming the variable.
 */
export function tracingSettings(env: Environment): TracingSettings {
  const disabled = env['OTEL_SDK_DISABLED']?.trim().toLowerCase();
  if (disabled !== undefined && disabled !== '' && disabled !== 'true' && disabled !== 'false') {
    throw new UsageError(`OTEL_SDK_DISABLED: "${env['OTEL_SDK_DISABLED']}" is not true or false`);
  }
  const exporters = (env['OTEL_TRACES_EXPORTER'] ?? '')
    .split(',')
    .map((name) => name.trim().toLowerCase())
    .filter((name) => name !== '');
  for (const name of exporters) {
    if (name === 'console') {
      throw new UsageError(
        'OTEL_TRACES_EXPORTER: console is not supported: it would mix spans into the JSON log on standard output (use otlp, and a collector with its debug exporter)',
      );
    }
    if (name !== 'otlp' && name !== 'none') {
      throw new UsageError(`OTEL_TRACES_EXPORTER: "${name}" is not otlp or none`);
    }
  }
  const endpointVariable =
    nonEmpty(env['OTEL_EXPORTER_OTLP_TRACES_ENDPOINT']) !== undefined
      ? 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT'
      : nonEmpty(env['OTEL_EXPORTER_OTLP_ENDPOINT']) !== undefined
        ? 'OTEL_EXPORTER_OTLP_ENDPOINT'
        : undefined;
  const configured = exporters.length > 0 ? exporters.includes('otlp') : endpointVariable !== undefined;
  if (disabled === 'true' || !configured) return Object.freeze({ enabled: false });

  // specification/protocol/exporter.md: a signal's own endpoint is used as is; the shared one gets
  // `v1/traces` appended (after a `/`).
  const base =
    endpointVariable === undefined ? TRACING_DEFAULTS.endpoint : (env[endpointVariable] ?? '').trim();
  const url =
    endpointVariable === 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT'
      ? base
      : `${base.endsWith('/') ? base : `${base}/`}v1/traces`;
  const endpoint = printableEndpoint(url, endpointVariable ?? 'OTEL_EXPORTER_OTLP_ENDPOINT');
  const protocolVariable =
    nonEmpty(env['OTEL_EXPORTER_OTLP_TRACES_PROTOCOL']) !== undefined
      ? 'OTEL_EXPORTER_OTLP_TRACES_PROTOCOL'
      : 'OTEL_EXPORTER_OTLP_PROTOCOL';
  const protocol = nonEmpty(env[protocolVariable])?.trim() ?? TRACING_DEFAULTS.protocol;
  if (protocol === 'grpc') {
    throw new UsageError(
      `${protocolVariable}: grpc is not supported: use http/protobuf or http/json (the OpenTelemetry Collector's OTLP receiver takes both, on port 4318)`,
    );
  }
  if (protocol !== 'http/protobuf' && protocol !== 'http/json') {
    throw new UsageError(`${protocolVariable}: "${protocol}" is not http/protobuf or http/json`);
  }
  const sampler = (nonEmpty(env['OTEL_TRACES_SAMPLER'])?.trim().toLowerCase() ??
    TRACING_DEFAULTS.sampler) as SamplerName;
  if (!SAMPLERS.includes(sampler)) {
    throw new UsageError(
      `OTEL_TRACES_SAMPLER: "${env['OTEL_TRACES_SAMPLER']}" is not one of ${SAMPLERS.join(', ')}`,
    );
  }
  const ratioText = nonEmpty(env['OTEL_TRACES_SAMPLER_ARG'])?.trim();
  const ratio = ratioText === undefined ? TRACING_DEFAULTS.ratio : Number(ratioText);
  if (ratioText !== undefined && !(/^\d*\.?\d+(e-?\d+)?$/i.test(ratioText) && ratio >= 0 && ratio <= 1)) {
    throw new UsageError(`OTEL_TRACES_SAMPLER_ARG: "${ratioText}" is not a number from 0 to 1`);
  }
  const maxQueueSize = wholeNumber(
    env,
    'OTEL_BSP_MAX_QUEUE_SIZE',
    TRACING_DEFAULTS.maxQueueSize,
    1,
    LIMITS.maxQueueSize,
  );
  const maxExportBatchSize = wholeNumber(
    env,
    'OTEL_BSP_MAX_EXPORT_BATCH_SIZE',
    Math.min(TRACING_DEFAULTS.maxExportBatchSize, maxQueueSize),
    1,
    maxQueueSize,
  );
  return Object.freeze({
    enabled: true,
    protocol,
    url,
    endpoint,
    serviceName: nonEmpty(env['OTEL_SERVICE_NAME'])?.trim(),
    resourceAttributes: nonEmpty(env['OTEL_RESOURCE_ATTRIBUTES']),
    sampler,
    ratio,
    batch: Object.freeze({
      maxQueueSize,
      maxExportBatchSize,
      scheduleDelayMs: wholeNumber(
        env,
        'OTEL_BSP_SCHEDULE_DELAY',
        TRACING_DEFAULTS.scheduleDelayMs,
        0,
        LIMITS.scheduleDelayMs,
      ),
      exportTimeoutMs: wholeNumber(
        env,
        'OTEL_BSP_EXPORT_TIMEOUT',
        TRACING_DEFAULTS.exportTimeoutMs,
        1,
        LIMITS.exportTimeoutMs,
      ),
    }),
  });
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value.trim() === '' ? undefined : value;
}

/** A whole number of `variable` within [min, max] (milliseconds or spans), or `fallback` when unset. */
function wholeNumber(env: Environment, variable: string, fallback: number, min: number, max: number): number {
  const text = nonEmpty(env[variable])?.trim();
  if (text === undefined) return fallback;
  const value = /^\d{1,9}$/.test(text) ? Number(text) : NaN;
  if (!(value >= min && value <= max)) {
    throw new UsageError(`${variable}: "${text}" is not a whole number from ${min} to ${max}`);
  }
  return value;
}

/**
 * An OTLP endpoint must be an http(s) URL; it is logged without its user part (credentials belong in
 * OTEL_EXPORTER_OTLP_HEADERS, which is never logged).
 */
function printableEndpoint(value: string, variable: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    // Not echoed: a mistyped URL may still hold a password.
    throw new UsageError(`${variable}: not a URL (e.g. http://otel-collector:4318)`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new UsageError(`${variable}: "${url.protocol}" is not http: or https: (OTLP over HTTP)`);
  }
  url.username = '';
  url.password = '';
  return url.toString();
}
