import type { TraceFieldReader } from '../tracing/check-tracing.js';
import type { CheckRequestMessage } from './check-messages.js';

/**
 * Reads trace propagation fields (`traceparent`, `tracestate`, `b3`, `x-b3-*`) from the HTTP headers a
 * CheckRequest carries: the client's trace context, used when the call's gRPC metadata holds none (Envoy
 * without tracing forwards the client's headers but propagates nothing itself). Names are asked
 * lower-case, as Envoy sends header names in `headers`; `header_map` is searched for `encode_raw_headers`.
 */
export function traceFieldsFromCheck(request: CheckRequestMessage): TraceFieldReader {
  const http = request.attributes?.request?.http ?? undefined;
  const entries = http?.header_map?.headers ?? [];
  if (entries.length === 0) {
    const headers = http?.headers ?? {};
    return (name) => headers[name];
  }
  return (name) => {
    for (const entry of entries) {
      if ((entry.key ?? '').toLowerCase() !== name) continue;
      const raw = entry.raw_value;
      return raw !== undefined && raw.length > 0 ? Buffer.from(raw).toString('latin1') : (entry.value ?? '');
    }
    return undefined;
  };
}

/** No fields: a call without gRPC metadata (in-process callers). */
export const NO_TRACE_FIELDS: TraceFieldReader = () => undefined;
