import type { Credentials } from '../authz/credentials.js';

/**
 * What the `Authorization` header of a request holds, as far as RFC 6750 bearer tokens go.
 * - `none`: no credentials, or credentials of another scheme (answered with a bare challenge);
 * - `malformed`: an attempt at bearer credentials that does not follow RFC 6750 section 2.1 (400);
 * - `presented`: one syntactically valid bearer token, not yet verified.
 */
export type BearerCredentials = Credentials<string>;

// RFC 6750 section 2.1: b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
const B64TOKEN = /^[A-Za-z0-9\-._~+/]+=*$/;
// RFC 9110 section 11.1: the auth-scheme is case-insensitive.
const BEARER_PREFIX = /^bearer(?:[ \t]+|$)/i;

/**
 * Reads bearer credentials from the values of the request's `Authorization` header. Only this header is
 * a token source: query parameters and bodies (RFC 6750 sections 2.2 and 2.3) are never looked at.
 *
 * @param values every value the request carried for `Authorization`, in order (Envoy may also have
 *   joined repeated headers into one value with commas, which is detected too).
 */
export function readBearerCredentials(values: readonly string[]): BearerCredentials {
  if (values.length === 0) return { kind: 'none' };
  if (values.length > 1) return { kind: 'malformed', description: 'more than one Authorization header' };
  const value = (values[0] ?? '').trim();
  if (value === '') return { kind: 'none' };

  const prefix = BEARER_PREFIX.exec(value);
  if (prefix === null) {
    // Another scheme. A comma followed by "Bearer" means two headers were joined: ambiguous, refused.
    return /,\s*bearer(?:[ \t]|$)/i.test(value)
      ? { kind: 'malformed', description: 'more than one Authorization header' }
      : { kind: 'none' };
  }
  const token = value.slice(prefix[0].length);
  if (token === '') return { kind: 'malformed', description: 'the Bearer scheme needs a token' };
  if (token.includes(',')) return { kind: 'malformed', description: 'more than one Authorization header' };
  if (/\s/.test(token)) return { kind: 'malformed', description: 'the bearer token contains white space' };
  if (!B64TOKEN.test(token)) {
    return { kind: 'malformed', description: 'the bearer token has characters RFC 6750 does not allow' };
  }
  return { kind: 'presented', value: token };
}
