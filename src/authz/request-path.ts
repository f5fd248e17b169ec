/** Why a request path cannot be matched against the policy. */
export type RequestPathProblem =
  'not_origin_form' | 'dot_segment' | 'empty_segment' | 'encoded_separator' | 'bad_character';

/**
 * Splits the path Envoy reports (the request target, query included, RFC 9110 origin-form) into the
 * part routes match on. Returns the path, or the reason it is refused.
 *
 * Envoy normalises paths before ext_authz runs (`normalize_path`, `merge_slashes`, escaped slashes
 * rejected), but this service may sit behind a proxy configured otherwise, so anything that could make
 * the upstream see a different path than the one matched is refused here too.
 */
export function normalisedRequestPath(target: string): { path: string } | { problem: RequestPathProblem } {
  const end = target.search(/[?#]/);
  const path = end === -1 ? target : target.slice(0, end);
  if (!path.startsWith('/')) return { problem: 'not_origin_form' };
  // Visible ASCII only: controls, spaces and raw non-ASCII bytes have no place in a request path.
  if (!/^[\x21-\x7E]*$/.test(path) || path.includes('\\')) return { problem: 'bad_character' };
  if (/%2f|%5c/i.test(path)) return { problem: 'encoded_separator' };
  if (path.includes('//')) return { problem: 'empty_segment' };
  // Dot segments, also percent-encoded ones an upstream might decode (RFC 3986 section 6.2.2.2).
  if (/\/(?:\.|%2e){1,2}(?:\/|$)/i.test(path)) return { problem: 'dot_segment' };
  return { path };
}
