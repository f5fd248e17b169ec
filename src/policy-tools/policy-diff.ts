import type { TokenVerification } from '../authz/token-verification.js';
import { normalisedRequestHost } from '../authz/request-host.js';
import { normalisedRequestPath } from '../authz/request-path.js';
import type { CompiledPolicy, CompiledService } from '../policy/compiled-policy.js';
import { matchRoute } from '../policy/match-route.js';
import { describeOutcome, outcomeOf } from './answer-outcome.js';
import { authorize } from '../authz/authorize.js';
import { SETTLED_VERIFICATION } from './given-claims.js';
import type { OpsRequest } from './ops-request.js';

/** Methods tried for a route that applies to every method, and for the probe paths. */
export const COMMON_METHODS: readonly string[] = Object.freeze([
  'GET',
  'HEAD',
  'POST',
  'PUT',
  'PATCH',
  'DELETE',
  'OPTIONS',
]);

/** Paths tried whatever the routes: the root, the usual health check, and one no route should match. */
export const PROBE_PATHS: readonly string[] = Object.freeze(['/', '/healthz', '/authz-diff-probe']);

/**
 * A host no service should claim (`.invalid` is reserved, RFC 6761 section 6.4): with services, requests
 * for it show what happens to hosts nobody listed.
 */
export const UNCLAIMED_HOST = 'unclaimed.invalid';

/**
 * A kind of token to try each request with. `verificationFor` answers for one policy and request (the
 * token comes from the first issuer the request's service trusts, else the policy's first issuer, in the
 * shape its claims are read into), or undefined for no token.
 */
export interface TokenProfile {
  readonly name: string;
  readonly verificationFor: (policy: CompiledPolicy, request: OpsRequest) => TokenVerification | undefined;
}

/** A request whose outcome differs between the two policies for one token profile. */
export interface DecisionChange {
  readonly method: string;
  readonly path: string;
  /** The request's host, when the policies have services. */
  readonly host?: string;
  /** The service the proxy names (ext_authz context_extensions), for a service without hosts. */
  readonly service?: string;
  readonly profile: string;
  /** The outcome under each policy, as `describeOutcome` puts it. */
  readonly old: string;
  readonly new: string;
}

/** What changed between two policies, and how much was compared. */
export interface PolicyDiff {
  readonly requests: number;
  readonly profiles: readonly string[];
  readonly checks: number;
  readonly changes: readonly DecisionChange[];
}

/**
 * Compares two policies by their effect: example requests drawn from the routes of both (see
 * `diffExamples`) are decided by each under every token profile (see `tokenProfiles`), and the outcomes a
 * client would see — status, error, and the challenge's scope, acr_values and max_age, or a report-only
 * would-deny — are compared. Only issuers' first entries are used, so changes to issuers or token rules
 * are out of its sight: it shows what an edit of the routes does. Pure.
 *
 * @param nowMs milliseconds since the epoch: the strong profiles' login happens now.
 */
export async function diffPolicies(
  oldPolicy: CompiledPolicy,
  newPolicy: CompiledPolicy,
  nowMs: number,
): Promise<PolicyDiff> {
  const examples = diffExamples([oldPolicy, newPolicy]);
  const profiles = tokenProfiles(oldPolicy, newPolicy, nowMs);
  const changes: DecisionChange[] = [];
  for (const request of examples) {
    for (const profile of profiles) {
      const before = await outcomeText(oldPolicy, request, profile, nowMs);
      const after = await outcomeText(newPolicy, request, profile, nowMs);
      if (before !== after) {
        changes.push({
          method: request.method,
          path: request.target,
          ...(request.host === undefined ? {} : { host: request.host }),
          ...(request.serviceName === undefined ? {} : { service: request.serviceName }),
          profile: profile.name,
          old: before,
          new: after,
        });
      }
    }
  }
  return {
    requests: examples.length,
    profiles: profiles.map((profile) => profile.name),
    checks: examples.length * profiles.length,
    changes,
  };
}

async function outcomeText(
  policy: CompiledPolicy,
  request: OpsRequest,
  profile: TokenProfile,
  nowMs: number,
): Promise<string> {
  const verification = profile.verificationFor(policy, request);
  const authorization = await authorize(
    policy,
    {
      method: request.method,
      target: request.target,
      host: request.host,
      serviceName: request.serviceName,
      // Unbound bearer tokens: a route that comes to require a binding shows as a change for them.
      credentials:
        verification === undefined
          ? { kind: 'none' }
          : { kind: 'presented', scheme: 'Bearer', value: verification },
    },
    SETTLED_VERIFICATION,
    () => nowMs,
  );
  return describeOutcome(outcomeOf(authorization));
}

/**
 * Example requests: for each route, its methods (or COMMON_METHODS) with a path its pattern matches —
 * `{name}` as `x1`, `x2`...; a `/**` rest both empty and as `/x1/x2` — then COMMON_METHODS with each of
 * PROBE_PATHS. Duplicates are dropped; the order is stable.
 *
 * Without services in either policy, requests carry no host. With services, they go where requests go:
 * every host either policy lists (a wildcard as `x1.` and its suffix), the name of each service without
 * hosts (as the proxy would send it), and UNCLAIMED_HOST. Of the hosts that reach the same service in
 * each policy only the first is used, with the routes of the services it reaches: so a host moved from
 * one service to another, or claimed by none any more, is seen too.
 */
export function diffExamples(policies: readonly CompiledPolicy[]): OpsRequest[] {
  const seen = new Set<string>();
  const examples: OpsRequest[] = [];
  const add = (method: string, target: string, where: Where) => {
    const key = `${method} ${target} ${where.host ?? ''} ${where.serviceName ?? ''}`;
    if (seen.has(key)) return;
    seen.add(key);
    examples.push({ method, target, ...where });
  };
  const addFor = (services: readonly CompiledService[], where: Where) => {
    for (const route of services.flatMap((service) => service.routes)) {
      const methods = route.methods === null ? COMMON_METHODS : [...route.methods];
      for (const path of examplePaths(route.pattern)) for (const method of methods) add(method, path, where);
    }
    for (const path of PROBE_PATHS) for (const method of COMMON_METHODS) add(method, path, where);
  };

  if (!policies.some((policy) => policy.explicitServices)) {
    addFor(
      policies.flatMap((policy) => policy.services),
      {},
    );
    return examples;
  }
  const candidates: Where[] = [];
  for (const policy of policies) {
    for (const service of policy.explicitServices ? policy.services : []) {
      const hosts = service.hosts ?? [];
      if (hosts.length === 0) candidates.push({ serviceName: service.name });
      for (const host of hosts)
        candidates.push({ host: host.startsWith('*.') ? `x1${host.slice(1)}` : host });
    }
  }
  candidates.push({ host: UNCLAIMED_HOST });
  const reached = new Set<string>();
  for (const where of candidates) {
    const services = policies.map((policy) => serviceFor(policy, where));
    // Positions tell the policies apart: the same name in two of them is two services.
    const key = services.map((service) => service?.name ?? '').join(' ');
    if (reached.has(key)) continue;
    reached.add(key);
    addFor(
      services.filter((service) => service !== undefined),
      where,
    );
  }
  return examples;
}

/** Where a request goes: a host, or a service named by the proxy; neither for a policy without services. */
type Where = Pick<OpsRequest, 'host' | 'serviceName'>;

/** The service of a policy a request is for, as `authorize` chooses it; undefined when none is. */
function serviceFor(policy: CompiledPolicy, where: Where): CompiledService | undefined {
  const { serviceSelector } = policy;
  return where.serviceName !== undefined
    ? serviceSelector.byName(where.serviceName)
    : serviceSelector.forHost(normalisedRequestHost(where.host));
}

/** Concrete paths a (valid) route pattern matches. */
export function examplePaths(pattern: string): string[] {
  if (pattern === '/') return ['/'];
  let parameter = 0;
  const segments = pattern
    .slice(1)
    .split('/')
    .map((segment) => (/^\{.*\}$/.test(segment) ? `x${++parameter}` : segment));
  if (segments.at(-1) !== '**') return [`/${segments.join('/')}`];
  const prefix = segments.length === 1 ? '' : `/${segments.slice(0, -1).join('/')}`;
  return [prefix === '' ? '/' : prefix, `${prefix}/x1/x2`];
}

/**
 * The token profiles: no token; no scopes with a strong login; every scope either policy mentions
 * (routes and known_scopes) with a strong login — one profile per acr value when the policies name
 * several, since a token carries one — and every scope with a weak login (no acr, amr or auth_time).
 * A strong login has every amr either policy names and auth_time now. Then, per request, a token with
 * just enough for the route OLD matches (its scopes, its first acr value, its amr, auth_time now), and
 * one with just enough for NEW's: these show a requirement added or dropped, which the all-scopes token
 * cannot.
 */
export function tokenProfiles(
  oldPolicy: CompiledPolicy,
  newPolicy: CompiledPolicy,
  nowMs: number,
): TokenProfile[] {
  const scopes = new Set<string>();
  const acrValues = new Set<string>();
  const amr = new Set<string>();
  for (const policy of [oldPolicy, newPolicy]) {
    for (const scope of policy.knownScopes ?? []) scopes.add(scope);
    for (const route of policy.services.flatMap((service) => service.routes)) {
      if (route.access.kind !== 'protected') continue;
      for (const scope of route.access.scopes) scopes.add(scope);
      for (const value of route.access.authentication?.acrValues ?? []) acrValues.add(value);
      for (const method of route.access.authentication?.amr ?? []) amr.add(method);
    }
  }
  const acrs = [...acrValues].sort();
  const authTime = Math.floor(nowMs / 1000);
  const strong = (acr: string | undefined, methods: ReadonlySet<string> = amr): Login => ({
    acr,
    amr: methods,
    authTime,
  });
  const weak: Login = { acr: undefined, amr: new Set(), authTime: undefined };
  const fixed =
    (tokenScopes: ReadonlySet<string>, login: Login) =>
    (policy: CompiledPolicy, request: OpsRequest): TokenVerification | undefined =>
      verifiedAs(policy, request, tokenScopes, login);
  const enoughFor =
    (reference: CompiledPolicy) =>
    (policy: CompiledPolicy, request: OpsRequest): TokenVerification | undefined => {
      const normalised = normalisedRequestPath(request.target);
      const service = serviceFor(reference, request);
      const route =
        'path' in normalised && service !== undefined
          ? matchRoute(service, request.method, normalised.path)
          : undefined;
      if (route?.access.kind !== 'protected') return verifiedAs(policy, request, new Set(), strong(acrs[0]));
      const auth = route.access.authentication;
      return verifiedAs(
        policy,
        request,
        new Set(route.access.scopes),
        strong(auth?.acrValues?.[0] ?? acrs[0], new Set(auth?.amr ?? [])),
      );
    };

  const profiles: TokenProfile[] = [
    { name: 'no-token', verificationFor: () => undefined },
    { name: 'no-scopes', verificationFor: fixed(new Set(), strong(acrs[0])) },
  ];
  if (acrs.length <= 1) {
    profiles.push({ name: 'all-scopes', verificationFor: fixed(scopes, strong(acrs[0])) });
  } else {
    for (const acr of acrs) {
      profiles.push({ name: `all-scopes+acr=${acr}`, verificationFor: fixed(scopes, strong(acr)) });
    }
  }
  profiles.push(
    { name: 'all-scopes+weak-login', verificationFor: fixed(scopes, weak) },
    { name: 'enough-for-old', verificationFor: enoughFor(oldPolicy) },
    { name: 'enough-for-new', verificationFor: enoughFor(newPolicy) },
  );
  return profiles;
}

/** The login facts of a profile's token. */
interface Login {
  readonly acr: string | undefined;
  readonly amr: ReadonlySet<string>;
  readonly authTime: number | undefined;
}

/**
 * A verified token of the first issuer the request's service trusts (else the policy's first issuer),
 * meant for every audience of that issuer; undefined (no token) for a policy without issuers.
 */
function verifiedAs(
  policy: CompiledPolicy,
  request: OpsRequest,
  scopes: ReadonlySet<string>,
  login: Login,
): TokenVerification | undefined {
  const trusted = serviceFor(policy, request)?.trust.keys().next().value;
  const issuer =
    (trusted === undefined ? undefined : policy.issuers.get(trusted)) ?? policy.issuers.values().next().value;
  if (issuer === undefined) return undefined;
  return {
    kind: 'verified',
    token: {
      issuer: issuer.issuer,
      subject: 'diff-probe',
      scopes,
      ...login,
      audiences: new Set(issuer.audiences), // meant for every service that trusts the issuer
      headerClaims: new Map(),
      confirmation: {},
    },
  };
}
