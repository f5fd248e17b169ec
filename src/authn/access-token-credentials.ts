import type { Credentials } from '../authz/credentials.js';

/**
 * What the `Authorization` header of a request holds, as far as access tokens go: RFC 6750 `Bearer` or
 * RFC 9449 `DPoP` (section 7.1), which share the token68 syntax.
 * - `none`: no credentials, or credentials of another scheme (answered with a bare challenge);
 * - `malformed`: an attempt at credentials that does not follow RFC 6750 section 2.1 (400);
 * - `presented`: one syntactically valid access token and the scheme it came with, not yet verified.
 */
export type AccessTokenCredentials = Credentials<string>;

// RFC 6750 section 2.1: b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
const B64TOKEN = /^[A-Za-z0-9\-._~+/]+=*$/;
// RFC 9110 section 11.1: the auth-scheme is case-insensitive.
const SCHEME_PREFIX = /^(bearer|dpop)(?:[ \t]+|$)/i;
// Two joined headers: a comma and then one of the schemes.
const JOINED_SCHEME = /,\s*(?:bearer|dpop)(?:[ \t]|$)/i;

/**
 * Reads bearer credentials from the values of the request's `Authorization` header. Only this header is
 * a token source: query parameters and bodies (RFC 6750 sections 2.2 and 2.3) are never looked at.
 *
 * @param values every value the request carried for `Authorization`, in order (Envoy may also have
 *   joined repeated headers into one value with commas, which is detected too).
 */
export function readAccessTokenCredentials(values: readonly string[]): AccessTokenCredentials {
  if (values.length === 0) return { kind: 'none' };
  if (values.length > 1) return { kind: 'malformed', description: 'more than one Authorization header' };
  const value = (values[0] ?? '').trim();
  if (value === '') return { kind: 'none' };

  const prefix = SCHEME_PREFIX.exec(value);
  if (prefix === null) {
    // Another scheme. A comma followed by one of ours means two headers were joined: ambiguous, refused.
    return JOINED_SCHEME.test(value)
      ? { kind: 'malformed', description: 'more than one Authorization header' }
      : { kind: 'none' };
  }
  const scheme = (prefix[1] ?? '').toLowerCase() === 'dpop' ? 'DPoP' : 'Bearer';
  const malformed = (description: string): AccessTokenCredentials => ({
    kind: 'malformed',
    scheme,
    description,
  });
  const noun = scheme === 'DPoP' ? 'DPoP access token' : 'bearer token';
  // RFC 9110 section 11.3 (credentials = auth-scheme [ 1*SP token68 ]) and RFC 6750 section 2.1: spaces
  // only between the scheme and the token, never a tab.
  if (prefix[0].includes('\t')) return malformed(`only spaces may separate ${scheme} and the token`);
  const token = value.slice(prefix[0].length);
  if (token === '') return malformed(`the ${scheme} scheme needs a token`);
  if (token.includes(',')) return malformed('more than one Authorization header');
  if (/\s/.test(token)) return malformed(`the ${noun} contains white space`);
  if (!B64TOKEN.test(token)) return malformed(`the ${noun} has characters RFC 6750 does not allow`);
  return { kind: 'presented', scheme, value: token };
}
