import { AsyncLocalStorage } from 'node:async_hooks';
import {
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  TraceFlags,
  trace,
  type Context,
  type Span,
  type TextMapGetter,
} from '@opentelemetry/api';
import {
  ExportResultCode,
  W3CTraceContextPropagator,
  parseKeyPairsIntoRecord,
  type ExportResult,
} from '@opentelemetry/core';
import { OTLPTraceExporter as OtlpJsonTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { OTLPTraceExporter as OtlpProtobufTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { B3Propagator } from '@opentelemetry/propagator-b3';
import { resourceFromAttributes } from '@opentelemetry/resources';
import {
  AlwaysOffSampler,
  AlwaysOnSampler,
  BatchSpanProcessor,
  ParentBasedSampler,
  TraceIdRatioBasedSampler,
  TracerProvider,
  type ReadableSpan,
  type Sampler,
  type SpanExporter,
  type SpanProcessor,
} from '@opentelemetry/sdk-trace';
import type { CheckSpan, CheckTracing, StepTracing, TraceFieldReader } from './check-tracing.js';
import type { TracingSettings } from './tracing-settings.js';

/** Why spans were not exported: the queue was full (the collector too slow or away), or an export failed. */
export type DroppedSpansCause = 'queue_full' | 'export_failed';

export interface TracingDependencies {
  /** `service.version` of the resource. */
  readonly serviceVersion: string;
  /** Spans that will never reach the collector; called off the request path or in `span.end()`, must not throw. */
  readonly onDropped?: (cause: DroppedSpansCause, spans: number) => void;
  /** Exports started failing (`failing`, with the exporter's message) or work again (`ok`); once per change. */
  readonly onExportState?: (event: { state: 'failing' | 'ok'; detail?: string }) => void;
  /** Instead of OTLP (tests: an in-memory exporter). */
  readonly exporter?: SpanExporter;
}

/** Tracing, started: what the server uses, and the shutdown that sends what is left. */
export interface StartedTracing {
  readonly checks: CheckTracing;
  /** Exports the spans still queued, for at most `timeoutMs`, then stops. */
  shutdown(timeoutMs?: number): Promise<void>;
}

const RPC_SERVICE = 'envoy.service.auth.v3.Authorization';
/** The span name of a Check: `{rpc.service}/{rpc.method}` (OpenTelemetry semantic conventions, RPC spans). */
export const CHECK_SPAN_NAME = `${RPC_SERVICE}/Check`;
/** How long stopping waits for the last export (a collector away must not hold a rollout). */
const SHUTDOWN_TIMEOUT_MS = 2000; // 2 seconds
/** The longest attribute value kept: policy names and codes are short; anything longer is cut. */
const MAX_ATTRIBUTE_LENGTH = 256; // characters
/** The longest export error message logged. */
const MAX_DETAIL_LENGTH = 200; // characters
/** The longest trace propagation field read: a `tracestate` may hold 32 members of 256 characters. */
const MAX_FIELD_LENGTH = 8192; // characters

/**
 * Starts the OpenTelemetry SDK for Checks, as `settings` (the standard variables) say: a tracer provider
 * with the parent-based or ratio sampler, and a batch span processor exporting OTLP over HTTP (protobuf or
 * JSON) off the request path. The queue is bounded: past `OTEL_BSP_MAX_QUEUE_SIZE` spans awaiting export,
 * new ones are dropped and counted, so an unreachable collector never slows a Check nor grows memory.
 *
 * Nothing here is global: no tracer provider, propagator or context manager is registered with the
 * OpenTelemetry API. Parents are passed explicitly, and the Check under way is found through this
 * module's own AsyncLocalStorage, so that several servers (tests) can run in one process.
 */
export function startTracing(
  settings: Extract<TracingSettings, { enabled: true }>,
  deps: TracingDependencies,
): StartedTracing {
  const exporter = new CountingExporter(
    deps.exporter ??
      (settings.protocol === 'http/json'
        ? new OtlpJsonTraceExporter({ url: settings.url })
        : new OtlpProtobufTraceExporter({ url: settings.url })),
    deps,
  );
  const processor = new BoundedSpanProcessor(
    new BatchSpanProcessor({
      exporter,
      // The bound is ours (BoundedSpanProcessor): the batch processor's own never drops before it.
      maxQueueSize: settings.batch.maxQueueSize + settings.batch.maxExportBatchSize,
      maxExportBatchSize: settings.batch.maxExportBatchSize,
      scheduledDelayMillis: settings.batch.scheduleDelayMs,
      exportTimeoutMillis: settings.batch.exportTimeoutMs,
    }),
    exporter,
    settings.batch.maxQueueSize,
    deps.onDropped,
  );
  const resourceAttributes = parseKeyPairsIntoRecord(settings.resourceAttributes);
  const provider = new TracerProvider({
    sampler: samplerFor(settings),
    resource: resourceFromAttributes({
      'service.name': 'authz',
      'service.version': deps.serviceVersion,
      ...resourceAttributes,
      ...(settings.serviceName === undefined ? {} : { 'service.name': settings.serviceName }),
    }),
    spanLimits: { attributeValueLengthLimit: MAX_ATTRIBUTE_LENGTH },
    spanProcessors: [processor],
  });
  const tracer = provider.getTracer('authz');
  // W3C trace context first; B3 (single `b3` or multi `x-b3-*`) for meshes that propagate it, e.g. Envoy's
  // Zipkin tracer, asked only when there is no W3C context. Each propagator leaves the context alone when
  // its fields are absent or malformed.
  const w3c = new W3CTraceContextPropagator();
  const b3 = new B3Propagator();
  const under = new AsyncLocalStorage<UnderWay>();

  const parentOf = (fields: TraceFieldReader): Context | undefined => {
    for (const propagator of [w3c, b3]) {
      const context = propagator.extract(ROOT_CONTEXT, fields, FIELD_GETTER);
      if (trace.getSpanContext(context) !== undefined) return context;
    }
    return undefined;
  };

  const steps: StepTracing = {
    step: (name, attributes, run, outcome) => {
      const current = under.getStore();
      if (current === undefined || !current.check.isRecording()) return run();
      const span = tracer.startSpan(name, { kind: SpanKind.INTERNAL, attributes }, current.context);
      return under.run({ check: current.check, context: trace.setSpan(current.context, span) }, run).then(
        (result) => {
          if (outcome !== undefined) span.setAttributes(outcome(result));
          span.end();
          return result;
        },
        (error: unknown) => {
          // The Check's span says what failed (fail(kind)); this one only that it did.
          span.setStatus({ code: SpanStatusCode.ERROR });
          span.end();
          throw error;
        },
      );
    },
    annotate: (key, value) => {
      const current = under.getStore();
      if (current !== undefined && current.check.isRecording()) current.check.setAttribute(key, value);
    },
  };

  const checks: CheckTracing = {
    steps,
    startCheck(metadata, headers) {
      const parent = parentOf(metadata) ?? parentOf(headers) ?? ROOT_CONTEXT;
      const span = tracer.startSpan(
        CHECK_SPAN_NAME,
        { kind: SpanKind.SERVER, attributes: RPC_ATTRIBUTES },
        parent,
      );
      const { traceId, spanId, traceFlags } = span.spanContext();
      const recording = span.isRecording();
      return {
        traceId,
        spanId: (traceFlags & TraceFlags.SAMPLED) === 0 ? undefined : spanId,
        // Steps look for a recording Check: an unsampled one needs no async context at all.
        within: (run) =>
          recording ? under.run({ check: span, context: trace.setSpan(parent, span) }, run) : run(),
        end: (attributes) => {
          if (recording) span.setAttributes(attributes());
          span.end();
        },
        fail: (kind) => {
          span.setAttributes({ 'rpc.grpc.status_code': 13 }); // INTERNAL: Envoy answers status_on_error
          span.setStatus({ code: SpanStatusCode.ERROR, message: kind });
          span.end();
        },
      } satisfies CheckSpan;
    },
  };

  let stopping: Promise<void> | undefined;
  return {
    checks,
    shutdown: (timeoutMs = SHUTDOWN_TIMEOUT_MS) =>
      (stopping ??= new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, timeoutMs);
        timer.unref();
        provider.shutdown().then(
          () => {
            clearTimeout(timer);
            resolve();
          },
          () => {
            clearTimeout(timer);
            resolve(); // what could not be sent is lost either way; stopping must go on
          },
        );
      })),
  };
}

/** The Check under way in an async context: its span, and the parent for its next step. */
interface UnderWay {
  readonly check: Span;
  readonly context: Context;
}

const RPC_ATTRIBUTES = Object.freeze({
  'rpc.system': 'grpc',
  'rpc.service': RPC_SERVICE,
  'rpc.method': 'Check',
});

/** Reads propagation fields through a {@link TraceFieldReader}, capping their length. */
const FIELD_GETTER: TextMapGetter<TraceFieldReader> = {
  get: (read, key) => {
    const value = read(key);
    return value === undefined || value.length > MAX_FIELD_LENGTH ? undefined : value;
  },
  keys: () => [], // only named fields are read: traceparent, tracestate, b3, x-b3-*
};

/** OTEL_TRACES_SAMPLER, as the specification defines its values. */
function samplerFor(settings: Extract<TracingSettings, { enabled: true }>): Sampler {
  const ratio = new TraceIdRatioBasedSampler(settings.ratio);
  switch (settings.sampler) {
    case 'always_on':
      return new AlwaysOnSampler();
    case 'always_off':
      return new AlwaysOffSampler();
    case 'traceidratio':
      return ratio;
    case 'parentbased_always_off':
      return new ParentBasedSampler({ root: new AlwaysOffSampler() });
    case 'parentbased_traceidratio':
      return new ParentBasedSampler({ root: ratio });
    case 'parentbased_always_on':
      return new ParentBasedSampler({ root: new AlwaysOnSampler() });
  }
}

/**
 * In front of the batch processor: holds at most `maxQueued` sampled spans not yet exported (queued or in
 * an export under way), dropping and counting the rest, so the bound covers what an unreachable collector
 * leaves in memory, and every drop is counted (the batch processor's own drops are not observable).
 */
class BoundedSpanProcessor implements SpanProcessor {
  constructor(
    private readonly inner: SpanProcessor,
    private readonly exporter: CountingExporter,
    private readonly maxQueued: number,
    private readonly onDropped: TracingDependencies['onDropped'],
  ) {}

  onStart(): void {}

  onEnd(span: ReadableSpan): void {
    if ((span.spanContext().traceFlags & TraceFlags.SAMPLED) === 0) return;
    if (this.exporter.pending >= this.maxQueued) {
      this.onDropped?.('queue_full', 1);
      return;
    }
    this.exporter.pending++;
    this.inner.onEnd(span);
  }

  forceFlush(): Promise<void> {
    return this.inner.forceFlush();
  }

  shutdown(): Promise<void> {
    return this.inner.shutdown();
  }
}

/** Counts spans handed over and not yet exported, reports failed exports, and says when exports fail or recover. */
class CountingExporter implements SpanExporter {
  pending = 0;
  private failing = false;

  constructor(
    private readonly inner: SpanExporter,
    private readonly deps: TracingDependencies,
  ) {}

  export(spans: ReadableSpan[], done: (result: ExportResult) => void): void {
    this.inner.export(spans, (result) => {
      this.pending = Math.max(0, this.pending - spans.length);
      const failed = result.code !== ExportResultCode.SUCCESS;
      if (failed) this.deps.onDropped?.('export_failed', spans.length);
      if (failed !== this.failing) {
        this.failing = failed;
        this.deps.onExportState?.(
          failed
            ? {
                state: 'failing',
                detail: (result.error?.message ?? 'export failed').slice(0, MAX_DETAIL_LENGTH),
              }
            : { state: 'ok' },
        );
      }
      done(result);
    });
  }

  shutdown(): Promise<void> {
    return this.inner.shutdown();
  }

  forceFlush(): Promise<void> {
    return this.inner.forceFlush?.() ?? Promise.resolve();
  }
}
