/** Why a presented token was refused. Each maps to 401 `invalid_token`. */
export type InvalidTokenReason =
  | 'token_too_large'
  | 'token_malformed'
  | 'token_issuer_unknown'
  | 'token_algorithm_not_allowed'
  | 'token_key_unknown'
  | 'token_signature_invalid'
  | 'token_expired'
  | 'token_not_yet_valid'
  | 'token_audience_mismatch'
  | 'token_type_invalid'
  | 'token_claims_invalid'
  /** `exp - iat` (or `exp - now` without `iat`) beyond the issuer's `max_token_lifetime`. */
  | 'token_lifetime_exceeded'
  /** `iat` later than now, beyond the clock tolerance. */
  | 'token_issued_in_future';

/** What verification established about a token whose signature and claims checked out. */
export interface VerifiedToken {
  readonly issuer: string;
  /** `sub`, when the token has one. Checked to be safe to put in a header. */
  readonly subject: string | undefined;
  /** Granted scopes, from the issuer's scope claims (by default `scope` and `scp`). */
  readonly scopes: ReadonlySet<string>;
  /** Authentication context class reference (`acr`, OIDC Core section 2), if the token has one. */
  readonly acr: string | undefined;
  /** Authentication methods (`amr`, RFC 8176); empty when the token has none. */
  readonly amr: ReadonlySet<string>;
  /** When the user authenticated (`auth_time`), in seconds since the epoch, if the token says. */
  readonly authTime: number | undefined;
  /** The token's `aud`: each service accepts tokens meant for its own audiences only. */
  readonly audiences: ReadonlySet<string>;
  /**
   * The claims some service passes on in a header (`claim_headers`), by name: the value as sent, or
   * undefined for a claim present with a value no header may carry. An absent claim has no entry.
   */
  readonly headerClaims: ReadonlyMap<string, string | undefined>;
  /**
   * What the token is bound to (`cnf`, RFC 7800): the RFC 7638 thumbprint of a DPoP key (`jkt`, RFC 9449
   * section 6) and the SHA-256 thumbprint of a client certificate (`x5t#S256`, RFC 8705 section 3.1), each
   * base64url. Empty for a bearer token.
   */
  readonly confirmation: Confirmation;
}

/** A token's `cnf` members this service checks; absent members are not bound. */
export interface Confirmation {
  readonly jkt?: string;
  readonly x5tS256?: string;
}

/** The outcome of verifying one bearer token. Faults are data here too: the caller decides the answer. */
export type TokenVerification =
  | { readonly kind: 'verified'; readonly token: VerifiedToken }
  | { readonly kind: 'invalid'; readonly reason: InvalidTokenReason; readonly description: string }
  /** The issuer's keys could not be obtained (none cached): not the client's fault, answered 503. */
  | { readonly kind: 'keys_unavailable'; readonly issuer: string };
