import type { PossessionProofs, ProofRequest } from './possession-proof.js';
import type { TokenVerification } from './token-verification.js';
import type { AuthScheme } from './auth-scheme.js';

export type { AuthScheme } from './auth-scheme.js';

/**
 * What a request presents as credentials, as an adapter read them. The core never parses headers: the
 * Envoy adapter reads the `Authorization` header with RFC 6750's rules (`src/authn/access-token-credentials.ts`),
 * and the policy tools present claims they were given. `Presented` is what a verifier of that kind takes.
 * - `none`: nothing (or another scheme), answered with a bare challenge on a protected route;
 * - `malformed`: an attempt at credentials that breaks the syntax (400 `invalid_request`);
 * - `presented`: something to verify, not yet trusted.
 */
export type Credentials<Presented> =
  | { readonly kind: 'none' }
  | { readonly kind: 'malformed'; readonly description: string; readonly scheme?: AuthScheme }
  | { readonly kind: 'presented'; readonly scheme: AuthScheme; readonly value: Presented };

/**
 * Turns presented credentials into a verification: a real bearer-token verifier (signature, claims,
 * the issuer's keys) in the server, or given claims taken as verified in the policy tools. Never throws for
 * anything about the credentials; a fault of the service itself may reject.
 */
export interface CredentialVerifier<Presented> {
  verify(presented: Presented): TokenVerification | Promise<TokenVerification>;
  /**
   * Checks what the request presents besides the token (a DPoP proof, the client certificate) against what
   * the core expects of it. Asked only for a verified token, and only when its binding, the scheme used or
   * the route calls for a proof. Never throws for anything about the proofs.
   */
  prove(presented: Presented, request: ProofRequest): PossessionProofs | Promise<PossessionProofs>;
}
