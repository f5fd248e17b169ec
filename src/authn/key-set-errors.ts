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

/** Stable codes for why one read of a key set (or its discovery document) failed, past the connection. */
export type KeySetReadErrorCode =
  | 'ERR_JWKS_TIMEOUT' // the whole read did not end within its time budget
  | 'ERR_JWKS_STATUS' // the server answered another HTTP status than 200
  | 'ERR_JWKS_BODY'; // the answer is not JSON, not a key set (or discovery document), too large, or has no usable key

/** A read that reached the server (or file) but did not bring a key set; `status` for `ERR_JWKS_STATUS`. */
export class KeySetReadError extends Error {
  override readonly name = 'KeySetReadError';
  readonly code: KeySetReadErrorCode;
  readonly status: number | undefined;

  constructor(code: KeySetReadErrorCode, message: string, status?: number) {
    super(message);
    this.code = code;
    this.status = status;
  }
}
