import type { AuthScheme } from '../authz/credentials.js';

/**
 * A request the policy tools evaluate: method, request target (a query string may follow the path) and, for a
 * policy with services, the host it is for (`--host`) or the service Envoy would name. What it carries
 * besides the token is said, not shown (docs/sender-constraints.md): the scheme of its `Authorization`
 * header, whether it carries a valid DPoP proof from the token's key, and whether its connection presents
 * the token's client certificate.
 */
export interface OpsRequest {
  readonly method: string;
  readonly target: string;
  readonly host?: string | undefined;
  readonly serviceName?: string | undefined;
  /** The scheme the token is presented with; default `Bearer`. */
  readonly scheme?: AuthScheme | undefined;
  /** Whether the request carries a valid DPoP proof from the key the token is bound to (RFC 9449). */
  readonly dpopProof?: boolean | undefined;
  /** Whether the connection presents the client certificate the token is bound to (RFC 8705). */
  readonly clientCertificate?: boolean | undefined;
}
