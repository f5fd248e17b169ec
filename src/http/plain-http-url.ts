/**
 * `text` as an absolute http(s) URL with no userinfo and no fragment, or undefined when it is not one.
 * Userinfo only disguises where a URL points, and a fragment never reaches a server; callers that need
 * more (no query, no path) check the returned URL.
 */
export function plainHttpUrl(text: string): URL | undefined {
  if (!URL.canParse(text) || text.includes('#')) return undefined;
  const url = new URL(text);
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return undefined;
  if (url.username !== '' || url.password !== '') return undefined;
  return url;
}
