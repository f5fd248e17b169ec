import type { InvalidTokenReason, VerifiedToken } from './token-verification.js';
import type { CompiledRoute } from '../policy/compiled-policy.js';

/** Why a request was denied: a closed set, mapped to status and challenge in `answer-for-decision.ts`. */
export type DenialCode =
  | 'no_service' // no service claims the request's host (403, no challenge)
  | 'service_unknown' // the proxy named a service the policy does not have: a configuration error (403)
  | 'no_route' // no route matches (403, no challenge)
  | 'path_invalid' // the path cannot be matched safely (400)
  | 'credentials_missing' // no bearer credentials (401, bare challenge)
  | 'credentials_malformed' // RFC 6750 invalid_request (400)
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
  /** The verified token, when the token was valid but not enough (scopes, login). */
  readonly identity?: VerifiedToken;
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
