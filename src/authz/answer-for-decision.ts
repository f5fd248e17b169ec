import type { Decision, Denial, DenialCode } from './decision.js';
import { bearerChallenge, type BearerChallengeParams } from './bearer-challenge.js';
import { IDENTITY_HEADERS } from '../contract/identity-headers.js';
import type { ClaimHeader } from '../policy/compiled-policy.js';

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

type ChallengeError = BearerChallengeParams['error'];

interface DenialRow {
  readonly status: number;
  /** The `error` member of the JSON body. */
  readonly bodyError: string;
  /** Whether to challenge (401, 403 insufficient_scope, 400 invalid_request), and with which error. */
  readonly challenge: 'none' | 'bare' | ChallengeError;
}

const INVALID_TOKEN: DenialRow = { status: 401, bodyError: 'invalid_token', challenge: 'invalid_token' };

/** The one table from denial code to HTTP answer (RFC 6750 section 3.1 for the challenge errors). */
const DENIALS: Readonly<Record<DenialCode, DenialRow>> = {
  no_service: { status: 403, bodyError: 'access_denied', challenge: 'none' },
  service_unknown: { status: 403, bodyError: 'access_denied', challenge: 'none' },
  no_route: { status: 403, bodyError: 'access_denied', challenge: 'none' },
  path_invalid: { status: 400, bodyError: 'invalid_request', challenge: 'none' },
  credentials_missing: { status: 401, bodyError: 'unauthorized', challenge: 'bare' },
  credentials_malformed: { status: 400, bodyError: 'invalid_request', challenge: 'invalid_request' },
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
 */
export function answerForDecision(
  decision: Decision,
  realm: string,
  claimHeaders: readonly ClaimHeader[] = [],
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
    return { kind: 'allow', setHeaders: set, removeHeaders: remove };
  }
  return denialAnswer(decision, denialHeaders(decision, realm));
}

/**
 * The headers `answerForDecision` gives a denial. For `insufficient_scope` they depend on the realm and the
 * required scopes alone, so they can be built once per route (`prepared-outcomes.ts`).
 */
export function denialHeaders(decision: Denial, realm: string): DenialHeaders {
  const row = DENIALS[decision.code];
  const headers: [string, string][] = [
    ['content-type', 'application/json'],
    ['cache-control', 'no-store'],
  ];
  if (row.challenge === 'bare') {
    headers.push(['www-authenticate', bearerChallenge({ realm })]);
  } else if (row.challenge === 'insufficient_scope') {
    // The exact form clients step up from: the route's required scopes, nothing else.
    const scope = (decision.requiredScopes ?? []).join(' ');
    headers.push(['www-authenticate', bearerChallenge({ realm, error: 'insufficient_scope', scope })]);
  } else if (row.challenge === 'insufficient_user_authentication') {
    // RFC 9470 section 3: what the client should ask the authorization server for.
    const { acrValues, maxAgeSeconds } = decision.stepUp ?? {};
    headers.push([
      'www-authenticate',
      bearerChallenge({
        realm,
        error: 'insufficient_user_authentication',
        error_description: decision.description,
        ...(acrValues === undefined ? {} : { acr_values: acrValues.join(' ') }),
        ...(maxAgeSeconds === undefined ? {} : { max_age: String(maxAgeSeconds) }),
      }),
    ]);
  } else if (row.challenge !== 'none') {
    headers.push([
      'www-authenticate',
      bearerChallenge({ realm, error: row.challenge, error_description: decision.description }),
    ]);
  }
  return headers;
}

/** The answer to a denial, with the headers `denialHeaders` gives it: its status and JSON body added. */
export function denialAnswer(decision: Denial, headers: DenialHeaders): Answer {
  const row = DENIALS[decision.code];
  const body = JSON.stringify({ error: row.bodyError, error_description: decision.description });
  return { kind: 'deny', status: row.status, headers, body };
}
