import type { JWTPayload } from 'jose';

// RFC 6749 section 3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E )
const SCOPE_TOKEN = /^[\x21\x23-\x5B\x5D-\x7E]+$/;
const MAX_SCOPES = 256;

/**
 * The scopes a verified token grants: the `scope` claim (RFC 8693 / RFC 9068, a space-separated string),
 * or else `scp` (an array of strings, or a space-separated string, as some providers issue); either claim
 * may be a string or an array of strings. Scopes are
 * compared as exact tokens, never as substrings. Returns undefined when the claim is malformed: a token
 * whose grants cannot be read is refused rather than guessed at.
 */
export function grantedScopes(payload: JWTPayload): ReadonlySet<string> | undefined {
  // A `scope` that is present decides, even when malformed: never fall back to `scp` around a bad value.
  const claim = 'scope' in payload ? payload['scope'] : payload['scp'];
  if (claim === undefined) return new Set();
  let tokens: unknown[];
  if (typeof claim === 'string') tokens = claim.split(' ').filter((token) => token !== '');
  else if (Array.isArray(claim)) tokens = claim;
  else return undefined;
  if (tokens.length > MAX_SCOPES) return undefined;
  const scopes = new Set<string>();
  for (const token of tokens) {
    if (typeof token !== 'string' || !SCOPE_TOKEN.test(token)) return undefined;
    scopes.add(token);
  }
  return scopes;
}
