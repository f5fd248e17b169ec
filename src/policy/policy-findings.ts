import type {
  AuthenticationRequirement,
  CompiledPolicy,
  CompiledRoute,
  CompiledService,
  IssuerPolicy,
  SenderConstraint,
  SenderConstraintSetting,
} from './compiled-policy.js';
import { formatDuration } from './duration.js';
import { FINDING_CODES, type FindingCode, type FindingLevel } from './finding-codes.js';
import { isCatchAll, patternCovers, patternShape, sameShape } from './route-pattern-shape.js';
import { requiresBinding } from './sender-constraints.js';
import type { DocumentLocator } from './problem-locator.js';
import { displayYamlPath, YamlLocations, type YamlPath, type YamlPosition } from './yaml-locations.js';

export { FINDING_CODES, ROUTE_FINDING_CODES, type FindingCode, type FindingLevel } from './finding-codes.js';

/** One thing a policy that compiles lets through, or probably gets wrong, located in the policy file. */
export interface PolicyFinding {
  /** Stable, documented in docs/policy-checks.md; switch on it, never on the message. */
  readonly code: string;
  readonly level: FindingLevel;
  /**
   * The file it is in, for a policy directory (the root or a service file); absent for a single policy
   * file, where it is always that file.
   */
  readonly file?: string;
  /** 1-based line in the policy file (0: the file as a whole). */
  readonly line: number;
  /** 1-based column (0: unknown). */
  readonly column: number;
  /** Display path, e.g. `services[0].routes[2]`. */
  readonly path: string;
  /** What it lets through, one plain sentence. */
  readonly message: string;
  /** How to fix it. */
  readonly fix: string;
  /** Set when the route's `accept_risks` accepts it: still shown, never counted as an error. */
  readonly accepted?: { readonly reason: string };
}

/**
 * What an issuer's discovery document says of the scopes it grants (`scopes_supported`, OpenID Connect
 * Discovery 1.0 section 3), or why that is not known (the document could not be read, or lists none).
 */
export type ScopesSupported = { readonly scopes: readonly string[] } | { readonly problem: string };

/** What `authz check-policy` learned outside the policy file, for the findings that need it. */
export interface FindingContext {
  /**
   * The discovery documents' `scopes_supported`, by exact `iss`, of the issuers found by discovery, read
   * when the policy declares no `known_scopes` (`scope_not_advertised`, `scopes_supported_unread`). Absent:
   * not read (the server never reads it; `check-policy --offline`).
   */
  readonly scopesSupported?: ReadonlyMap<string, ScopesSupported>;
}

/**
 * Envoy's ext_authz timeout in the shipped `envoy/envoy.yaml` (`grpc_service.timeout: 1s`). A request
 * waiting longer for keys is answered by Envoy's `status_on_error` instead, with no decision logged.
 */
export const ENVOY_EXT_AUTHZ_TIMEOUT_MS = 1000;

/** A `max_token_lifetime` above this is reported (`token_lifetime_long`), in seconds. */
export const LONG_TOKEN_LIFETIME_SECONDS = 604_800; // 7 days

/** Methods that change state (RFC 9110 section 9.2.1: not safe). */
const WRITING_METHODS: readonly string[] = ['POST', 'PUT', 'PATCH', 'DELETE'];

/**
 * Every finding about a compiled policy (docs/policy-checks.md), sorted by position: what it lets through
 * (public catch-alls, public writes, report-only services, unchecked `typ`), and what is legal but likely a
 * mistake (routes that never match, scopes not declared, hosts two services list, a `jwks_fetch_wait` Envoy
 * would not wait for). A finding a route's `accept_risks` names is still returned, marked accepted; an
 * acceptance that names no finding is itself one (`risk_acceptance_unused`).
 *
 * Pure. `locations` is the policy's source: it locates the findings and holds what compiling leaves out
 * (`accept_risks`, and whether a `mode` was written on a service or inherited). `context` holds what was
 * read elsewhere (the issuers' advertised scopes, by `authz check-policy` only).
 *
 * Shadowing is decided conservatively: a route is reported only when earlier routes provably match every
 * request it could match, so a finding is never wrong (some unusual shadowing may go unreported).
 */
export function policyFindings(
  policy: CompiledPolicy,
  locations: FindingSource,
  context: FindingContext = {},
): PolicyFinding[] {
  const source = sourceData(locations);
  const drafts: Draft[] = [];
  const add = (code: FindingCode, path: YamlPath, message: string) => drafts.push({ code, path, message });

  for (const service of policy.services) routeFindings(policy, service, add);
  modeFindings(policy, source, add);
  serviceConstraintFindings(policy, source, add);
  originFindings(policy, source, add);
  hostFindings(policy, add, (path) => positionOf(locations, path).line);
  issuerFindings(policy, add);
  scopeFindings(policy, add);
  advertisedScopeFindings(policy, context.scopesSupported, add);

  const acceptances = routeAcceptances(policy, source);
  const findings: PolicyFinding[] = drafts.map((draft) => {
    const acceptance = acceptances.find((a) => a.code === draft.code && startsWith(draft.path, a.routePath));
    if (acceptance !== undefined) acceptance.used = true;
    return located(locations, draft, acceptance?.reason);
  });
  for (const acceptance of acceptances) {
    if (acceptance.used) continue;
    findings.push(
      located(locations, {
        code: 'risk_acceptance_unused',
        path: acceptance.path,
        message: `accept_risks names ${acceptance.code}, which this route does not have: the entry accepts nothing now and would silently accept that risk if it appeared later`,
      }),
    );
  }
  return findings.sort((a, b) => a.line - b.line || a.column - b.column);
}

/** Whether a finding fails `check-policy` (errors; warnings too with `strict`) and a guarded reload. */
export function findingFails(finding: PolicyFinding, strict = false): boolean {
  if (finding.accepted !== undefined) return false;
  return finding.level === 'error' || (strict && finding.level === 'warning');
}

/**
 * The findings that refuse a hot reload under `reload_guard: error`: error-level findings of the new
 * policy, not accepted, that the policy in force does not have (compared by code and path, so a policy
 * already running with a risk is not refused for keeping it).
 */
export function reloadBlockingFindings(
  inForce: readonly PolicyFinding[],
  next: readonly PolicyFinding[],
): PolicyFinding[] {
  const present = new Set(inForce.filter((f) => f.level === 'error').map((f) => `${f.code} ${f.path}`));
  return next.filter((f) => findingFails(f) && !present.has(`${f.code} ${f.path}`));
}

/**
 * The findings an explanation of a request shows: those about its route, about its service, and about the
 * later routes of the service that would have matched it but never match (`route_shadowed_weaker`,
 * `route_shadowed`, `route_duplicate`): the route that took the request is why they never match.
 *
 * @param request the request's method and normalised path, when it has one.
 */
export function findingsConcerning(
  findings: readonly PolicyFinding[],
  service: CompiledService,
  route: CompiledRoute | undefined,
  policy: CompiledPolicy,
  request?: { readonly method: string; readonly path: string | undefined },
): PolicyFinding[] {
  const displayPath = (r: CompiledRoute) => displayYamlPath([...service.routesPath, r.index]);
  const routePath = route === undefined ? undefined : displayPath(route);
  const servicePath = policy.explicitServices ? displayYamlPath(service.routesPath.slice(0, -1)) : undefined;
  const { method, path } = request ?? {};
  const wouldMatch = new Set(
    route === undefined || method === undefined || path === undefined
      ? []
      : service.routes
          .slice(route.index + 1)
          .filter((r) => (r.methods === null || r.methods.has(method)) && r.matchesPath(path))
          .map(displayPath),
  );
  return findings.filter((f) => {
    if (routePath !== undefined && (f.path === routePath || isBelow(f.path, routePath))) return true;
    if (NEVER_MATCHES.includes(f.code) && wouldMatch.has(f.path)) return true;
    if (f.code === 'report_only_policy') return service.mode === 'report-only';
    // The top-level keys of a file without services are its one service's.
    if (servicePath === undefined)
      return f.path === 'sender_constraint' || f.path === 'public_origin' || isBelow(f.path, 'public_origin');
    return (
      f.path === servicePath ||
      f.path === `${servicePath}.mode` ||
      f.path.startsWith(`${servicePath}.hosts[`) ||
      f.path === `${servicePath}.sender_constraint` ||
      f.path === `${servicePath}.public_origin` ||
      isBelow(f.path, `${servicePath}.public_origin`)
    );
  });
}

/** The codes of a route that never matches, reported at the route. */
const NEVER_MATCHES: readonly string[] = ['route_shadowed_weaker', 'route_shadowed', 'route_duplicate'];

interface Draft {
  readonly code: FindingCode;
  readonly path: YamlPath;
  readonly message: string;
}

type Add = (code: FindingCode, path: YamlPath, message: string) => void;

function located(locations: FindingSource, draft: Draft, acceptedReason?: string): PolicyFinding {
  const { level, fix } = FINDING_CODES[draft.code];
  const position = positionOf(locations, draft.path);
  return {
    code: draft.code,
    level,
    ...('own' in position ? { file: position.file } : {}),
    line: position.line,
    column: position.column,
    path: displayYamlPath('own' in position ? position.own : draft.path),
    message: draft.message,
    fix,
    ...(acceptedReason === undefined ? {} : { accepted: { reason: acceptedReason } }),
  };
}

/**
 * Routes that never match (shadowed, duplicate), then what each route that can match lets through. A route
 * that never matches lets nothing through itself, but the earlier routes that take its requests may demand
 * less than it does: then its requirements are not checked for them (`route_shadowed_weaker`).
 */
function routeFindings(policy: CompiledPolicy, service: CompiledService, add: Add): void {
  const routePath = (route: CompiledRoute): YamlPath => [...service.routesPath, route.index];
  const describeRoute = (route: CompiledRoute): string =>
    `${displayYamlPath(routePath(route))} (line ${route.line}, ${route.name})`;
  const shapes = service.routes.map((route) => patternShape(route.pattern));
  service.routes.forEach((route, j) => {
    const shape = shapes[j]!;
    const earlier = service.routes.slice(0, j);
    const takers = shadowingRoutes(
      route,
      earlier.filter((other) => patternCovers(shapes[other.index]!, shape)),
    );
    if (takers === undefined) {
      riskFindings(service, route, isCatchAll(shape), (code, message) =>
        add(code, routePath(route), message),
      );
      routeConstraintFindings(policy, service, route, (code, message) =>
        add(code, [...routePath(route), 'sender_constraint'], message),
      );
      return;
    }
    // An earlier route with the same methods and pattern covers it too, so it is among `takers` or behind them.
    const duplicate = earlier.find(
      (other) => sameMethods(other.methods, route.methods) && sameShape(shapes[other.index]!, shape),
    );
    const named = duplicate === undefined ? takers : [duplicate];
    const neverMatches =
      duplicate === undefined
        ? `never matches: ${joinAnd(takers.map(describeRoute))} ${takers.length === 1 ? 'matches' : 'match'} every request it could`
        : `duplicates ${describeRoute(duplicate)}: same methods and path, so it never matches`;
    const lesser = takers.flatMap((taker) => {
      const what = lesserDemands(route, taker);
      if (what === undefined) return [];
      const who = named.includes(taker) ? displayYamlPath(routePath(taker)) : describeRoute(taker);
      return [`${who} ${what}`];
    });
    if (lesser.length > 0)
      add('route_shadowed_weaker', routePath(route), `${neverMatches}; ${lesser.join('; ')}`);
    else add(duplicate === undefined ? 'route_shadowed' : 'route_duplicate', routePath(route), neverMatches);
  });
}

/**
 * What `taker`, an earlier route that takes some of the requests of `route` (which then never matches),
 * lets through that `route` would refuse, in words (`is public, so ...`); undefined when it demands at least
 * as much: the same scopes or more, an authentication requirement at least as strict, a binding wherever
 * `route` requires one, and enforcement wherever `route` enforces. A public `route` demands nothing.
 */
function lesserDemands(route: CompiledRoute, taker: CompiledRoute): string | undefined {
  const need = route.access;
  const have = taker.access;
  if (need.kind !== 'protected') return undefined;
  if (have.kind === 'public') return 'is public, so those requests pass without a token';
  if (taker.mode === 'report-only' && route.mode === 'enforce')
    return 'is report-only, so those requests pass whatever the token (a denial is only logged as would_deny)';
  const less: string[] = [];
  const missing = need.scopes.filter((scope) => !have.scopes.includes(scope));
  if (missing.length > 0)
    less.push(`does not require scope${missing.length === 1 ? '' : 's'} ${joinAnd(missing.map(quoted))}`);
  less.push(...lesserAuthentication(need.authentication, have.authentication));
  const unbound: string[] = [];
  let bound: SenderConstraint | undefined;
  for (const [iss, constraint] of route.senderConstraints) {
    const theirs = taker.senderConstraints.get(iss);
    if (!requiresBinding(constraint) || (theirs !== undefined && requiresBinding(theirs))) continue;
    unbound.push(quoted(iss));
    bound ??= constraint;
  }
  if (bound !== undefined) {
    less.push(
      `lets tokens of issuer${unbound.length === 1 ? '' : 's'} ${joinAnd(unbound)} with no binding pass ` +
        `(this route requires them bound: ${describeSetting(bound)})`,
    );
  }
  return less.length === 0 ? undefined : joinAnd(less);
}

/** What an authentication requirement (RFC 9470) `have` leaves unchecked of `need`, in words. */
function lesserAuthentication(
  need: AuthenticationRequirement | undefined,
  have: AuthenticationRequirement | undefined,
): string[] {
  const less: string[] = [];
  if (need?.acrValues !== undefined) {
    const accepted = need.acrValues;
    const extra = have?.acrValues?.filter((value) => !accepted.includes(value));
    if (extra === undefined)
      less.push(`does not check acr (this route: acr_values ${joinAnd(accepted.map(quoted))})`);
    else if (extra.length > 0) less.push(`also accepts acr ${joinAnd(extra.map(quoted))}`);
  }
  const amrMissing = need?.amr?.filter((method) => !(have?.amr ?? []).includes(method)) ?? [];
  if (amrMissing.length > 0) less.push(`does not require amr ${joinAnd(amrMissing.map(quoted))}`);
  if (need?.maxAgeSeconds !== undefined) {
    const limit = formatDuration(need.maxAgeSeconds);
    if (have?.maxAgeSeconds === undefined) less.push(`sets no max_age (this route: ${limit})`);
    else if (have.maxAgeSeconds > need.maxAgeSeconds)
      less.push(
        `accepts a login up to ${formatDuration(have.maxAgeSeconds)} old (this route: max_age ${limit})`,
      );
  }
  return less;
}

function quoted(text: string): string {
  return `"${text}"`;
}

/**
 * A route whose own `sender_constraint` lets tokens with no binding through for an issuer whose tokens its
 * service would otherwise require to be bound: a leaked bearer token of that issuer works on this route.
 * When the issuer itself requires the binding, the route overrides what the issuer says of its tokens
 * (`issuer_sender_constraint_weakened`, an error); when only the service or the top level requires it,
 * the route drops a rule of its own policy (`sender_constraint_weakened`). Lowering `allowed` to `off` is
 * not reported: a bound token is never taken as a bearer token (RFC 9449 section 7.2), so that only
 * refuses more.
 */
function routeConstraintFindings(
  policy: CompiledPolicy,
  service: CompiledService,
  route: CompiledRoute,
  add: (code: FindingCode, message: string) => void,
): void {
  if (route.access.kind !== 'protected') return;
  if (route.senderConstraint.dpop === undefined && route.senderConstraint.mtls === undefined) return;
  const byIssuer = { weakened: [] as string[], required: undefined as SenderConstraintSetting | undefined };
  const byService = { weakened: [] as string[], required: undefined as SenderConstraintSetting | undefined };
  for (const [iss, constraint] of route.senderConstraints) {
    const issuer = policy.issuers.get(iss);
    if (issuer === undefined || requiresBinding(constraint)) continue;
    const inherited = serviceLevel(service, issuer);
    if (!requiresBinding(inherited)) continue; // the service lets them through already: reported there if at all
    const dropped = requiresBinding(issuer.senderConstraint) ? byIssuer : byService;
    dropped.weakened.push(`"${iss}"`);
    dropped.required ??= dropped === byIssuer ? issuer.senderConstraint : inherited;
  }
  const sets = `route ${route.name} sets sender_constraint ${describeSetting(route.senderConstraint)}`;
  const tokensOf = (weakened: readonly string[]) =>
    `tokens of issuer${weakened.length === 1 ? '' : 's'} ${joinAnd(weakened)} with no binding pass on it`;
  if (byIssuer.required !== undefined) {
    add(
      'issuer_sender_constraint_weakened',
      `${sets}, so ${tokensOf(byIssuer.weakened)}, though the issuer requires them bound (${describeSetting(byIssuer.required)})`,
    );
  }
  if (byService.required !== undefined) {
    add(
      'sender_constraint_weakened',
      `${sets}, so ${tokensOf(byService.weakened)}, though its service otherwise requires them bound (${describeSetting(byService.required)})`,
    );
  }
}

/** The constraint a route that sets nothing has for the tokens of `issuer`: service over issuer. */
function serviceLevel(service: CompiledService, issuer: IssuerPolicy): SenderConstraintSetting {
  return {
    dpop: service.senderConstraint.dpop ?? issuer.senderConstraint.dpop ?? 'off',
    mtls: service.senderConstraint.mtls ?? issuer.senderConstraint.mtls ?? 'off',
  };
}

/** `{ dpop: allowed }`: the members a setting has, as written in the policy. */
function describeSetting(setting: SenderConstraintSetting): string {
  const members = (['dpop', 'mtls'] as const).flatMap((member) =>
    setting[member] === undefined ? [] : [`${member}: ${setting[member]}`],
  );
  return `{ ${members.join(', ')} }`;
}

/**
 * A service (or the top level, for the implicit service or a service that inherits it) whose
 * `sender_constraint` lets tokens with no binding through for an issuer that requires its tokens bound:
 * the issuer's setting says its tokens are sender-constrained, and here leaked bearer tokens of it work
 * (`issuer_sender_constraint_weakened`, not acceptable: no route can speak for its whole service).
 */
function serviceConstraintFindings(policy: CompiledPolicy, source: SourceData, add: Add): void {
  policy.services.forEach((service) => {
    const weakened: string[] = [];
    let required: SenderConstraintSetting | undefined;
    for (const iss of service.trust.keys()) {
      const issuer = policy.issuers.get(iss);
      if (issuer === undefined || !requiresBinding(issuer.senderConstraint)) continue;
      if (requiresBinding(serviceLevel(service, issuer))) continue;
      weakened.push(`"${iss}"`);
      required ??= issuer.senderConstraint;
    }
    if (required === undefined) return;
    const at = service.routesPath.slice(0, -1); // ['services', N], or [] for the implicit service
    // Located where the member that drops the issuer's `required` is written: the service, or the top level.
    const member = (['dpop', 'mtls'] as const).find((m) => required?.[m] === 'required') ?? 'dpop';
    const own =
      policy.explicitServices && valueAt(source, [...at, 'sender_constraint', member]) !== undefined;
    const where: YamlPath = !policy.explicitServices
      ? ['sender_constraint']
      : own
        ? [...at, 'sender_constraint']
        : at;
    const what = policy.explicitServices
      ? `service "${service.name}"${own ? '' : ' (from the top-level sender_constraint)'}`
      : 'the top-level sender_constraint';
    add(
      'issuer_sender_constraint_weakened',
      where,
      `${what} sets ${describeSetting(service.senderConstraint)}, so tokens of issuer${weakened.length === 1 ? '' : 's'} ` +
        `${joinAnd(weakened)} with no binding pass, though the issuer requires them bound (${describeSetting(required)})`,
    );
  });
}

/**
 * A public origin in clear text on a host other than loopback: the access token and its DPoP proofs cross
 * the network readable, and a proof binds only a request, not its confidentiality (RFC 9449 section 11.1).
 */
function originFindings(policy: CompiledPolicy, source: SourceData, add: Add): void {
  const reported = new Set<string>();
  for (const service of policy.services) {
    const at = service.routesPath.slice(0, -1);
    const own = policy.explicitServices && valueAt(source, [...at, 'public_origin']) !== undefined;
    const base: YamlPath = own ? [...at, 'public_origin'] : ['public_origin'];
    const written = valueAt(source, base);
    service.publicOrigins.forEach((origin, i) => {
      const url = new URL(origin);
      if (url.protocol !== 'http:' || isLoopback(url.hostname)) return;
      const path: YamlPath = Array.isArray(written) ? [...base, i] : base;
      const key = displayYamlPath(path);
      if (reported.has(key)) return;
      reported.add(key);
      add(
        'public_origin_cleartext',
        path,
        `public origin ${origin} is plain http on a host other than loopback, so access tokens and DPoP proofs sent to it can be read on the network`,
      );
    });
  }
}

function isLoopback(hostname: string): boolean {
  return hostname === 'localhost' || hostname === '[::1]' || /^127(\.\d{1,3}){3}$/.test(hostname);
}

/** What one route that can match lets through. */
function riskFindings(
  service: CompiledService,
  route: CompiledRoute,
  catchAll: boolean,
  add: (code: FindingCode, message: string) => void,
): void {
  const writes =
    route.methods === null ? WRITING_METHODS : WRITING_METHODS.filter((m) => route.methods?.has(m));
  if (route.access.kind === 'public') {
    if (catchAll) {
      add(
        'public_catch_all',
        `public route ${route.name} matches every path${route.pattern === '/**' ? '' : ' below its parameters'}, so requests to every endpoint of service "${service.name}", including endpoints added later, pass without a token`,
      );
    }
    if (route.methods === null) {
      add(
        'public_any_method',
        `public route ${route.name} lists no methods, so POST, PUT, PATCH and DELETE requests to ${route.pattern} pass without a token too`,
      );
    } else if (writes.length > 0) {
      add(
        'public_write_method',
        `public route ${route.name} lets ${joinAnd(writes)} requests to ${route.pattern} through without a token`,
      );
    }
    return;
  }
  if (route.access.scopes.length === 0 && writes.length > 0) {
    const what = route.methods === null ? 'every method' : joinAnd(writes);
    add(
      'scopes_empty_on_write',
      `route ${route.name} requires no scope (scopes: []), so any valid token of an issuer service "${service.name}" trusts may use ${what} on ${route.pattern}`,
    );
  }
  // Under a report-only service every route is already reported with it.
  if (route.mode === 'report-only' && service.mode === 'enforce' && writes.length > 0) {
    add(
      'report_only_write_route',
      `route ${route.name} is report-only, so ${joinAnd(writes)} requests to ${route.pattern} are allowed whatever the token, and a denial is only logged as would_deny`,
    );
  }
}

/**
 * Report-only services: every request is allowed, including those no route matches. Inherited from the
 * top-level `mode`, it is reported there once (`report_only_policy`); written on a service, there.
 */
function modeFindings(policy: CompiledPolicy, source: SourceData, add: Add): void {
  const inherited: CompiledService[] = [];
  for (const service of policy.services) {
    if (service.mode !== 'report-only') continue;
    const at = service.routesPath.slice(0, -1);
    if (policy.explicitServices && valueAt(source, [...at, 'mode']) === 'report-only') {
      add(
        'report_only_service',
        [...at, 'mode'],
        `service "${service.name}" is report-only, so every request for it is allowed, including requests no route matches, and denials are only logged as would_deny`,
      );
    } else {
      inherited.push(service);
    }
  }
  if (inherited.length === 0) return;
  const which = policy.explicitServices
    ? `service${inherited.length === 1 ? '' : 's'} ${joinAnd(inherited.map((s) => `"${s.name}"`))}`
    : 'the policy';
  add(
    'report_only_policy',
    ['mode'],
    `mode: report-only applies to ${which}, so every request is allowed, including requests no route matches, and denials are only logged as would_deny`,
  );
}

function issuerFindings(policy: CompiledPolicy, add: Add): void {
  // The issuers of a policy that compiled are in file order, one per entry.
  [...policy.issuers.values()].forEach((issuer, i) => {
    if (issuer.jwksFetchWaitMs >= ENVOY_EXT_AUTHZ_TIMEOUT_MS) {
      add(
        'fetch_wait_exceeds_envoy_timeout',
        ['issuers', i, 'jwks_fetch_wait'],
        `jwks_fetch_wait ${formatDuration(issuer.jwksFetchWaitMs, true)} is not below Envoy's ext_authz timeout ` +
          `(${formatDuration(ENVOY_EXT_AUTHZ_TIMEOUT_MS, true)} in envoy/envoy.yaml): Envoy would give up first and answer 503 with no decision logged`,
      );
    }
    if (issuer.requiredTyp === undefined) {
      add(
        'issuer_typ_unchecked',
        ['issuers', i],
        `issuer "${issuer.issuer}" has no require_typ, so its ID tokens and other JWTs for the audience pass as access tokens (RFC 9068 section 4)`,
      );
    }
    if (issuer.maxTokenLifetimeSeconds > LONG_TOKEN_LIFETIME_SECONDS) {
      add(
        'token_lifetime_long',
        ['issuers', i, 'max_token_lifetime'],
        `max_token_lifetime ${formatDuration(issuer.maxTokenLifetimeSeconds)} lets a leaked token of issuer "${issuer.issuer}" be used for up to that long (more than 7 days)`,
      );
    }
  });
}

/** When the policy declares `known_scopes`: route scopes not declared, declared scopes no route uses. */
function scopeFindings(policy: CompiledPolicy, add: Add): void {
  const known = policy.knownScopes;
  if (known === undefined) return;
  const declared = new Set(known);
  const used = new Set<string>();
  for (const service of policy.services)
    for (const route of service.routes) {
      if (route.access.kind !== 'protected') continue;
      route.access.scopes.forEach((scope, k) => {
        used.add(scope);
        if (!declared.has(scope)) {
          add(
            'scope_unknown',
            [...service.routesPath, route.index, 'scopes', k],
            `scope "${scope}" is not in known_scopes (a typo, or a scope to declare)`,
          );
        }
      });
    }
  known.forEach((scope, k) => {
    if (!used.has(scope))
      add('scope_unused', ['known_scopes', k], `known scope "${scope}" is required by no route`);
  });
}

/**
 * Without `known_scopes`: route scopes that no issuer advertises (`scopes_supported` of the discovery
 * documents `authz check-policy` read), a typo most likely. Checked for the routes of services that trust
 * at least one issuer whose scopes were read; the message names the trusted issuers whose scopes are not
 * known, which may grant it. An issuer whose document could not be read, or lists no scopes, is itself
 * reported (`scopes_supported_unread`). `scopes_supported` need not list every scope (OpenID Connect
 * Discovery 1.0 section 3), hence a warning.
 */
function advertisedScopeFindings(
  policy: CompiledPolicy,
  scopesSupported: ReadonlyMap<string, ScopesSupported> | undefined,
  add: Add,
): void {
  if (policy.knownScopes !== undefined || scopesSupported === undefined) return;
  [...policy.issuers.keys()].forEach((iss, i) => {
    const read = scopesSupported.get(iss);
    if (read === undefined || !('problem' in read)) return;
    add(
      'scopes_supported_unread',
      ['issuers', i],
      `known_scopes is absent and issuer "${iss}": ${read.problem}, so route scopes are not checked against the scopes it grants`,
    );
  });
  const issuers = (list: readonly string[]) =>
    `issuer${list.length === 1 ? '' : 's'} ${joinAnd(list.map(quoted))}`;
  for (const service of policy.services) {
    const advertising: string[] = [];
    const silent: string[] = [];
    const granted = new Set<string>();
    for (const iss of service.trust.keys()) {
      const read = scopesSupported.get(iss);
      if (read === undefined || 'problem' in read) {
        silent.push(iss);
        continue;
      }
      advertising.push(iss);
      for (const scope of read.scopes) granted.add(scope);
    }
    if (advertising.length === 0) continue;
    const unknown = silent.length === 0 ? '' : `, and the scopes of ${issuers(silent)} are not known`;
    for (const route of service.routes) {
      if (route.access.kind !== 'protected') continue;
      route.access.scopes.forEach((scope, k) => {
        if (granted.has(scope)) return;
        add(
          'scope_not_advertised',
          [...service.routesPath, route.index, 'scopes', k],
          `scope "${scope}" is not in the scopes_supported of ${issuers(advertising)}${unknown}: a typo, or a scope an identity provider grants without advertising it`,
        );
      });
    }
  }
}

/**
 * The findings about services' hosts (docs/policy.md, "Services"): the first service in file order that
 * lists a host keeps it, exact names are tried before wildcards, and a service without hosts is reached
 * only by name (ext_authz `context_extensions`). A file without `services` has none of these.
 */
function hostFindings(policy: CompiledPolicy, add: Add, lineOf: (path: YamlPath) => number): void {
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
        add(
          'host_claimed_twice',
          path,
          `host "${host}" is listed first by service "${first.service.name}" (line ${lineOf(first.path)}): ` +
            `its requests go there, never to "${service.name}"`,
        );
      }
    });
    const byNameOnly = `only requests the proxy names it for (ext_authz context_extensions service: ${service.name}) reach it`;
    if (hosts.length === 0)
      add('service_unreachable', at, `service "${service.name}" lists no hosts: ${byNameOnly}`);
    else if (lost === hosts.length)
      add(
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
    add(
      'wildcard_overlaps_exact',
      wildcard.path,
      `"*${host.slice(dot)}" of service "${wildcard.service.name}" does not take ${host}: service ` +
        `"${exact.service.name}" lists it exactly (line ${lineOf(exact.path)}), and exact names win`,
    );
  }
}

/** One `accept_risks` entry of a route. */
interface Acceptance {
  readonly code: string;
  readonly reason: string;
  /** The route's path, which the accepted finding must be at or below. */
  readonly routePath: YamlPath;
  /** The entry's own path, for `risk_acceptance_unused`. */
  readonly path: YamlPath;
  used: boolean;
}

/** The `accept_risks` entries of every compiled route (the compiler has checked their form). */
function routeAcceptances(policy: CompiledPolicy, source: SourceData): Acceptance[] {
  const acceptances: Acceptance[] = [];
  for (const service of policy.services)
    for (const route of service.routes) {
      const routePath: YamlPath = [...service.routesPath, route.index];
      const entries = valueAt(source, [...routePath, 'accept_risks']);
      if (!Array.isArray(entries)) continue;
      entries.forEach((entry: unknown, k) => {
        const { code, reason } = (entry ?? {}) as { code?: unknown; reason?: unknown };
        if (typeof code !== 'string' || typeof reason !== 'string') return;
        acceptances.push({ code, reason, routePath, path: [...routePath, 'accept_risks', k], used: false });
      });
    }
  return acceptances;
}

/** The policy's data as written; undefined when the source cannot be read as data. */
type SourceData = unknown;

/**
 * Where a policy's findings are located: one file's YAML, or a document assembled from several files (a
 * policy directory: its locator says which file each path is in, `data` is the assembled document).
 */
export type FindingSource = YamlLocations | { readonly locator: DocumentLocator; readonly data: unknown };

function positionOf(
  locations: FindingSource,
  path: YamlPath,
): YamlPosition | (YamlPosition & { readonly file: string; readonly own: YamlPath }) {
  if (locations instanceof YamlLocations) return locations.positionOf(path);
  const { file, line, column, path: own } = locations.locator.place(path);
  return { file, line, column, own };
}

function sourceData(locations: FindingSource): SourceData {
  if (!(locations instanceof YamlLocations)) return locations.data;
  try {
    return locations.document.toJS({ maxAliasCount: 100 });
  } catch {
    return undefined; // compiling would have refused it: nothing to read
  }
}

function valueAt(data: SourceData, path: YamlPath): unknown {
  let value = data;
  for (const segment of path) {
    if (typeof value !== 'object' || value === null) return undefined;
    value = (value as Record<string | number, unknown>)[segment];
  }
  return value;
}

function startsWith(path: YamlPath, prefix: YamlPath): boolean {
  return prefix.length <= path.length && prefix.every((segment, i) => path[i] === segment);
}

/** Whether display path `path` is inside `parent` (`routes[1].scopes[0]` in `routes[1]`). */
function isBelow(path: string, parent: string): boolean {
  return path.startsWith(`${parent}.`) || path.startsWith(`${parent}[`);
}

function sameMethods(a: ReadonlySet<string> | null, b: ReadonlySet<string> | null): boolean {
  if (a === null || b === null) return a === b;
  return a.size === b.size && [...a].every((method) => b.has(method));
}

/**
 * The earlier routes that take the requests `route` could match, given those whose pattern covers its
 * pattern, in file order: for each of its methods, the first of them that has that method (or every
 * method); undefined when some method is taken by none, so that `route` can still match. A route for every
 * method is only shadowed through an earlier route for every method, and the covering routes before that
 * one take the requests of their methods.
 */
function shadowingRoutes(
  route: CompiledRoute,
  covering: readonly CompiledRoute[],
): CompiledRoute[] | undefined {
  if (route.methods === null) {
    const everyMethod = covering.findIndex((other) => other.methods === null);
    if (everyMethod < 0) return undefined;
    const taken = new Set<string>();
    return covering.slice(0, everyMethod + 1).filter((other) => {
      if (other.methods === null) return true;
      const takesSome = [...other.methods].some((method) => !taken.has(method));
      for (const method of other.methods) taken.add(method);
      return takesSome;
    });
  }
  const taking = new Set<CompiledRoute>();
  for (const method of route.methods) {
    const first = covering.find((other) => other.methods === null || other.methods.has(method));
    if (first === undefined) return undefined;
    taking.add(first);
  }
  return [...taking].sort((a, b) => a.index - b.index);
}

function joinAnd(items: readonly string[]): string {
  return items.length <= 1 ? (items[0] ?? '') : `${items.slice(0, -1).join(', ')} and ${items.at(-1)}`;
}
