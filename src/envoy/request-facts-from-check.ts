import { readBearerCredentials } from '../authn/bearer-credentials.js';
import type { RequestFacts } from '../authz/request-facts.js';
import type { CheckRequestMessage } from './check-messages.js';

/** Request facts (the bearer token as presented credentials) plus what the adapter needs for logging. */
export interface CheckedRequest extends RequestFacts<string> {
  /** Envoy's request id (`x-request-id`), for correlating logs; empty when absent. */
  readonly requestId: string;
}

/** The `context_extensions` key through which Envoy names the service of a route or virtual host. */
export const SERVICE_EXTENSION = 'service';

/**
 * Reads the facts authorisation needs from an Envoy CheckRequest. Envoy sends headers either as a map
 * (names lower-cased, repeated headers joined with ",") or, with `encode_raw_headers`, as `header_map`
 * with one entry per header line; both are read so that repeated Authorization headers are always seen.
 * The credentials are read from `Authorization` alone, with RFC 6750's rules.
 */
export function requestFactsFromCheck(request: CheckRequestMessage): CheckedRequest {
  const http = request.attributes?.request?.http ?? undefined;
  const authorization: string[] = [];
  const entries = http?.header_map?.headers ?? [];
  if (entries.length > 0) {
    for (const entry of entries) {
      if ((entry.key ?? '').toLowerCase() !== 'authorization') continue;
      const raw = entry.raw_value;
      authorization.push(
        raw !== undefined && raw.length > 0 ? Buffer.from(raw).toString('latin1') : (entry.value ?? ''),
      );
    }
  } else {
    const value = http?.headers?.['authorization'];
    if (value !== undefined) authorization.push(value);
  }
  // Envoy's route or virtual host may name the service (README "Services"); an empty name names none.
  const serviceName = request.attributes?.context_extensions?.[SERVICE_EXTENSION];
  return {
    method: http?.method ?? '',
    target: http?.path ?? '',
    host: http?.host === undefined || http.host === '' ? undefined : http.host,
    serviceName: serviceName === undefined || serviceName === '' ? undefined : serviceName,
    credentials: readBearerCredentials(authorization),
    requestId: (http?.id ?? '').slice(0, 128),
  };
}
