/** Stable codes for faults in obtaining an issuer's keys. */
export type KeySetErrorCode =
  | 'ERR_JWKS_UNAVAILABLE' // no keys could be obtained and none are cached: answered 503
  | 'ERR_JWKS_FETCH_FAILED'; // one fetch or read failed (logged; cached keys, if any, stay in use)

/** A fault in obtaining keys; never a property of the token presented. */
export class KeySetError extends Error {
  override readonly name = 'KeySetError';
  readonly code: KeySetErrorCode;
  readonly issuer: string;

  constructor(code: KeySetErrorCode, issuer: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.issuer = issuer;
  }
}
