/*
 * What the Envoy adapter, the key sets and the verifier see of tracing: interfaces only, so that a process
 * with tracing off never loads the OpenTelemetry SDK (start-tracing.ts is imported only when it is on).
 */

/** Reads one trace propagation field of an incoming Check (a gRPC metadata key or an HTTP header). */
export type TraceFieldReader = (name: string) => string | undefined;

/** As the SDK takes them (its arrays are mutable: a span keeps what it is given). */
export type SpanAttributeValue = string | number | boolean | string[];
export type SpanAttributes = Readonly<Record<string, SpanAttributeValue>>;

/** The names of the child spans of a Check (docs/operations.md, "Traces"). */
export type StepName =
  'authz.verify_token' | 'authz.fetch_key_set' | 'authz.check_dpop_proof' | 'authz.claim_dpop_proof';

/** Tracing of Checks, as `authz serve` starts it from the OpenTelemetry variables. */
export interface CheckTracing {
  /**
   * Starts the SERVER span of one Check, a child of the caller's span: the trace context in the call's gRPC
   * metadata (where Envoy's tracing puts it), else in the request's HTTP headers; W3C trace context, else
   * B3. A malformed or absent context starts a new trace, as the sampler decides.
   */
  startCheck(metadata: TraceFieldReader, headers: TraceFieldReader): CheckSpan;
  /** For the key sets and the verifier: the child spans of the Check under way. */
  readonly steps: StepTracing;
}

/** The span of one Check. */
export interface CheckSpan {
  /** The trace's id (32 hex digits): the caller's when it sent one, even when this span is not sampled. */
  readonly traceId: string;
  /** This span's id (16 hex digits) when it is sampled, so exported; else undefined. */
  readonly spanId: string | undefined;
  /** Runs the Check with this span as the parent of its steps (when it is sampled; else just runs it). */
  within<T>(run: () => Promise<T>): Promise<T>;
  /**
   * Ends the span with the decision's attributes (check-span-attributes.ts), which are only worked out when
   * the span is sampled: an unsampled Check pays for no attribute.
   */
  end(attributes: () => SpanAttributes): void;
  /** Ends the span as failed: the Check answered a gRPC error; `kind` as in `authz_check_faults_total`. */
  fail(kind: string): void;
}

/** Child spans of the Check under way in the current async context; nothing when it is not sampled. */
export interface StepTracing {
  /**
   * Runs `run` as a child span `name` of the Check (or step) under way, when that Check is sampled; else
   * just runs it. `outcome` reads attributes off the result; a rejection marks the span as an error.
   */
  step<T>(
    name: StepName,
    attributes: SpanAttributes,
    run: () => Promise<T>,
    outcome?: (result: T) => SpanAttributes,
  ): Promise<T>;
  /** Sets an attribute on the span of the Check under way (e.g. `authz.token_cache`), when sampled. */
  annotate(key: string, value: SpanAttributeValue): void;
}
