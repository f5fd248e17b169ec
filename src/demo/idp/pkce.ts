import { createHash, timingSafeEqual } from 'node:crypto';

// RFC 7636 section 4.1 (verifier) and 4.2 (S256 challenge): 43 to 128 unreserved characters.
const UNRESERVED_43_TO_128 = /^[A-Za-z0-9._~-]{43,128}$/;

/** Whether `value` has the form of a PKCE code_verifier or code_challenge (RFC 7636). Development only. */
export function isPkceValue(value: string): boolean {
  return UNRESERVED_43_TO_128.test(value);
}

/**
 * Whether `verifier` is well-formed and `BASE64URL(SHA256(verifier))` equals `challenge` (RFC 7636 section
 * 4.6, method S256). The comparison is constant-time so a caller cannot learn the challenge byte by byte.
 * Development only.
 */
export function verifierMatchesChallenge(verifier: string, challenge: string): boolean {
  if (!isPkceValue(verifier)) return false;
  const computed = Buffer.from(createHash('sha256').update(verifier, 'ascii').digest('base64url'));
  const expected = Buffer.from(challenge);
  return computed.length === expected.length && timingSafeEqual(computed, expected);
}
