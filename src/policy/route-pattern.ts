/** Why a route pattern was refused; the message is shown to the person editing the policy. */
export class RoutePatternError extends Error {
  override readonly name = 'RoutePatternError';
  readonly code = 'ERR_ROUTE_PATTERN';
}

/**
 * One segment of a route pattern between slashes: a literal to equal exactly (the empty literal is the
 * trailing slash, and only ever last), or a `{name}` parameter for any one non-empty segment.
 */
export type PatternSegment =
  { readonly kind: 'literal'; readonly text: string } | { readonly kind: 'parameter' };

/** A route pattern taken apart, the form the route table is built from. */
export interface RoutePattern {
  /** The segments after the leading slash, in order (`/` alone is one empty literal: the root). */
  readonly segments: readonly PatternSegment[];
  /** Whether the pattern ends in `/**`: after `segments`, the rest of the path, including nothing. */
  readonly rest: boolean;
}

const PARAMETER = /^\{[A-Za-z_][A-Za-z0-9_]*\}$/;
// RFC 3986 pchar without pct-encoded: unreserved / sub-delims / ":" / "@". Percent signs are refused
// because Envoy matches on the path as sent, and an encoded pattern would invite ambiguity.
const LITERAL = /^[A-Za-z0-9\-._~!$&'()*+,;=:@]+$/;

/**
 * Takes a route path pattern apart into its segments, checking each:
 *
 * - literal segments match exactly (case-sensitive, as paths are);
 * - `{name}` matches exactly one non-empty segment;
 * - `/**` as the last segment matches the rest of the path, including nothing (`/files/**` matches
 *   `/files`, `/files/` and `/files/a/b`);
 * - a trailing slash is significant (`/balance/` is not `/balance`).
 *
 * @throws RoutePatternError when the pattern is not one of these shapes.
 */
export function parseRoutePattern(pattern: string): RoutePattern {
  if (!pattern.startsWith('/')) throw new RoutePatternError('must start with "/"');
  if (pattern.length > 1024) throw new RoutePatternError('is longer than 1024 characters');

  const parts = pattern.slice(1).split('/');
  const segments: PatternSegment[] = [];
  let rest = false;
  parts.forEach((part, i) => {
    const last = i === parts.length - 1;
    if (part === '**') {
      if (!last) throw new RoutePatternError('"**" may only be the last segment');
      rest = true;
    } else if (PARAMETER.test(part)) {
      segments.push({ kind: 'parameter' });
    } else if (part === '' && last) {
      segments.push({ kind: 'literal', text: '' }); // a trailing slash is significant, as it is to most upstreams
    } else if (part === '') {
      throw new RoutePatternError('has an empty segment ("//")');
    } else if (part === '.' || part === '..') {
      throw new RoutePatternError('has a dot segment ("." or "..")');
    } else if (part.includes('*')) {
      throw new RoutePatternError(`segment "${part}": "*" is only allowed as a whole "**" last segment`);
    } else if (part.includes('{') || part.includes('}')) {
      throw new RoutePatternError(`segment "${part}": a parameter is "{name}" and fills a whole segment`);
    } else if (!LITERAL.test(part)) {
      throw new RoutePatternError(
        `segment "${part}" has characters not allowed in a path (no "?", "#", "%", spaces or quotes)`,
      );
    } else {
      segments.push({ kind: 'literal', text: part });
    }
  });
  return Object.freeze({ segments: Object.freeze(segments), rest });
}

/**
 * Compiles a route path pattern (see `parseRoutePattern`) into a matcher over request paths (without
 * query string), one pattern at a time. The hot path uses the route table (`route-table.ts`) instead,
 * which tries every route at once; this matcher states the same semantics as a regular expression.
 *
 * @throws RoutePatternError when the pattern is not one of the accepted shapes.
 */
export function compileRoutePattern(pattern: string): (path: string) => boolean {
  const { segments, rest } = parseRoutePattern(pattern);
  if (!rest && segments.every((segment) => segment.kind === 'literal')) return (path) => path === pattern;

  let source = '';
  for (const segment of segments) {
    source +=
      segment.kind === 'parameter' ? '/[^/]+' : '/' + segment.text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  }
  if (rest) source += '(?:/.*)?';
  const regex = new RegExp(`^${source}$`);
  return (path) => regex.test(path);
}
