import type { TokenVerification } from '../authz/token-verification.js';
import { normalisedRequestPath } from '../authz/request-path.js';
import type { CompiledPolicy } from '../policy/compiled-policy.js';
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
 * A kind of token to try each request with. `verificationFor` answers for one policy and request (the
 * token comes from that policy's first issuer, in the shape its claims are read into), or undefined for
 * no token.
 */
export interface TokenProfile {
  readonly name: string;
  readonly verificationFor: (policy: CompiledPolicy, request: OpsRequest) => TokenVerification | undefined;
}

/** A request whose outcome differs between the two policies for one token profile. */
export interface DecisionChange {
  readonly method: string;
  readonly path: string;
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
      credentials: verification === undefined ? { kind: 'none' } : { kind: 'presented', value: verification },
    },
    SETTLED_VERIFICATION,
    () => nowMs,
  );
  return describeOutcome(outcomeOf(authorization));
}

/**
 * Example requests: for each route of each policy, its methods (or COMMON_METHODS) with a path its
 * pattern matches — `{name}` as `x1`, `x2`...; a `/**` rest both empty and as `/x1/x2` — then
 * COMMON_METHODS with each of PROBE_PATHS. Duplicates are dropped; the order is stable.
 */
export function diffExamples(policies: readonly CompiledPolicy[]): OpsRequest[] {
  const seen = new Set<string>();
  const examples: OpsRequest[] = [];
  const add = (method: string, target: string) => {
    const key = `${method} ${target}`;
    if (seen.has(key)) return;
    seen.add(key);
    examples.push({ method, target });
  };
  for (const policy of policies) {
    for (const route of policy.routes) {
      const methods = route.methods === null ? COMMON_METHODS : [...route.methods];
      for (const path of examplePaths(route.pattern)) for (const method of methods) add(method, path);
    }
  }
  for (const path of PROBE_PATHS) for (const method of COMMON_METHODS) add(method, path);
  return examples;
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
    for (const route of policy.routes) {
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
    (policy: CompiledPolicy): TokenVerification | undefined =>
      verifiedAs(policy, tokenScopes, login);
  const enoughFor =
    (reference: CompiledPolicy) =>
    (policy: CompiledPolicy, request: OpsRequest): TokenVerification | undefined => {
      const normalised = normalisedRequestPath(request.target);
      const route = 'path' in normalised ? matchRoute(reference, request.method, normalised.path) : undefined;
      if (route?.access.kind !== 'protected') return verifiedAs(policy, new Set(), strong(acrs[0]));
      const auth = route.access.authentication;
      return verifiedAs(
        policy,
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

/** A verified token of the policy's first issuer; undefined (no token) for a policy without issuers. */
function verifiedAs(
  policy: CompiledPolicy,
  scopes: ReadonlySet<string>,
  login: Login,
): TokenVerification | undefined {
  const issuer = policy.issuers.keys().next().value;
  if (issuer === undefined) return undefined;
  return { kind: 'verified', token: { issuer, subject: 'diff-probe', scopes, ...login } };
}
