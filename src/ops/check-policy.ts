import type { CompiledPolicy, CompiledRoute, CompiledService } from '../policy/compiled-policy.js';
import { formatDuration } from '../policy/duration.js';
import { displayYamlPath, type YamlLocations, type YamlPath } from '../policy/yaml-locations.js';

/** Stable codes of what `authz check-policy` warns about: the policy works, but likely not as meant. */
export type PolicyWarningCode =
  | 'route_shadowed' // an earlier route (or several) matches every request this one could
  | 'route_duplicate' // an earlier route has the same methods and an equivalent path pattern
  | 'scope_unused' // a scope in known_scopes that no route requires
  | 'scope_unknown' // a route requires a scope missing from known_scopes
  | 'fetch_wait_exceeds_envoy_timeout' // jwks_fetch_wait is not below Envoy's ext_authz timeout
  | 'host_claimed_twice' // a host (or wildcard) an earlier service lists too: requests for it go there
  | 'service_unreachable' // no host leads to a service: only requests the proxy names it for reach it
  | 'wildcard_overlaps_exact'; // a wildcard matches a host another service lists exactly, which wins

/**
 * Envoy's ext_authz timeout in the shipped `envoy/envoy.yaml` (`grpc_service.timeout: 1s`). A request
 * waiting longer for keys is answered by Envoy's `status_on_error` instead, with no decision logged.
 */
export const ENVOY_EXT_AUTHZ_TIMEOUT_MS = 1000;

/** One finding about a policy that compiles, located for the person editing it. */
export interface PolicyWarning {
  readonly code: PolicyWarningCode;
  /** 1-based line (0: the file as a whole). */
  readonly line: number;
  /** 1-based column (0: unknown). */
  readonly column: number;
  /** Where in the document, e.g. `routes[3]` or `known_scopes[1]`. */
  readonly path: string;
  readonly message: string;
}

/**
 * Finds what is legal in a policy but probably a mistake: routes that can never match, duplicate routes,
 * a `jwks_fetch_wait` Envoy would not wait for, hosts two services list, services no host leads to,
 * wildcards narrowed by another service's exact host, and — when the policy declares `known_scopes` —
 * scopes no route of any service uses and route scopes not declared.
 * Pure; `locations` is the policy's source, to point at scope entries.
 *
 * Shadowing is decided conservatively: a route is reported only when earlier routes provably match every
 * request it could match, so a warning is never wrong (some unusual shadowing may go unreported).
 */
export function policyWarnings(policy: CompiledPolicy, locations: YamlLocations): PolicyWarning[] {
  const warnings: PolicyWarning[] = [];
  const warn = (code: PolicyWarningCode, path: YamlPath, message: string) => {
    warnings.push({ code, ...locations.positionOf(path), path: displayYamlPath(path), message });
  };

  for (const service of policy.services) {
    const routePath = (route: CompiledRoute): YamlPath => [...service.routesPath, route.index];
    const describeRoute = (route: CompiledRoute): string =>
      `${displayYamlPath(routePath(route))} (line ${route.line}, ${route.name})`;
    const shapes = service.routes.map((route) => patternShape(route.pattern));
    service.routes.forEach((route, j) => {
      const shape = shapes[j]!;
      const earlier = service.routes.slice(0, j);
      const duplicate = earlier.find(
        (other) => sameMethods(other.methods, route.methods) && sameShape(shapes[other.index]!, shape),
      );
      if (duplicate !== undefined) {
        warn(
          'route_duplicate',
          routePath(route),
          `duplicates ${describeRoute(duplicate)}: same methods and path, so it never matches`,
        );
        return;
      }
      const coveredBy = shadowingRoutes(
        route,
        earlier.filter((other) => patternCovers(shapes[other.index]!, shape)),
      );
      if (coveredBy !== undefined) {
        const names = coveredBy.map(describeRoute);
        const verb = names.length === 1 ? 'matches' : 'match';
        warn(
          'route_shadowed',
          routePath(route),
          `never matches: ${joinAnd(names)} ${verb} every request it could`,
        );
      }
    });
  }

  hostWarnings(policy, warn, (path) => locations.positionOf(path).line);

  // The issuers of a policy that compiled are in file order, one per entry.
  [...policy.issuers.values()].forEach((issuer, i) => {
    if (issuer.jwksFetchWaitMs >= ENVOY_EXT_AUTHZ_TIMEOUT_MS) {
      warn(
        'fetch_wait_exceeds_envoy_timeout',
        ['issuers', i, 'jwks_fetch_wait'],
        `jwks_fetch_wait ${formatDuration(issuer.jwksFetchWaitMs, true)} is not below Envoy's ext_authz timeout ` +
          `(${formatDuration(ENVOY_EXT_AUTHZ_TIMEOUT_MS, true)} in envoy/envoy.yaml): Envoy would give up first and answer 503 with no decision logged`,
      );
    }
  });

  const known = policy.knownScopes;
  if (known !== undefined) {
    const declared = new Set(known);
    const used = new Set<string>();
    for (const service of policy.services)
      for (const route of service.routes) {
        if (route.access.kind !== 'protected') continue;
        route.access.scopes.forEach((scope, k) => {
          used.add(scope);
          if (!declared.has(scope)) {
            warn(
              'scope_unknown',
              [...service.routesPath, route.index, 'scopes', k],
              `scope "${scope}" is not in known_scopes (a typo, or a scope to declare)`,
            );
          }
        });
      }
    known.forEach((scope, k) => {
      if (!used.has(scope))
        warn('scope_unused', ['known_scopes', k], `known scope "${scope}" is required by no route`);
    });
  }

  return warnings.sort((a, b) => a.line - b.line || a.column - b.column);
}

/**
 * The warnings about services' hosts (README, "Policy reference"): the first service in file order that
 * lists a host keeps it, exact names are tried before wildcards, and a service without hosts is reached
 * only by name (ext_authz `context_extensions`). A file without `services` has none of these.
 */
function hostWarnings(
  policy: CompiledPolicy,
  warn: (code: PolicyWarningCode, path: YamlPath, message: string) => void,
  lineOf: (path: YamlPath) => number,
): void {
  if (!policy.explicitServices) return;
  const firstClaim = new Map<string, { readonly service: CompiledService; readonly path: YamlPath }>();
  for (const service of policy.services) {
    const at = service.routesPath.slice(0, -1); // ['services', N]
    const hosts = service.hosts ?? [];
    let lost = 0;
    hosts.forEach((host, h) => {
      const path: YamlPath = [...at, 'hosts', h];
      const first = firstClaim.get(host);
      if (first === undefined) firstClaim.set(host, { service, path });
      // Listed twice by one service (in another case): harmless, it keeps the host either way.
      else if (first.service !== service) {
        lost++;
        warn(
          'host_claimed_twice',
          path,
          `host "${host}" is listed first by service "${first.service.name}" (line ${lineOf(first.path)}): ` +
            `its requests go there, never to "${service.name}"`,
        );
      }
    });
    const byNameOnly = `only requests the proxy names it for (ext_authz context_extensions service: ${service.name}) reach it`;
    if (hosts.length === 0)
      warn('service_unreachable', at, `service "${service.name}" lists no hosts: ${byNameOnly}`);
    else if (lost === hosts.length)
      warn(
        'service_unreachable',
        at,
        `every host of service "${service.name}" is listed by an earlier service: ${byNameOnly}`,
      );
  }
  for (const [host, exact] of firstClaim) {
    const dot = host.indexOf('.');
    if (host.startsWith('*.') || dot <= 0) continue;
    const wildcard = firstClaim.get(`*${host.slice(dot)}`);
    if (wildcard === undefined || wildcard.service === exact.service) continue;
    warn(
      'wildcard_overlaps_exact',
      wildcard.path,
      `"*${host.slice(dot)}" of service "${wildcard.service.name}" does not take ${host}: service ` +
        `"${exact.service.name}" lists it exactly (line ${lineOf(exact.path)}), and exact names win`,
    );
  }
}

/** A route pattern as a list of segment kinds: what the matcher in `route-pattern.ts` does with each. */
type Segment =
  | { readonly kind: 'literal'; readonly text: string } // exact, or '' for a trailing slash
  | { readonly kind: 'param' } // `{name}`: one non-empty segment
  | { readonly kind: 'rest' }; // `/**` last: nothing, or `/` and anything

/** Splits a compiled (so valid) pattern into segments; `/` is one empty literal, as the path `/` is. */
function patternShape(pattern: string): Segment[] {
  return pattern
    .slice(1)
    .split('/')
    .map((text) => {
      if (text === '**') return { kind: 'rest' };
      if (/^\{[A-Za-z_][A-Za-z0-9_]*\}$/.test(text)) return { kind: 'param' };
      return { kind: 'literal', text };
    });
}

/**
 * Whether every path the `later` pattern matches is matched by `earlier`. Sound by construction: each
 * case is one where the earlier segment accepts every value the later one can take, and anything else
 * counts as not covered.
 */
function patternCovers(earlier: readonly Segment[], later: readonly Segment[]): boolean {
  for (let i = 0; ; i++) {
    const e = earlier[i];
    const l = later[i];
    if (e === undefined) return l === undefined; // the later path would be longer
    if (e.kind === 'rest') return true; // matches whatever follows, including nothing
    if (l === undefined) return false; // the earlier pattern needs more segments
    if (l.kind === 'rest') return false; // arbitrarily many segments, which only a rest covers
    if (e.kind === 'literal') {
      if (l.kind !== 'literal' || l.text !== e.text) return false;
    } else if (l.kind === 'literal' && l.text === '') {
      return false; // a parameter never matches the empty segment of a trailing slash
    }
  }
}

/** Same segments, parameter names aside: the two patterns match exactly the same paths. */
function sameShape(a: readonly Segment[], b: readonly Segment[]): boolean {
  return (
    a.length === b.length &&
    a.every((segment, i) => {
      const other = b[i]!;
      if (segment.kind !== other.kind) return false;
      return segment.kind !== 'literal' || segment.text === (other as typeof segment).text;
    })
  );
}

function sameMethods(a: ReadonlySet<string> | null, b: ReadonlySet<string> | null): boolean {
  if (a === null || b === null) return a === b;
  return a.size === b.size && [...a].every((method) => b.has(method));
}

/**
 * The earlier routes that together take every request `route` could match, given those whose pattern
 * covers its pattern; undefined when its methods are not all taken. An earlier route for every method
 * takes all; a route for every method is only taken by such a route (it also gets unusual methods).
 */
function shadowingRoutes(
  route: CompiledRoute,
  covering: readonly CompiledRoute[],
): CompiledRoute[] | undefined {
  const everyMethod = covering.find((other) => other.methods === null);
  if (everyMethod !== undefined) return [everyMethod];
  if (route.methods === null) return undefined;
  const taking = new Set<CompiledRoute>();
  for (const method of route.methods) {
    const first = covering.find((other) => other.methods?.has(method) === true);
    if (first === undefined) return undefined;
    taking.add(first);
  }
  return [...taking].sort((a, b) => a.index - b.index);
}

function joinAnd(items: readonly string[]): string {
  return items.length <= 1 ? (items[0] ?? '') : `${items.slice(0, -1).join(', ')} and ${items.at(-1)}`;
}
