import type { AuthScheme } from './auth-scheme.js';

/**
 * Parameters of a `WWW-Authenticate` challenge for an access token, in the order emitted: RFC 6750 section 3
 * for `Bearer`, RFC 9449 section 7.1 for `DPoP` (which adds `algs` and the errors `invalid_dpop_proof` and
 * `use_dpop_nonce`), and `acr_values` and `max_age` from RFC 9470 section 3 for either.
 */
export interface ChallengeParams {
  readonly realm: string;
  readonly error?:
    | 'invalid_request'
    | 'invalid_token'
    | 'insufficient_scope'
    | 'insufficient_user_authentication'
    | 'invalid_dpop_proof'
    | 'use_dpop_nonce';
  readonly error_description?: string;
  readonly scope?: string;
  /** Space-separated acceptable authentication context classes. */
  readonly acr_values?: string;
  /** Seconds, as a decimal string. */
  readonly max_age?: string;
  /** `DPoP` only: the space-separated JWS algorithms accepted for proofs. */
  readonly algs?: string;
}

// RFC 6750 section 3: error, error_description and scope values use %x20-21 / %x23-5B / %x5D-7E only.
const RFC6750_VALUE = /^[\x20\x21\x23-\x5B\x5D-\x7E]*$/;

const ORDER = ['realm', 'error', 'error_description', 'scope', 'acr_values', 'max_age', 'algs'] as const;

/**
 * Formats a challenge: `Bearer realm="bank-api", error="insufficient_scope", scope="a b"`, or
 * `DPoP realm="bank-api", algs="ES256 PS256"`. Every value is a quoted-string; values RFC 6750 restricts are
 * checked rather than escaped, because a client is not required to unescape them.
 *
 * @throws TypeError if a value holds characters RFC 6750 does not allow (a programming error here).
 */
export function authChallenge(scheme: AuthScheme, params: ChallengeParams): string {
  const parts: string[] = [];
  for (const name of ORDER) {
    const value = params[name];
    if (value === undefined) continue;
    if (!RFC6750_VALUE.test(value)) throw new TypeError(`${name} has characters RFC 6750 does not allow`);
    parts.push(`${name}="${value}"`);
  }
  return `${scheme} ${parts.join(', ')}`;
}

/** A `Bearer` challenge (RFC 6750 section 3). */
export function bearerChallenge(params: ChallengeParams): string {
  return authChallenge('Bearer', params);
}
