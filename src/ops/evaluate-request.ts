import type { TokenVerification } from '../authz/token-verification.js';
import { answerForDecision, type Answer } from '../authz/answer-for-decision.js';
import { applyEnforcementMode, decideAccess, routeRequest } from '../authz/decide.js';
import type { Decision } from '../authz/decision.js';
import type { CompiledPolicy, CompiledRoute } from '../policy/compiled-policy.js';

/** A request to evaluate: method and request target (a query string may follow the path). */
export interface OpsRequest {
  readonly method: string;
  readonly target: string;
}

/**
 * The credentials a request presents: none, or a bearer token together with what verifying it gave. The
 * verification is supplied by the caller (a real `verifyAccessToken`, or given claims), so that this
 * module stays pure and the server's own decision core does all the deciding.
 */
export type PresentedCredentials =
  | { readonly kind: 'none' }
  | { readonly kind: 'bearer'; readonly token: string; readonly verification: TokenVerification };

/**
 * Stands in for a token in the `Authorization` header when only claims are given: `routeRequest` reads
 * the credentials from the header, and a well-formed token is what given claims represent.
 */
export const GIVEN_CLAIMS_TOKEN = 'given-claims';

/** Everything the server would do with one request, step by step. */
export interface Evaluation {
  /** The route that matched, if any (also when the decision came before any token was read). */
  readonly route: CompiledRoute | undefined;
  /** The token's verification, when the route needed a token and one was presented. */
  readonly verification: TokenVerification | undefined;
  /** The decision after the enforcement mode: a report-only denial is an allow with `wouldDeny`. */
  readonly decision: Decision;
  /** What the client or the upstream sees. */
  readonly answer: Answer;
  /** Under report-only, the answer the denial would have had; undefined otherwise. */
  readonly wouldDenyAnswer: Answer | undefined;
}

/**
 * Runs a request through the server's decision core — `routeRequest`, `decideAccess`,
 * `applyEnforcementMode`, `answerForDecision`, in the order the Envoy adapter calls them — with the token's
 * verification supplied. Pure.
 *
 * @param nowMs milliseconds since the epoch, for `max_age`.
 */
export function evaluateRequest(
  policy: CompiledPolicy,
  request: OpsRequest,
  credentials: PresentedCredentials,
  nowMs: number,
): Evaluation {
  const authorization = credentials.kind === 'none' ? [] : [`Bearer ${credentials.token}`];
  const step = routeRequest(policy, { method: request.method, target: request.target, authorization });
  let decision: Decision;
  let verification: TokenVerification | undefined;
  let route: CompiledRoute | undefined;
  if (step.kind === 'decided') {
    decision = step.decision;
    route = decision.route;
  } else {
    // routeRequest only asks for verification when a token was presented.
    verification = (credentials as Extract<PresentedCredentials, { kind: 'bearer' }>).verification;
    decision = decideAccess(step.route, verification, nowMs);
    route = step.route;
  }
  const enforced = applyEnforcementMode(policy, decision);
  const wouldDeny = enforced.kind === 'allow' ? enforced.wouldDeny : undefined;
  return {
    route,
    verification,
    decision: enforced,
    answer: answerForDecision(enforced, policy.realm),
    wouldDenyAnswer: wouldDeny === undefined ? undefined : answerForDecision(wouldDeny, policy.realm),
  };
}
