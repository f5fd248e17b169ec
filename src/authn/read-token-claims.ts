import type { JWTPayload } from 'jose';
import type { IssuerPolicy } from '../policy/compiled-policy.js';
import { grantedScopes } from './granted-scopes.js';
import type { Confirmation, InvalidTokenReason, TokenVerification } from '../authz/token-verification.js';

const invalid = (reason: InvalidTokenReason, description: string): TokenVerification => ({
  kind: 'invalid',
  reason,
  description,
});

/**
 * Reads what this service relies on from the claims of a token whose signature, issuer, audience and times
 * have been verified: subject, scopes and the login claims, per the issuer's claim names. Pure. Also used
 * by `authz explain --claims`, where claims are given rather than verified.
 */
export function readTokenClaims(payload: JWTPayload, issuer: IssuerPolicy): TokenVerification {
  const subject = payload.sub;
  if (subject !== undefined && (typeof subject !== 'string' || !isHeaderSafe(subject))) {
    return invalid('token_claims_invalid', 'the sub claim is not a usable subject');
  }
  const { claims } = issuer;
  const scopes = grantedScopes(payload, claims.scopes);
  if (scopes === undefined) return invalid('token_claims_invalid', 'the scope claim is malformed');
  // Login claims are optional, but when present they must have their standard shapes (OIDC Core section 2).
  const acr = ownClaim(payload, claims.acr);
  if (acr !== undefined && typeof acr !== 'string')
    return invalid('token_claims_invalid', 'the acr claim is malformed');
  const amr = ownClaim(payload, claims.amr);
  if (
    amr !== undefined &&
    !(Array.isArray(amr) && amr.length <= 32 && amr.every((m) => typeof m === 'string'))
  ) {
    return invalid('token_claims_invalid', 'the amr claim is malformed');
  }
  const authTime = ownClaim(payload, claims.authTime);
  if (
    authTime !== undefined &&
    !(typeof authTime === 'number' && Number.isFinite(authTime) && authTime >= 0)
  ) {
    return invalid('token_claims_invalid', 'the auth_time claim is malformed');
  }
  const aud = payload.aud;
  const audiences = aud === undefined ? [] : typeof aud === 'string' ? [aud] : aud;
  if (!Array.isArray(audiences) || audiences.length > 32 || !audiences.every((a) => typeof a === 'string')) {
    return invalid('token_claims_invalid', 'the aud claim is malformed');
  }
  const confirmation = readConfirmation(payload);
  if (confirmation === undefined) {
    return invalid('token_claims_invalid', 'the cnf claim binds the token in a way this API cannot check');
  }
  return {
    kind: 'verified',
    token: {
      issuer: issuer.issuer,
      subject,
      scopes,
      acr,
      amr: new Set((amr as string[] | undefined) ?? []),
      authTime: authTime as number | undefined,
      audiences: new Set(audiences),
      headerClaims: headerClaimValues(payload, issuer.headerClaims),
      confirmation,
    },
  };
}

const UNBOUND: Confirmation = Object.freeze({});

// A base64url SHA-256 digest: 32 bytes are 43 characters, the last one of a restricted set (RFC 4648 section 5).
const SHA256_BASE64URL = /^[A-Za-z0-9_-]{42}[AEIMQUYcgkosw048]$/;

/**
 * The token's binding (`cnf`, RFC 7800 section 3.1), or undefined when it cannot be used: a `cnf` that is not
 * an object, a `jkt` (RFC 9449 section 6.1) or `x5t#S256` (RFC 8705 section 3.1) that is not a SHA-256
 * thumbprint, or a `cnf` with neither (e.g. `jwk` or `kid` only). A binding this API cannot check is refused
 * rather than ignored: ignoring it would turn a sender-constrained token back into a bearer token.
 */
function readConfirmation(payload: JWTPayload): Confirmation | undefined {
  if (!Object.hasOwn(payload, 'cnf')) return UNBOUND;
  const cnf = payload['cnf'];
  if (typeof cnf !== 'object' || cnf === null || Array.isArray(cnf)) return undefined;
  const members = cnf as Record<string, unknown>;
  const jkt = Object.hasOwn(members, 'jkt') ? members['jkt'] : undefined;
  const x5t = Object.hasOwn(members, 'x5t#S256') ? members['x5t#S256'] : undefined;
  if (jkt === undefined && x5t === undefined) return undefined;
  if (jkt !== undefined && !(typeof jkt === 'string' && SHA256_BASE64URL.test(jkt))) return undefined;
  if (x5t !== undefined && !(typeof x5t === 'string' && SHA256_BASE64URL.test(x5t))) return undefined;
  return Object.freeze({
    ...(jkt === undefined ? {} : { jkt: jkt as string }),
    ...(x5t === undefined ? {} : { x5tS256: x5t as string }),
  });
}

const NO_HEADER_CLAIMS: ReadonlyMap<string, string | undefined> = new Map();

/**
 * The claims some service passes on in a header: a string as it is, a finite number or a boolean as JSON
 * writes it, each only if a header can carry it unchanged (`isHeaderSafe`); any other value (an object, an
 * array, control characters, non-ASCII) is recorded as undefined, and a service mapping it refuses the
 * token rather than mangling the value.
 */
function headerClaimValues(
  payload: JWTPayload,
  names: readonly string[],
): ReadonlyMap<string, string | undefined> {
  if (names.length === 0) return NO_HEADER_CLAIMS;
  const values = new Map<string, string | undefined>();
  for (const name of names) {
    if (!Object.hasOwn(payload, name)) continue;
    const value = payload[name];
    const text =
      typeof value === 'string'
        ? value
        : (typeof value === 'number' && Number.isFinite(value)) || typeof value === 'boolean'
          ? String(value)
          : undefined;
    values.set(name, text !== undefined && isHeaderSafe(text) ? text : undefined);
  }
  return values;
}

/**
 * Refuses a token whose times this API does not accept beyond what jwtVerify checks (`exp`, `nbf`): one
 * issued in the future (`iat` later than now), or one that lives longer than the issuer's
 * `max_token_lifetime` (`exp - iat`, or `exp - now` without `iat`). Both are allowed the issuer's clock
 * tolerance, as `exp` and `nbf` are. Pure; for claims jwtVerify accepted (so `exp` and any `iat` are
 * numbers), at the same instant it verified them.
 *
 * A long-lived token cannot be revoked in time, and RFC 8725 section 3.10 asks that `exp` be checked
 * against what the recipient accepts; an `iat` in the future means a clock or an issuer gone wrong.
 *
 * @param nowSeconds seconds since the epoch, as jwtVerify used.
 * @returns the refusal, or undefined when the token's times are acceptable.
 */
export function checkTokenLifetime(
  payload: JWTPayload,
  issuer: IssuerPolicy,
  nowSeconds: number,
): TokenVerification | undefined {
  const tolerance = issuer.clockToleranceSeconds;
  const { exp, iat } = payload;
  if (typeof iat === 'number' && iat > nowSeconds + tolerance) {
    return invalid('token_issued_in_future', 'the token was issued in the future');
  }
  if (typeof exp !== 'number') return undefined; // jwtVerify requires exp; nothing to measure without it
  const lifetime = exp - (typeof iat === 'number' ? iat : nowSeconds);
  if (lifetime > issuer.maxTokenLifetimeSeconds + tolerance) {
    return invalid('token_lifetime_exceeded', "the token's lifetime is longer than this API accepts");
  }
  return undefined;
}

// Visible ASCII with inner spaces, at most 1024 characters. HTTP header values are ASCII in practice
// (RFC 9110 section 5.5 calls other bytes obsolete): a UTF-8 subject would reach Node or Java upstreams
// garbled, and outer white space is trimmed in transit, so either could name someone else.
const HEADER_SAFE = /^[\x21-\x7E](?:[\x20-\x7E]{0,1022}[\x21-\x7E])?$/;

/** A claim copied into a request header must survive the trip unchanged. */
function isHeaderSafe(value: string): boolean {
  return HEADER_SAFE.test(value);
}

/** A claim the token itself carries; never a property inherited from Object.prototype. */
function ownClaim(payload: JWTPayload, name: string): unknown {
  return Object.hasOwn(payload, name) ? payload[name] : undefined;
}
