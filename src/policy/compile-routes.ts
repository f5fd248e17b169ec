import type {
  AuthenticationRequirement,
  CompiledRoute,
  EnforcementMode,
  RouteAccess,
  SenderConstraintSetting,
} from './compiled-policy.js';
import { parseDurationSeconds } from './duration.js';
import { POLICY_DEFAULTS } from './policy-defaults.js';
import type { PathSegment, RouteDocument } from './policy-document.js';
import type { DocumentLocator, Report } from './problem-locator.js';
import { compileRoutePattern, RoutePatternError } from './route-pattern.js';
import type { RouteConstraints } from './sender-constraints.js';

/** The constraints of a route of one service, from the route's own `sender_constraint`. */
export type RouteConstraintsOf = (route: SenderConstraintSetting, isPublic: boolean) => RouteConstraints;

export function compileRoutes(
  entries: readonly RouteDocument[],
  at: PathSegment[],
  defaultMode: EnforcementMode,
  constraints: RouteConstraintsOf,
  locator: DocumentLocator,
  report: Report,
): CompiledRoute[] {
  const routes: CompiledRoute[] = [];
  entries.forEach((entry, i) => {
    const line = locator.lineOf([...at, i]);
    const route = compileRoute(entry, [...at, i], i, line, defaultMode, constraints, report);
    if (route !== undefined) routes.push(route);
  });
  return routes;
}

function compileRoute(
  entry: RouteDocument,
  at: PathSegment[],
  index: number,
  line: number,
  defaultMode: EnforcementMode,
  constraints: RouteConstraintsOf,
  report: Report,
): CompiledRoute | undefined {
  let ok = true;

  entry.methods?.forEach((method, m) => {
    if (method !== method.toUpperCase()) {
      report([...at, 'methods', m], `HTTP methods are case-sensitive: write "${method.toUpperCase()}"`);
      ok = false;
    }
  });

  let matchesPath: ((path: string) => boolean) | undefined;
  try {
    matchesPath = compileRoutePattern(entry.path);
  } catch (error) {
    if (!(error instanceof RoutePatternError)) throw error;
    report([...at, 'path'], `path pattern "${entry.path}": ${error.message}`);
    ok = false;
  }

  let access: RouteAccess | undefined;
  if (entry.public === true && entry.scopes !== undefined) {
    report([...at, 'scopes'], 'a public route takes no scopes: remove "scopes" or "public: true"');
  } else if (entry.public === true && entry.authentication !== undefined) {
    report([...at, 'authentication'], 'a public route takes no authentication requirements');
  } else if (entry.public === true && entry.sender_constraint !== undefined) {
    report(
      [...at, 'sender_constraint'],
      'a public route takes no sender_constraint: no token is read on it, so there is nothing to bind',
    );
  } else if (entry.public === true) {
    access = { kind: 'public' };
  } else if (entry.scopes !== undefined) {
    const authentication = compileAuthentication(entry.authentication, [...at, 'authentication'], report);
    access =
      authentication === undefined
        ? { kind: 'protected', scopes: Object.freeze([...entry.scopes]) }
        : { kind: 'protected', scopes: Object.freeze([...entry.scopes]), authentication };
  } else {
    report(
      at,
      'say what the route requires: "scopes: [...]" (an empty list: any valid token) or "public: true"',
    );
  }

  // The accepted findings themselves are read by policyFindings; here only what the schema cannot say.
  const accepted = new Set<string>();
  entry.accept_risks?.forEach(({ code, reason }, k) => {
    if (accepted.has(code)) report([...at, 'accept_risks', k, 'code'], `${code} is accepted twice`);
    accepted.add(code);
    if (reason.trim().length < 10)
      report([...at, 'accept_risks', k, 'reason'], 'say why the risk is accepted, in at least 10 characters');
  });

  if (!ok || matchesPath === undefined || access === undefined) return undefined;
  const methods = entry.methods === undefined ? null : new Set(entry.methods);
  const senderConstraint: SenderConstraintSetting = Object.freeze({ ...entry.sender_constraint });
  const { senderConstraints, schemes } = constraints(senderConstraint, access.kind === 'public');
  return Object.freeze({
    index,
    line,
    methods,
    pattern: entry.path,
    mode: entry.mode ?? defaultMode,
    name: `${entry.methods?.join(',') ?? '*'} ${entry.path}`,
    matchesPath,
    access,
    senderConstraint,
    senderConstraints,
    schemes,
  });
}

function compileAuthentication(
  entry: RouteDocument['authentication'],
  at: PathSegment[],
  report: Report,
): AuthenticationRequirement | undefined {
  if (entry === undefined) return undefined;
  const requirement: { -readonly [K in keyof AuthenticationRequirement]: AuthenticationRequirement[K] } = {};
  if (entry.acr_values !== undefined) requirement.acrValues = Object.freeze([...entry.acr_values]);
  if (entry.amr !== undefined) requirement.amr = Object.freeze([...entry.amr]);
  if (entry.max_age !== undefined) {
    const seconds = parseDurationSeconds(entry.max_age);
    if (seconds === undefined || seconds > POLICY_DEFAULTS.maxAgeLimitSeconds) {
      report([...at, 'max_age'], 'must be a duration of at most a year (whole seconds, or 30s / 5m / 1h)');
    } else {
      requirement.maxAgeSeconds = seconds;
    }
  }
  return Object.freeze(requirement);
}
