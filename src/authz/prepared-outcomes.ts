import {
  answerForDecision,
  denialAnswer,
  denialHeaders,
  type Answer,
  type DenialHeaders,
} from './answer-for-decision.js';
import type { Authorization } from './authorization.js';
import type { AuthScheme } from './auth-scheme.js';
import type { Decision, Denial } from './decision.js';
import { applyEnforcementMode } from './enforcement-mode.js';
import type { RequestPathProblem } from './request-path.js';
import type { CompiledRoute, CompiledService } from '../policy/compiled-policy.js';

/**
 * What authorising requests for one service needs that depends on the service alone, built once per
 * compiled service rather than per request: the decisions made before any credential is verified (no route,
 * an unsafe path, no token on a protected route, a public route), each with its whole authorization
 * (enforcement mode applied, answers built), and the `insufficient_scope` challenge of every route.
 *
 * Each prepared authorization is what the regular path (`applyEnforcementMode`, `answerForDecision`)
 * gives for that decision, computed by that path once; so answers stay byte-for-byte the same. Everything
 * here is frozen and shared between requests.
 */
export interface PreparedOutcomes {
  readonly service: CompiledService;
  /** No route matches the method and path. */
  readonly noRoute: Denial;
  /** The path cannot be matched safely, by reason. */
  readonly pathInvalid: Readonly<Record<RequestPathProblem, Denial>>;
  /** A protected route was requested without bearer credentials. */
  credentialsMissing(route: CompiledRoute): Denial;
  /** A public route was requested. */
  publicAllow(route: CompiledRoute): Decision;
  /** The complete authorization of a decision above, or undefined for any other decision. */
  authorizationOf(decision: Decision): Authorization | undefined;
  /** `answerForDecision` with the service's realm and headers, from what was built at load where it can be. */
  answer(decision: Decision): Answer;
  /** Every answer of the prepared authorizations, for adapters that encode answers once too. */
  readonly answers: ReadonlySet<Answer>;
}

/** The descriptions of the decisions made before any credential is verified. */
const DESCRIPTIONS = Object.freeze({
  noRoute: 'no route allows this request',
  credentialsMissing: (route: CompiledRoute) =>
    route.schemes.bearer ? 'a bearer token is required' : 'a DPoP-bound access token is required',
  pathInvalid: (problem: RequestPathProblem) => `the request path is not acceptable (${problem})`,
});

const PATH_PROBLEMS: readonly RequestPathProblem[] = [
  'not_origin_form',
  'dot_segment',
  'empty_segment',
  'encoded_separator',
  'bad_character',
];

// Keyed by the compiled service: entries go with the policy when a reload drops it.
const prepared = new WeakMap<CompiledService, PreparedOutcomes>();

/** The prepared outcomes of a service, built on first use and kept for as long as its policy lives. */
export function preparedOutcomes(service: CompiledService): PreparedOutcomes {
  let outcomes = prepared.get(service);
  if (outcomes === undefined) {
    outcomes = prepareOutcomes(service);
    prepared.set(service, outcomes);
  }
  return outcomes;
}

function prepareOutcomes(service: CompiledService): PreparedOutcomes {
  const { realm, claimHeaders, foreignClaimHeaders } = service;
  const algorithms = service.dpop.algorithms;
  const authorizations = new Map<Decision, Authorization>();
  const answers = new Set<Answer>();
  // The decisions prepared here carry no identity, required scopes or step-up, so their answers depend on
  // the code and description alone (and the realm): each is built once and shared by every route.
  const sharedAnswers = new Map<string, Answer>();
  const sharedAnswer = (decision: Decision): Answer => {
    // A challenge names the schemes the route accepts: routes that differ there differ in their answers.
    const key =
      decision.kind === 'allow'
        ? 'allow'
        : `${decision.code} ${decision.description} ${schemesKey(decision.route)}`;
    let answer = sharedAnswers.get(key);
    if (answer === undefined) {
      answer = deepFreeze(answerForDecision(decision, realm, claimHeaders, algorithms, foreignClaimHeaders));
      sharedAnswers.set(key, answer);
      answers.add(answer);
    }
    return answer;
  };
  const prepare = <D extends Decision>(decision: D): D => {
    const frozen = deepFreeze(decision);
    const enforced = applyEnforcementMode(service, frozen);
    const wouldDeny = enforced.kind === 'allow' ? enforced.wouldDeny : undefined;
    authorizations.set(
      frozen,
      Object.freeze({
        service,
        route: enforced.route,
        verification: undefined,
        decision: enforced === frozen ? frozen : Object.freeze(enforced),
        answer: sharedAnswer(enforced),
        wouldDenyAnswer: wouldDeny === undefined ? undefined : sharedAnswer(wouldDeny),
      }),
    );
    return frozen;
  };

  const noRoute = prepare<Denial>({ kind: 'deny', code: 'no_route', description: DESCRIPTIONS.noRoute });
  const pathInvalid = Object.fromEntries(
    PATH_PROBLEMS.map((problem) => [
      problem,
      prepare<Denial>({ kind: 'deny', code: 'path_invalid', description: DESCRIPTIONS.pathInvalid(problem) }),
    ]),
  ) as Record<RequestPathProblem, Denial>;
  // By route index; each route has one of the two, as its access says.
  const missing: Denial[] = [];
  const publicAllows: Decision[] = [];
  // By the required-scopes array of each route (the one decideAccess passes on), then the scheme used.
  const scopeHeaders = new Map<readonly string[], Readonly<Record<AuthScheme, DenialHeaders>>>();
  const scopeHeadersByText = new Map<string, Readonly<Record<AuthScheme, DenialHeaders>>>();
  for (const route of service.routes) {
    if (route.access.kind === 'public') {
      publicAllows[route.index] = prepare<Decision>({ kind: 'allow', route });
      continue;
    }
    missing[route.index] = prepare<Denial>({
      kind: 'deny',
      code: 'credentials_missing',
      description: DESCRIPTIONS.credentialsMissing(route),
      route,
    });
    // The challenge names the route's required scopes (the array decideAccess passes on), nothing else,
    // under the scheme the client used, beside the other schemes the route accepts.
    const requiredScopes = route.access.scopes;
    const text = `${requiredScopes.join(' ')} ${schemesKey(route)}`;
    let headers = scopeHeadersByText.get(text);
    if (headers === undefined) {
      const forScheme = (scheme: AuthScheme): DenialHeaders => {
        const denial: Denial = {
          kind: 'deny',
          code: 'insufficient_scope',
          description: '',
          requiredScopes,
          route,
          scheme,
        };
        return deepFreeze(denialHeaders(denial, realm, algorithms));
      };
      headers = Object.freeze({ Bearer: forScheme('Bearer'), DPoP: forScheme('DPoP') });
      scopeHeadersByText.set(text, headers);
    }
    scopeHeaders.set(requiredScopes, headers);
  }

  return Object.freeze({
    service,
    noRoute,
    pathInvalid: Object.freeze(pathInvalid),
    credentialsMissing: (route: CompiledRoute) => preparedFor(route, missing[route.index]),
    publicAllow: (route: CompiledRoute) => preparedFor(route, publicAllows[route.index]),
    authorizationOf: (decision: Decision) => authorizations.get(decision),
    answer: (decision: Decision): Answer => {
      if (decision.kind === 'deny' && decision.code === 'insufficient_scope') {
        const headers =
          decision.requiredScopes === undefined ? undefined : scopeHeaders.get(decision.requiredScopes);
        // Only the body, which names the missing scopes, is left to build.
        if (headers !== undefined) return denialAnswer(decision, headers[decision.scheme ?? 'Bearer']);
      }
      return answerForDecision(decision, realm, claimHeaders, algorithms, foreignClaimHeaders);
    },
    answers,
  });
}

/** What of a route its challenges depend on, besides the realm: the schemes it accepts. */
function schemesKey(route: CompiledRoute | undefined): string {
  const schemes = route?.schemes;
  return schemes === undefined ? 'bearer' : `${schemes.bearer ? 'bearer' : ''}+${schemes.dpop ? 'dpop' : ''}`;
}

/** The decision prepared for a route; a route of another policy is a programming error. */
function preparedFor<D extends Decision>(route: CompiledRoute, decision: D | undefined): D {
  if (decision?.route !== route) {
    throw new Error(
      `route ${route.index} (${route.name}) has no prepared decision of this kind in this service`,
    );
  }
  return decision;
}

/** Freezes an answer or decision and the arrays and plain objects in it; routes and sets are left alone. */
function deepFreeze<T>(value: T): T {
  if (typeof value !== 'object' || value === null || Object.isFrozen(value)) return value;
  if (!Array.isArray(value) && Object.getPrototypeOf(value) !== Object.prototype) return value;
  for (const member of Object.values(value)) deepFreeze(member);
  return Object.freeze(value);
}
