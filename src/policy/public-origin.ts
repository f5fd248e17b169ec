/**
 * A `public_origin` entry as written, before the WHATWG URL parser's leniencies: a scheme, `://`, an
 * authority without `/`, `?`, `#` or `\` (which the parser reads as `/` in http URLs), and at most one `/`.
 */
const ORIGIN_FORM = /^[A-Za-z][A-Za-z0-9+.-]*:\/\/[^/?#\\]+\/?$/;

/**
 * The origin a `public_origin` entry names, normalised as RFC 6454 section 4 serialises it (lower-case
 * scheme and host, no default port, no trailing slash; RFC 3986 section 6.2.2 and 6.2.3), or why it is not
 * one. A DPoP proof's `htu` is compared with this plus the request path (RFC 9449 section 4.3), so anything
 * beyond the origin would be ignored or wrong: it is refused rather than dropped.
 */
export function normalisedOrigin(text: string): { readonly origin: string } | { readonly problem: string } {
  // The URL parser trims and drops whitespace; an origin written with some is a mistake worth naming.
  if (/\s/.test(text)) return { problem: `"${text}" contains white space: an origin has none` };
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return { problem: `"${text}" is not an origin such as https://bank.example` };
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    return { problem: `"${text}" is not an http or https origin` };
  if (text.includes('@') || url.username !== '' || url.password !== '')
    return { problem: `"${text}" carries credentials: an origin is scheme, host and port only` };
  if (text.includes('?') || text.includes('#'))
    return { problem: `"${text}" has a query or fragment: an origin is scheme, host and port only` };
  if (!ORIGIN_FORM.test(text) || url.pathname !== '/')
    return {
      problem: `"${text}" has a path: an origin is scheme, host and port only (e.g. https://bank.example)`,
    };
  return { origin: url.origin };
}
