/**
 * Why `uri` cannot be registered as a redirect URI, or undefined when it can. A redirect URI must be an
 * absolute http(s) URL (RFC 6749 section 3.1.2) without a fragment (section 3.1.2) and without userinfo,
 * which would only serve to disguise where codes are sent. Plain http is allowed: the demo runs on loopback.
 * Development only.
 */
export function redirectUriProblem(uri: string): string | undefined {
  if (!URL.canParse(uri)) return 'is not an absolute URL';
  const url = new URL(uri);
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return 'is not an http(s) URL';
  if (uri.includes('#')) return 'has a fragment';
  if (url.username !== '' || url.password !== '') return 'has userinfo';
  return undefined;
}

/**
 * The distinct origins (`http://127.0.0.1:8000`) of registered redirect URIs, in order: the browser app is
 * served from there, so these are the origins CORS and the login pages' `form-action` allow.
 * Development only.
 */
export function redirectOrigins(uris: readonly string[]): string[] {
  return [...new Set(uris.map((uri) => new URL(uri).origin))];
}
