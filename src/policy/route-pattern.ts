/** Why a route pattern was refused; the message is shown to the person editing the policy. */
export class RoutePatternError extends Error {
  override readonly name = 'RoutePatternError';
  readonly code = 'ERR_ROUTE_PATTERN';
}

const PARAMETER = /^\{[A-Za-z_][A-Za-z0-9_]*\}$/;
// RFC 3986 pchar without pct-encoded: unreserved / sub-delims / ":" / "@". Percent signs are refused
// because Envoy matches on the path as sent, and an encoded pattern would invite ambiguity.
const LITERAL = /^[A-Za-z0-9\-._~!$&'()*+,;=:@]+$/;

/**
 * Compiles a route path pattern into a matcher over request paths (without query string).
 *
 * - literal segments match exactly (case-sensitive, as paths are);
 * - `{name}` matches exactly one non-empty segment;
 * - `/**` as the last segment matches the rest of the path, including nothing (`/files/**` matches
 *   `/files`, `/files/` and `/files/a/b`).
 *
 * @throws RoutePatternError when the pattern is not one of these shapes.
 */
export function compileRoutePattern(pattern: string): (path: string) => boolean {
  if (!pattern.startsWith('/')) throw new RoutePatternError('must start with "/"');
  if (pattern.length > 1024) throw new RoutePatternError('is longer than 1024 characters');
  if (pattern === '/') return (path) => path === '/';

  const segments = pattern.slice(1).split('/');
  let source = '';
  let literalOnly = true;
  segments.forEach((segment, i) => {
    const last = i === segments.length - 1;
    if (segment === '**') {
      if (!last) throw new RoutePatternError('"**" may only be the last segment');
      source += '(?:/.*)?';
      literalOnly = false;
    } else if (PARAMETER.test(segment)) {
      source += '/[^/]+';
      literalOnly = false;
    } else if (segment === '' && last) {
      source += '/'; // a trailing slash is significant, as it is to most upstreams
    } else if (segment === '') {
      throw new RoutePatternError('has an empty segment ("//")');
    } else if (segment === '.' || segment === '..') {
      throw new RoutePatternError('has a dot segment ("." or "..")');
    } else if (segment.includes('*')) {
      throw new RoutePatternError(`segment "${segment}": "*" is only allowed as a whole "**" last segment`);
    } else if (segment.includes('{') || segment.includes('}')) {
      throw new RoutePatternError(`segment "${segment}": a parameter is "{name}" and fills a whole segment`);
    } else if (!LITERAL.test(segment)) {
      throw new RoutePatternError(
        `segment "${segment}" has characters not allowed in a path (no "?", "#", "%", spaces or quotes)`,
      );
    } else {
      source += '/' + segment.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    }
  });

  if (literalOnly) return (path) => path === pattern;
  const regex = new RegExp(`^${source}$`);
  return (path) => regex.test(path);
}
