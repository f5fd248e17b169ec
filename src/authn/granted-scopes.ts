import type { JWTPayload } from 'jose';

// RFC 6749 section 3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E )
const SCOPE_TOKEN = /^[\x21\x23-\x5B\x5D-\x7E]+$/;
const MAX_SCOPES = 256;

/**
 * The scopes a verified token grants: the union of the given claims (by default `scope` then `scp`), each
 * a space-separated string (RFC 8693 section 4.2, RFC 9068 section 2.2.3) or an array of strings (as Okta's
 * `scp` and Auth0's `permissions` are). Scopes are compared as exact tokens, never as substrings. Returns
 * undefined when any of the claims is present but malformed: a token whose grants cannot be read is
 * refused rather than guessed at.
 */
export function grantedScopes(
  payload: JWTPayload,
  claimNames: readonly string[] = ['scope', 'scp'],
): ReadonlySet<string> | undefined {
  const scopes = new Set<string>();
  for (const name of claimNames) {
    // Own properties only: a claim named like an inherited property (`constructor`) is simply absent.
    if (!Object.hasOwn(payload, name)) continue;
    const claim = payload[name];
    let tokens: unknown[];
    if (typeof claim === 'string') tokens = claim.split(' ').filter((token) => token !== '');
    else if (Array.isArray(claim)) tokens = claim;
    else return undefined;
    if (tokens.length > MAX_SCOPES) return undefined;
    for (const token of tokens) {
      if (typeof token !== 'string' || !SCOPE_TOKEN.test(token)) return undefined;
      scopes.add(token);
    }
    if (scopes.size > MAX_SCOPES) return undefined;
  }
  return scopes;
}
