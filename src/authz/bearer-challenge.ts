/**
 * Parameters of a `WWW-Authenticate: Bearer` challenge (RFC 6750 section 3; `acr_values` and `max_age`
 * from RFC 9470 section 3), in the order emitted.
 */
export interface BearerChallengeParams {
  readonly realm: string;
  readonly error?:
    'invalid_request' | 'invalid_token' | 'insufficient_scope' | 'insufficient_user_authentication';
  readonly error_description?: string;
  readonly scope?: string;
  /** Space-separated acceptable authentication context classes. */
  readonly acr_values?: string;
  /** Seconds, as a decimal string. */
  readonly max_age?: string;
}

// RFC 6750 section 3: error, error_description and scope values use %x20-21 / %x23-5B / %x5D-7E only.
const RFC6750_VALUE = /^[\x20\x21\x23-\x5B\x5D-\x7E]*$/;

/**
 * Formats a Bearer challenge: `Bearer realm="bank-api", error="insufficient_scope", scope="a b"`.
 * Every value is a quoted-string; values RFC 6750 restricts are checked rather than escaped, because a
 * client is not required to unescape them.
 *
 * @throws TypeError if a value holds characters RFC 6750 does not allow (a programming error here).
 */
export function bearerChallenge(params: BearerChallengeParams): string {
  const parts: string[] = [];
  for (const name of ['realm', 'error', 'error_description', 'scope', 'acr_values', 'max_age'] as const) {
    const value = params[name];
    if (value === undefined) continue;
    if (!RFC6750_VALUE.test(value)) throw new TypeError(`${name} has characters RFC 6750 does not allow`);
    parts.push(`${name}="${value}"`);
  }
  return `Bearer ${parts.join(', ')}`;
}
