import type { RedirectTarget } from './authorize-error.js';
import type { RedirectReply } from './reply.js';

/**
 * The redirect back to the client (RFC 6749 sections 4.1.2 and 4.1.2.1): `params` (`code`, or `error` and
 * `error_description`), then `state` when the request had one, then `iss` (RFC 9207), so the app can tell
 * which provider answered. They are appended to the registered URI's own query, which is kept byte for byte
 * (RFC 6749 section 3.1.2). Development only.
 */
export function authorizationResponse(
  target: RedirectTarget,
  issuer: string,
  params: Readonly<Record<string, string>>,
  headers: Readonly<Record<string, string>> = {},
): RedirectReply {
  const query = new URLSearchParams(params);
  if (target.state !== undefined) query.set('state', target.state);
  query.set('iss', issuer);
  const separator = target.redirectUri.includes('?') ? '&' : '?';
  return { kind: 'redirect', location: `${target.redirectUri}${separator}${query.toString()}`, headers };
}
