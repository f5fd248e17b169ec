import type { Decision, Denial, DenialCode } from './decision.js';
import { authChallenge, type ChallengeParams } from './auth-challenge.js';
import type { AuthScheme } from './auth-scheme.js';
import { IDENTITY_HEADERS } from '../contract/identity-headers.js';
import type { AcceptedSchemes, ClaimHeader } from '../policy/compiled-policy.js';

/** What the proxy should do with the request, independent of the proxy's API. */
export type Answer =
  | {
      readonly kind: 'allow';
      /** Set on the upstream request, replacing any value the client sent. */
      readonly setHeaders: readonly (readonly [string, string])[];
      /** Removed from the upstream request. */
      readonly removeHeaders: readonly string[];
    }
  | {
      readonly kind: 'deny';
      readonly status: number;
      readonly headers: readonly (readonly [string, string])[];
      /** JSON: `{"error": ..., "error_description": ...}`. */
      readonly body: string;
    };

/** The headers of a denial answer. */
export type DenialHeaders = Extract<Answer, { kind: 'deny' }>['headers'];

type ChallengeError = NonNullable<ChallengeParams['error']>;

interface DenialRow {
  readonly status: number;
  /** The `error` member of the JSON body. */
  readonly bodyError: string;
  /** Whether to challenge (401, 403 insufficient_scope, 400 invalid_request), and with which error. */
  readonly challenge: 'none' | 'bare' | ChallengeError;
}

const INVALID_TOKEN: DenialRow = { status: 401, bodyError: 'invalid_token', challenge: 'invalid_token' };
// RFC 9449 section 7.1: a proof that fails any check of section 4.3.
const INVALID_DPOP_PROOF: DenialRow = {
  status: 401,
  bodyError: 'invalid_dpop_proof',
  challenge: 'invalid_dpop_proof',
};
// RFC 9449 section 9: the resource server requires a nonce; the answer carries one in `DPoP-Nonce`.
const USE_DPOP_NONCE: DenialRow = { status: 401, bodyError: 'use_dpop_nonce', challenge: 'use_dpop_nonce' };

/** The one table from denial code to HTTP answer (RFC 6750 section 3.1 for the challenge errors). */
const DENIALS: Readonly<Record<DenialCode, DenialRow>> = {
  no_service: { status: 403, bodyError: 'access_denied', challenge: 'none' },
  service_unknown: { status: 403, bodyError: 'access_denied', challenge: 'none' },
  // Retryable, like keys_unavailable: the team's next good save serves it (docs/policy.md, "A policy directory").
  service_unavailable: { status: 503, bodyError: 'temporarily_unavailable', challenge: 'none' },
  no_route: { status: 403, bodyError: 'access_denied', challenge: 'none' },
  path_invalid: { status: 400, bodyError: 'invalid_request', challenge: 'none' },
  credentials_missing: { status: 401, bodyError: 'unauthorized', challenge: 'bare' },
  credentials_malformed: { status: 400, bodyError: 'invalid_request', challenge: 'invalid_request' },
  // RFC 6750 section 3.1: a request with no usable authentication information gets no error code.
  scheme_not_accepted: { status: 401, bodyError: 'unauthorized', challenge: 'bare' },
  dpop_proof_missing: INVALID_DPOP_PROOF,
  dpop_proof_multiple: INVALID_DPOP_PROOF,
  dpop_proof_malformed: INVALID_DPOP_PROOF,
  dpop_proof_type_invalid: INVALID_DPOP_PROOF,
  dpop_proof_algorithm_not_allowed: INVALID_DPOP_PROOF,
  dpop_proof_key_invalid: INVALID_DPOP_PROOF,
  dpop_proof_signature_invalid: INVALID_DPOP_PROOF,
  dpop_proof_claims_invalid: INVALID_DPOP_PROOF,
  dpop_proof_method_mismatch: INVALID_DPOP_PROOF,
  dpop_proof_uri_mismatch: INVALID_DPOP_PROOF,
  dpop_proof_expired: INVALID_DPOP_PROOF,
  dpop_proof_issued_in_future: INVALID_DPOP_PROOF,
  dpop_proof_token_hash_mismatch: INVALID_DPOP_PROOF,
  dpop_proof_replayed: INVALID_DPOP_PROOF,
  dpop_nonce_missing: USE_DPOP_NONCE,
  dpop_nonce_invalid: USE_DPOP_NONCE,
  // RFC 6585 section 4: this client is over its share of the replay store; its answer says when to retry.
  dpop_proof_quota_exceeded: { status: 429, bodyError: 'too_many_requests', challenge: 'none' },
  dpop_replay_cache_full: { status: 503, bodyError: 'temporarily_unavailable', challenge: 'none' },
  dpop_replay_store_unavailable: { status: 503, bodyError: 'temporarily_unavailable', challenge: 'none' },
  // A valid token used without the proof its binding demands is not a valid credential for this request
  // (RFC 9449 section 7.2 shows invalid_token for a DPoP-bound token sent as Bearer).
  binding_dpop_scheme_required: INVALID_TOKEN,
  binding_token_not_dpop_bound: INVALID_TOKEN,
  binding_dpop_key_mismatch: INVALID_TOKEN,
  binding_certificate_missing: INVALID_TOKEN,
  binding_certificate_invalid: INVALID_TOKEN,
  binding_certificate_mismatch: INVALID_TOKEN,
  binding_not_accepted: INVALID_TOKEN,
  binding_required: INVALID_TOKEN,
  token_too_large: INVALID_TOKEN,
  token_malformed: INVALID_TOKEN,
  token_issuer_unknown: INVALID_TOKEN,
  token_algorithm_not_allowed: INVALID_TOKEN,
  token_key_unknown: INVALID_TOKEN,
  token_signature_invalid: INVALID_TOKEN,
  token_expired: INVALID_TOKEN,
  token_not_yet_valid: INVALID_TOKEN,
  token_audience_mismatch: INVALID_TOKEN,
  token_type_invalid: INVALID_TOKEN,
  token_claims_invalid: INVALID_TOKEN,
  token_lifetime_exceeded: INVALID_TOKEN,
  token_issued_in_future: INVALID_TOKEN,
  insufficient_scope: { status: 403, bodyError: 'insufficient_scope', challenge: 'insufficient_scope' },
  insufficient_user_authentication: {
    status: 401,
    bodyError: 'insufficient_user_authentication',
    challenge: 'insufficient_user_authentication',
  },
  keys_unavailable: { status: 503, bodyError: 'temporarily_unavailable', challenge: 'none' },
};

/** The HTTP status a denial code is answered with. */
export function statusForDenial(code: DenialCode): number {
  return DENIALS[code].status;
}

/**
 * Turns a decision into what the client or the upstream sees. Pure.
 *
 * @param claimHeaders the service's `claim_headers`: on allow, each is set from the verified claim, or
 *   removed (any client copy) when the token has none.
 * @param dpopAlgorithms the service's DPoP proof algorithms, for the `algs` of `DPoP` challenges.
 * @param foreignClaimHeaders the headers other services map claims to and this one does not: removed on
 *   allow, whatever the client sent.
 */
export function answerForDecision(
  decision: Decision,
  realm: string,
  claimHeaders: readonly ClaimHeader[] = [],
  dpopAlgorithms: readonly string[] = [],
  foreignClaimHeaders: readonly string[] = [],
): Answer {
  if (decision.kind === 'allow') {
    const set: [string, string][] = [];
    const remove: string[] = [];
    const { identity } = decision;
    // Overwriting replaces every client copy; where there is nothing to set, remove instead.
    if (identity?.subject !== undefined) set.push([IDENTITY_HEADERS.subject, identity.subject]);
    else remove.push(IDENTITY_HEADERS.subject);
    // Envoy drops empty header values, which would leave a client's copy standing: remove instead.
    if (identity !== undefined && identity.scopes.size > 0) {
      set.push([IDENTITY_HEADERS.scopes, [...identity.scopes].join(' ')]);
    } else {
      remove.push(IDENTITY_HEADERS.scopes);
    }
    for (const { claim, header } of claimHeaders) {
      // Values no header may carry never get here: the service refused the token (service-trust.ts).
      const value = identity?.headerClaims.get(claim);
      if (value !== undefined && value !== '') set.push([header, value]);
      else remove.push(header);
    }
    // Other services' claim headers never reach this upstream as a client wrote them.
    remove.push(...foreignClaimHeaders);
    return { kind: 'allow', setHeaders: set, removeHeaders: remove };
  }
  return denialAnswer(decision, denialHeaders(decision, realm, dpopAlgorithms));
}

/** The schemes of a route that predates sender constraints, or of a denial without a route. */
const BEARER_ONLY: AcceptedSchemes = Object.freeze({ bearer: true, dpop: false });

/**
 * The headers `answerForDecision` gives a denial. For `insufficient_scope` they depend on the realm, the
 * route's schemes, the scheme used and the required scopes alone, so they can be built once per route
 * (`prepared-outcomes.ts`).
 *
 * Challenges (RFC 9449 section 7.1): the error goes under the scheme the client used when the route accepts
 * it, else under the first the route accepts (a DPoP proof's errors always under `DPoP`); every other scheme
 * the route accepts gets a bare challenge of its own, as its own header line. A `DPoP` challenge names the
 * proof algorithms (`algs`).
 */
export function denialHeaders(
  decision: Denial,
  realm: string,
  dpopAlgorithms: readonly string[] = [],
): DenialHeaders {
  const row = DENIALS[decision.code];
  const headers: [string, string][] = [
    ['content-type', 'application/json'],
    ['cache-control', 'no-store'],
  ];
  if (decision.retryAfterSeconds !== undefined) {
    headers.push(['retry-after', String(Math.max(1, Math.ceil(decision.retryAfterSeconds)))]);
  }
  if (row.challenge === 'none') return headers;
  const schemes = decision.route?.schemes ?? BEARER_ONLY;
  const accepted: AuthScheme[] = [];
  if (schemes.bearer || !schemes.dpop) accepted.push('Bearer');
  if (schemes.dpop) accepted.push('DPoP');
  const algs = dpopAlgorithms.length > 0 ? dpopAlgorithms.join(' ') : undefined;
  const challenge = (scheme: AuthScheme, params: ChallengeParams): string =>
    authChallenge(scheme, scheme === 'DPoP' && algs !== undefined ? { ...params, algs } : params);

  if (row.challenge === 'bare') {
    for (const scheme of accepted) headers.push(['www-authenticate', challenge(scheme, { realm })]);
    return headers;
  }
  const proofError = row.challenge === 'invalid_dpop_proof' || row.challenge === 'use_dpop_nonce';
  const used = decision.scheme;
  const errorScheme: AuthScheme = proofError
    ? 'DPoP'
    : used !== undefined && accepted.includes(used)
      ? used
      : (accepted[0] ?? 'Bearer');
  headers.push(['www-authenticate', challenge(errorScheme, errorParams(decision, row.challenge, realm))]);
  for (const scheme of accepted) {
    if (scheme !== errorScheme) headers.push(['www-authenticate', challenge(scheme, { realm })]);
  }
  if (row.challenge === 'use_dpop_nonce' && decision.dpopNonce !== undefined) {
    headers.push(['dpop-nonce', decision.dpopNonce]);
  }
  return headers;
}

/** The parameters of the challenge that carries a denial's error. */
function errorParams(decision: Denial, error: ChallengeError, realm: string): ChallengeParams {
  if (error === 'insufficient_scope') {
    // The exact form clients step up from: the route's required scopes, nothing else.
    return { realm, error, scope: (decision.requiredScopes ?? []).join(' ') };
  }
  if (error === 'insufficient_user_authentication') {
    // RFC 9470 section 3: what the client should ask the authorization server for.
    const { acrValues, maxAgeSeconds } = decision.stepUp ?? {};
    return {
      realm,
      error,
      error_description: decision.description,
      ...(acrValues === undefined ? {} : { acr_values: acrValues.join(' ') }),
      ...(maxAgeSeconds === undefined ? {} : { max_age: String(maxAgeSeconds) }),
    };
  }
  return { realm, error, error_description: decision.description };
}

/** The answer to a denial, with the headers `denialHeaders` gives it: its status and JSON body added. */
export function denialAnswer(decision: Denial, headers: DenialHeaders): Answer {
  const row = DENIALS[decision.code];
  const body = JSON.stringify({ error: row.bodyError, error_description: decision.description });
  return { kind: 'deny', status: row.status, headers, body };
}
