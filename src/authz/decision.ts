import type { AuthScheme } from './auth-scheme.js';
import type { InvalidTokenReason, VerifiedToken } from './token-verification.js';
import type { CompiledRoute } from '../policy/compiled-policy.js';

/** Why a DPoP proof was refused (RFC 9449 section 4.3): 401 `invalid_dpop_proof`, or `use_dpop_nonce`. */
export type DpopProofCode =
  | 'dpop_proof_missing'
  | 'dpop_proof_multiple'
  | 'dpop_proof_malformed'
  | 'dpop_proof_type_invalid'
  | 'dpop_proof_algorithm_not_allowed'
  | 'dpop_proof_key_invalid'
  | 'dpop_proof_signature_invalid'
  | 'dpop_proof_claims_invalid'
  | 'dpop_proof_method_mismatch'
  | 'dpop_proof_uri_mismatch'
  | 'dpop_proof_expired'
  | 'dpop_proof_issued_in_future'
  | 'dpop_proof_token_hash_mismatch'
  | 'dpop_proof_replayed'
  /** The service requires a server nonce: 401 `use_dpop_nonce` with a `DPoP-Nonce` (RFC 9449 section 8). */
  | 'dpop_nonce_missing'
  | 'dpop_nonce_invalid'
  /**
   * The proof's key or subject already holds its share of the replay store (`dpop.replay_cache_per_key`,
   * `per_subject`): that client is refused with 429 and `Retry-After` (RFC 6585 section 4) while every
   * other client keeps its own share.
   */
  | 'dpop_proof_quota_exceeded'
  /** The replay store is full of unexpired entries: refused rather than risk a replay (503). */
  | 'dpop_replay_cache_full'
  /**
   * The shared replay store (`dpop.replay_store: {type: redis}`) did not answer within its `timeout`, is
   * disconnected or has too many commands in flight, and no `fallback: local` is set: refused rather than
   * accept a proof unchecked (503).
   */
  | 'dpop_replay_store_unavailable';

/** Why a verified token may not be used as presented: its binding (RFC 9449, RFC 8705). 401 `invalid_token`. */
export type BindingCode =
  | 'binding_dpop_scheme_required' // a DPoP-bound token sent as Bearer (RFC 9449 section 7.2)
  | 'binding_token_not_dpop_bound' // the DPoP scheme with a token that has no cnf.jkt
  | 'binding_dpop_key_mismatch' // the proof's key is not the one the token is bound to
  | 'binding_certificate_missing'
  | 'binding_certificate_invalid'
  | 'binding_certificate_mismatch'
  | 'binding_not_accepted' // bound in a way the route sets off
  | 'binding_required'; // the route requires a binding the token lacks

/** Why a request was denied: a closed set, mapped to status and challenge in `answer-for-decision.ts`. */
export type DenialCode =
  | 'no_service' // no service claims the request's host (403, no challenge)
  | 'service_unknown' // the proxy named a service the policy does not have: a configuration error (403)
  | 'service_unavailable' // the service's policy file is refused with no version in force (503, a directory)
  | 'no_route' // no route matches (403, no challenge)
  | 'path_invalid' // the path cannot be matched safely (400)
  | 'credentials_missing' // no bearer credentials (401, bare challenge)
  | 'credentials_malformed' // RFC 6750 invalid_request (400)
  | 'scheme_not_accepted' // a scheme the route does not accept (401, the challenges of those it does)
  | DpopProofCode
  | BindingCode
  | InvalidTokenReason // RFC 6750 invalid_token (401)
  | 'insufficient_scope' // RFC 6750 insufficient_scope (403)
  | 'insufficient_user_authentication' // RFC 9470: the login is too weak or too old (401)
  | 'keys_unavailable'; // the issuer's keys cannot be obtained (503)

/** A denial: what was refused and why. */
export interface Denial {
  readonly kind: 'deny';
  readonly code: DenialCode;
  /** Human-readable, safe to send to the client: never echoes the token or claims. */
  readonly description: string;
  readonly route?: CompiledRoute;
  /** For `insufficient_scope`: the route's required scopes, and which of them the token lacks. */
  readonly requiredScopes?: readonly string[];
  readonly missingScopes?: readonly string[];
  /** For `insufficient_user_authentication`: what to ask the identity provider for (RFC 9470 section 3). */
  readonly stepUp?: { readonly acrValues?: readonly string[]; readonly maxAgeSeconds?: number };
  readonly issuer?: string;
  readonly subject?: string;
  /** The verified token, when the token was valid but not enough (scopes, login, binding). */
  readonly identity?: VerifiedToken;
  /**
   * The scheme the client presented its token with, once it presented one: the challenge's error is given
   * under it when the route accepts it (RFC 9449 section 7.1).
   */
  readonly scheme?: AuthScheme;
  /** For `use_dpop_nonce`: the nonce the answer's `DPoP-Nonce` header carries (RFC 9449 section 8). */
  readonly dpopNonce?: string;
  /** For `dpop_proof_quota_exceeded`: the answer's `Retry-After`, in seconds (RFC 9110 section 10.2.3). */
  readonly retryAfterSeconds?: number;
}

/** The outcome of authorising one request; data, not an error. */
export type Decision =
  | {
      readonly kind: 'allow';
      readonly route: CompiledRoute | undefined;
      /** Present when a token was verified (protected routes). */
      readonly identity?: VerifiedToken;
      /** Set when a report-only rule would have denied: the request is allowed, the denial logged. */
      readonly wouldDeny?: Denial;
    }
  | Denial;
