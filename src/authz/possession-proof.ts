import type { DpopProofCode } from './decision.js';
import type { DpopProofPolicy } from '../policy/compiled-policy.js';
import type { VerifiedToken } from './token-verification.js';

/**
 * What a request must prove besides presenting a valid token, asked of the verifier only when the token's
 * binding, the scheme used or the route calls for it (docs/sender-constraints.md).
 */
export interface ProofRequest {
  /** The verified access token the proofs go with (its `cnf`, and for `ath` the verifier's own copy). */
  readonly token: VerifiedToken;
  /** The request method, for `htm`. */
  readonly method: string;
  /**
   * The request's URI as the service's public origins give it: each origin plus the normalised path, no
   * query (RFC 9449 section 4.3, `htu`). A proof must name one of them.
   */
  readonly uris: readonly string[];
  /** The service's name: server nonces are issued per service. */
  readonly service: string;
  /** How to check a DPoP proof, or undefined when none is needed. */
  readonly dpop: DpopProofPolicy | undefined;
  /** Whether the client certificate's thumbprint is needed (a certificate-bound token). */
  readonly certificate: boolean;
  /** The request's `DPoP` header values, as received (`RequestFacts.dpopProofs`). */
  readonly dpopProofs: readonly string[];
  /** The client certificate as the proxy sent it (`RequestFacts.clientCertificate`). */
  readonly clientCertificate: string | undefined;
}

/**
 * What remembering an accepted proof's `jti` found (RFC 9449 section 11.1): new, a replay, over the share of
 * the store its key or subject may hold (the client should slow down), a store full for everyone, or a
 * shared store that could not be asked in time (slow, down, or too busy): nothing is known, so nothing is
 * accepted.
 */
export type ReplayClaim =
  | { readonly kind: 'fresh' }
  | { readonly kind: 'replayed' }
  | { readonly kind: 'over_quota'; readonly share: 'key' | 'subject'; readonly retryAfterSeconds: number }
  | { readonly kind: 'full' }
  | { readonly kind: 'unavailable' };

/** The DPoP proof the request carried, as checked against a `ProofRequest`. */
export type DpopProofCheck =
  | { readonly kind: 'none' }
  /** Every check of RFC 9449 section 4.3 passed but the key binding, which is the core's to compare. */
  | {
      readonly kind: 'valid';
      readonly thumbprint: string;
      /**
       * Remembers the proof's `jti` and says whether it was seen before (section 11.1). The core calls it
       * once, and only once the token's binding holds: a proof refused for any reason uses up nothing.
       */
      claim(): ReplayClaim | Promise<ReplayClaim>;
    }
  | {
      readonly kind: 'invalid';
      readonly code: DpopProofCode;
      readonly description: string;
      /** For the nonce codes: a fresh nonce for the `DPoP-Nonce` header of the answer. */
      readonly nonce?: string;
    };

/** The client certificate the proxy saw on the connection (RFC 8705 section 3). */
export type CertificateCheck =
  | { readonly kind: 'none' }
  /** The base64url SHA-256 of the certificate's DER, to compare with `cnf["x5t#S256"]`. */
  | { readonly kind: 'present'; readonly thumbprint: string }
  | { readonly kind: 'invalid'; readonly description: string };

/** What a request proves of the keys its token is bound to. */
export interface PossessionProofs {
  readonly dpop: DpopProofCheck;
  readonly certificate: CertificateCheck;
}
