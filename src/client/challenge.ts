/**
 * One authentication challenge from a `WWW-Authenticate` (or `Proxy-Authenticate`) field value
 * (RFC 9110 section 11.6.1). A challenge carries either a `token68` or auth-params, never both
 * (RFC 9110 section 11.2); with neither, `params` is empty and `token68` absent.
 */
export interface Challenge {
  /** The auth-scheme as sent. Schemes are case-insensitive (RFC 9110 section 11.1): compare accordingly. */
  readonly scheme: string;
  /** The token68 form of the challenge's data, as sent (RFC 9110 section 11.2). */
  readonly token68?: string;
  /**
   * Auth-params by name. Names are lower-cased because they are case-insensitive (RFC 9110 section 11.2);
   * values are as sent, with quoted-strings unquoted and their quoted-pairs unescaped (section 5.6.4).
   * Iteration follows the order of the field value.
   */
  readonly params: ReadonlyMap<string, string>;
}

/** Stable codes for a field value this client will not read. */
export type ChallengeErrorCode =
  | 'ERR_CHALLENGE_SYNTAX' // the value does not follow the grammar of RFC 9110 section 11.6.1
  | 'ERR_CHALLENGE_LIMIT'; // the value is larger than this client reads (length, challenges, params)

/** Why a field value was refused, and where. */
export interface ChallengeParseError {
  readonly code: ChallengeErrorCode;
  /** Zero-based index into the value (UTF-16 code units: bytes, for a header value decoded as latin1). */
  readonly position: number;
  /** For people: says what was expected. May quote the value; never hand it to a shell or HTML unescaped. */
  readonly message: string;
}

/** The outcome of parsing one field value: data, not an exception. */
export type ParseResult =
  | { readonly ok: true; readonly challenges: readonly Challenge[] }
  | { readonly ok: false; readonly error: ChallengeParseError };
