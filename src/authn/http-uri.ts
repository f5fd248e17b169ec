/**
 * An http(s) URI in the form RFC 9449 compares `htu` in (section 4.3: syntax-based and scheme-based
 * normalisation, RFC 3986 sections 6.2.2 and 6.2.3), without query and fragment, or undefined when the text
 * is not an absolute http(s) URI or carries user information.
 *
 * WHATWG URL parsing lower-cases the scheme and host, drops the scheme's default port, removes dot segments
 * and gives an empty path as "/"; what is left here is percent-encoding: hexadecimal digits in upper case and
 * unreserved characters decoded (RFC 3986 sections 6.2.2.1 and 6.2.2.2). So `HTTPS://Bank.Example:443/a%7eb`
 * and `https://bank.example/a~b` compare equal, as the RFC asks.
 */
export function normalisedHttpUri(text: string): string | undefined {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return undefined;
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return undefined;
  if (url.username !== '' || url.password !== '') return undefined;
  const path = url.pathname.replace(/%[0-9A-Fa-f]{2}/g, (escape) => {
    const char = String.fromCharCode(Number.parseInt(escape.slice(1), 16));
    return UNRESERVED.test(char) ? char : escape.toUpperCase();
  });
  return `${url.protocol}//${url.host}${path}`;
}

// RFC 3986 section 2.3.
const UNRESERVED = /^[A-Za-z0-9\-._~]$/;
