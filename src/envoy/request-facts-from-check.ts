import { readAccessTokenCredentials } from '../authn/access-token-credentials.js';
import type { RequestFacts } from '../authz/request-facts.js';
import type { CheckRequestMessage } from './check-messages.js';

/** Request facts (the access token as presented credentials) plus what the adapter needs for logging. */
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
 * The credentials are read from `Authorization` alone, with RFC 6750's rules (and RFC 9449's for `DPoP`);
 * the `DPoP` proofs and the client certificate are passed on as received, for the verifier to check.
 */
export function requestFactsFromCheck(request: CheckRequestMessage): CheckedRequest {
  const http = request.attributes?.request?.http ?? undefined;
  const authorization: string[] = [];
  const dpop: string[] = [];
  const entries = http?.header_map?.headers ?? [];
  if (entries.length > 0) {
    for (const entry of entries) {
      const key = (entry.key ?? '').toLowerCase();
      const into = key === 'authorization' ? authorization : key === 'dpop' ? dpop : undefined;
      if (into === undefined) continue;
      const raw = entry.raw_value;
      into.push(
        raw !== undefined && raw.length > 0 ? Buffer.from(raw).toString('latin1') : (entry.value ?? ''),
      );
    }
  } else {
    const value = http?.headers?.['authorization'];
    if (value !== undefined) authorization.push(value);
    // Repeated DPoP headers arrive joined with commas, which no compact JWS contains: the proof check refuses.
    const proof = http?.headers?.['dpop'];
    if (proof !== undefined) dpop.push(proof);
  }
  // Only what Envoy saw on the TLS connection (include_peer_certificate); never a client-set header such as
  // X-Forwarded-Client-Cert (RFC 8705 section 3 binds the token to the certificate of the mTLS connection).
  const certificate = request.attributes?.source?.certificate ?? '';
  // Envoy's route or virtual host may name the service (docs/policy.md, "Services"); an empty name names none.
  const serviceName = request.attributes?.context_extensions?.[SERVICE_EXTENSION];
  return {
    method: http?.method ?? '',
    target: http?.path ?? '',
    host: http?.host === undefined || http.host === '' ? undefined : http.host,
    serviceName: serviceName === undefined || serviceName === '' ? undefined : serviceName,
    credentials: readAccessTokenCredentials(authorization),
    dpopProofs: dpop,
    clientCertificate: certificate === '' ? undefined : certificate,
    requestId: (http?.id ?? '').slice(0, 128),
  };
}
