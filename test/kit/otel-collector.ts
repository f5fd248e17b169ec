import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { stringify } from 'yaml';
import { freePorts } from './free-port.js';
import { installedBinary } from './installed-binary.js';
import { startProcess, waitUntilReady, type KitProcess } from './process.js';
import { waitUntil } from './wait-until.js';

/*
 * A real OpenTelemetry Collector for the tracing tests: it receives OTLP (gRPC and HTTP) on free ports of
 * 127.0.0.1, as the sidecar's SDK and Envoy's tracer send it, and its file exporter writes every batch it
 * received as one OTLP/JSON line, which {@link OtelCollector.spans} reads back. The binary is the minimal
 * collector of scripts/otelcol (the OTLP receiver, the debug and file exporters), built by
 * scripts/install-otelcol.sh.
 */

/**
 * Locates the collector: `$OTELCOL_BIN` if set, else `.tools/bin/otelcol` as built by
 * `npm run otelcol:install` (scripts/install-otelcol.sh).
 *
 * @returns the absolute path of an executable collector
 * @throws Error when it is missing or not executable, naming the command that installs it
 */
export function otelcolBinary(): string {
  return installedBinary({
    name: 'OpenTelemetry Collector',
    envVar: 'OTELCOL_BIN',
    installedAt: '.tools/bin/otelcol',
    npmScript: 'otelcol:install',
    script: 'scripts/install-otelcol.sh',
  });
}

/** A span kind by its OTLP name without the `SPAN_KIND_` prefix. */
export type SpanKindName = 'UNSPECIFIED' | 'INTERNAL' | 'SERVER' | 'CLIENT' | 'PRODUCER' | 'CONSUMER';

/** A span's status code by its OTLP name without the `STATUS_CODE_` prefix. */
export type StatusCodeName = 'UNSET' | 'OK' | 'ERROR';

/** An attribute value as a test compares it: an OTLP intValue (a string in OTLP/JSON) is a number here. */
export type AttributeValue = string | number | boolean | readonly (string | number | boolean)[];

/** One span the collector received, flattened out of its resource and scope. */
export interface CollectedSpan {
  /** 32 lowercase hex digits. */
  readonly traceId: string;
  /** 16 lowercase hex digits. */
  readonly spanId: string;
  /** 16 lowercase hex digits; '' for a root span. */
  readonly parentSpanId: string;
  readonly name: string;
  readonly kind: SpanKindName;
  readonly attributes: Readonly<Record<string, AttributeValue>>;
  /** The resource's `service.name` (`envoy`, `authz`); undefined when the resource has none. */
  readonly serviceName: string | undefined;
  readonly resourceAttributes: Readonly<Record<string, AttributeValue>>;
  readonly statusCode: StatusCodeName;
}

/** How to start a collector: {@link startOtelCollector}. */
export interface OtelCollectorOptions {
  /** How long it may take to say it is ready (default 20 s). */
  readonly readyTimeoutMs?: number;
  /**
   * `file` (default): every batch written, for {@link OtelCollector.spans}; `discard`: received, counted in
   * its log and dropped (the bench: a file would grow by megabytes a second).
   */
  readonly received?: 'file' | 'discard';
  /** Pin to this core (see {@link startProcess}). */
  readonly cpu?: number;
}

/** A running collector. */
export interface OtelCollector {
  /** `http://127.0.0.1:PORT`, the OTLP/HTTP receiver (an SDK's OTEL_EXPORTER_OTLP_ENDPOINT; it adds /v1/traces). */
  readonly otlpHttpUrl: string;
  /** The port of the OTLP/gRPC receiver on 127.0.0.1 (Envoy's otel_collector cluster). */
  readonly otlpGrpcPort: number;
  readonly process: KitProcess;
  /** Every span written so far, in the order received. */
  spans(): readonly CollectedSpan[];
  /**
   * Reads {@link spans} every 50 ms until `accept` approves them, and returns them.
   * @throws Error naming `what`, with the spans last seen, when that does not happen within `timeoutMs`
   */
  waitForSpans(
    accept: (spans: readonly CollectedSpan[]) => boolean,
    options: { readonly timeoutMs: number; readonly what: string },
  ): Promise<readonly CollectedSpan[]>;
  /** Stops it (SIGTERM, which flushes the exporter; SIGKILL after 5 s) and removes its folder. Safe to call twice. */
  stop(): Promise<void>;
}

const READY_TIMEOUT_MS = 20_000;
// The file exporter buffers what it writes and flushes at this interval (its default is 1 s).
const FLUSH_INTERVAL = '100ms';
// What the collector logs once every pipeline and receiver has started (otelcol's collector.go).
const READY_LINE = 'Everything is ready';

const KINDS: readonly SpanKindName[] = [
  'UNSPECIFIED',
  'INTERNAL',
  'SERVER',
  'CLIENT',
  'PRODUCER',
  'CONSUMER',
];
const STATUS_CODES: readonly StatusCodeName[] = ['UNSET', 'OK', 'ERROR'];

/** An enum of OTLP/JSON, given as its number (the collector's JSON) or its name (`SPAN_KIND_SERVER`). */
function enumName<T extends string>(value: unknown, names: readonly T[], prefix: string): T {
  if (value === undefined) return names[0]!;
  if (typeof value === 'number' && names[value] !== undefined) return names[value];
  if (typeof value === 'string') {
    const name = value.startsWith(prefix) ? value.slice(prefix.length) : value;
    if ((names as readonly string[]).includes(name)) return name as T;
  }
  throw new Error(`OTLP/JSON: unknown ${prefix}* value ${JSON.stringify(value)}`);
}

interface AnyValue {
  stringValue?: string;
  boolValue?: boolean;
  intValue?: string | number;
  doubleValue?: number;
  arrayValue?: { values?: AnyValue[] };
  kvlistValue?: unknown;
  bytesValue?: string;
}

interface KeyValue {
  key: string;
  value?: AnyValue;
}

function scalar(value: AnyValue | undefined): string | number | boolean {
  if (value === undefined) return '';
  if (value.stringValue !== undefined) return value.stringValue;
  if (value.boolValue !== undefined) return value.boolValue;
  if (value.intValue !== undefined) return Number(value.intValue);
  if (value.doubleValue !== undefined) return value.doubleValue;
  if (value.bytesValue !== undefined) return value.bytesValue;
  // A key-value list is not something these tests set or read: keep it as its JSON, searchable as text.
  return JSON.stringify(value);
}

function attributesOf(list: readonly KeyValue[] | undefined): Record<string, AttributeValue> {
  const attributes: Record<string, AttributeValue> = {};
  for (const { key, value } of list ?? []) {
    attributes[key] =
      value?.arrayValue === undefined ? scalar(value) : (value.arrayValue.values ?? []).map(scalar);
  }
  return attributes;
}

interface OtlpSpan {
  traceId?: string;
  spanId?: string;
  parentSpanId?: string;
  name?: string;
  kind?: number | string;
  attributes?: KeyValue[];
  status?: { code?: number | string };
}

interface OtlpTraces {
  resourceSpans?: Array<{
    resource?: { attributes?: KeyValue[] };
    scopeSpans?: Array<{ spans?: OtlpSpan[] }>;
  }>;
}

/**
 * The spans of one OTLP/JSON traces document (an ExportTraceServiceRequest, as the file exporter writes a
 * batch), flattened. Ids are hex strings in OTLP/JSON, unlike the base64 of protobuf's own JSON mapping.
 */
export function spansOfOtlpJson(document: unknown): CollectedSpan[] {
  const spans: CollectedSpan[] = [];
  for (const resourceSpans of (document as OtlpTraces).resourceSpans ?? []) {
    const resourceAttributes = attributesOf(resourceSpans.resource?.attributes);
    const service = resourceAttributes['service.name'];
    for (const scopeSpans of resourceSpans.scopeSpans ?? []) {
      for (const span of scopeSpans.spans ?? []) {
        spans.push({
          traceId: (span.traceId ?? '').toLowerCase(),
          spanId: (span.spanId ?? '').toLowerCase(),
          parentSpanId: (span.parentSpanId ?? '').toLowerCase(),
          name: span.name ?? '',
          kind: enumName(span.kind, KINDS, 'SPAN_KIND_'),
          attributes: attributesOf(span.attributes),
          serviceName: typeof service === 'string' ? service : undefined,
          resourceAttributes,
          statusCode: enumName(span.status?.code, STATUS_CODES, 'STATUS_CODE_'),
        });
      }
    }
  }
  return spans;
}

/**
 * The collector's configuration: OTLP in on both ports; every batch out to `file` as an OTLP/JSON line, or
 * (`discard`) to the debug exporter, which only counts it in its log.
 */
function collectorConfig(
  grpcPort: number,
  httpPort: number,
  file: string,
  received: 'file' | 'discard' = 'file',
): string {
  return stringify({
    receivers: {
      otlp: {
        protocols: {
          grpc: { endpoint: `127.0.0.1:${grpcPort}` },
          http: { endpoint: `127.0.0.1:${httpPort}` },
        },
      },
    },
    exporters:
      received === 'file'
        ? { file: { path: file, format: 'json', flush_interval: FLUSH_INTERVAL } }
        : { debug: { verbosity: 'basic' } },
    service: {
      pipelines: { traces: { receivers: ['otlp'], exporters: [received === 'file' ? 'file' : 'debug'] } },
    },
  });
}

/**
 * Starts the collector (see {@link otelcolBinary}) on free ports of 127.0.0.1 with a file exporter into a
 * temporary folder, and waits until it logs that everything is ready (its receivers listen).
 *
 * @throws Error with the collector's output when it exits first or is not ready within readyTimeoutMs
 */
export async function startOtelCollector(options: OtelCollectorOptions = {}): Promise<OtelCollector> {
  const binary = otelcolBinary();
  const [grpcPort, httpPort] = (await freePorts(2)) as [number, number];
  const dir = await mkdtemp(path.join(tmpdir(), 'otelcol-kit-'));
  const configFile = path.join(dir, 'config.yaml');
  const tracesFile = path.join(dir, 'traces.jsonl');
  await writeFile(configFile, collectorConfig(grpcPort, httpPort, tracesFile, options.received));
  const args = ['--config', `file:${configFile}`];
  const collector = startProcess({
    name: 'otelcol',
    command: binary,
    args,
    ...(options.cpu === undefined ? {} : { cpu: options.cpu }),
  });
  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> =>
    (stopping ??= (async () => {
      await collector.stop();
      await rm(dir, { recursive: true, force: true });
    })());
  try {
    await waitUntilReady(
      collector,
      `"${READY_LINE}" in its log`,
      () => collector.stderr().includes(READY_LINE),
      options.readyTimeoutMs ?? READY_TIMEOUT_MS,
    );
  } catch (error) {
    await stop();
    throw new Error(`${(error as Error).message}\nCommand: ${binary} ${args.join(' ')}`);
  }

  // Lines parsed so far, and how many characters of the file they came from: the file only grows.
  const parsed: CollectedSpan[] = [];
  let consumed = 0;
  const spans = (): readonly CollectedSpan[] => {
    let text: string;
    try {
      text = readFileSync(tracesFile, 'utf8');
    } catch {
      return parsed; // nothing received yet: the exporter creates the file with its first batch
    }
    // Only whole lines: the exporter may be in the middle of writing the last one.
    const end = text.lastIndexOf('\n') + 1;
    for (const line of text.slice(consumed, end).split('\n')) {
      if (line.trim() !== '') parsed.push(...spansOfOtlpJson(JSON.parse(line)));
    }
    consumed = Math.max(consumed, end);
    return [...parsed];
  };
  return {
    otlpHttpUrl: `http://127.0.0.1:${httpPort}`,
    otlpGrpcPort: grpcPort,
    process: collector,
    spans,
    waitForSpans: (accept, { timeoutMs, what }) => waitUntil(spans, accept, { timeoutMs, what }),
    stop,
  };
}
