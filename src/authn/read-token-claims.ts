import type { JWTPayload } from 'jose';
import type { IssuerPolicy } from '../policy/compiled-policy.js';
import { grantedScopes } from './granted-scopes.js';
import type { InvalidTokenReason, TokenVerification } from '../authz/token-verification.js';

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
  return {
    kind: 'verified',
    token: {
      issuer: issuer.issuer,
      subject,
      scopes,
      acr,
      amr: new Set((amr as string[] | undefined) ?? []),
      authTime: authTime as number | undefined,
    },
  };
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
