import { answerForDecision, type Answer } from './answer-for-decision.js';
import type { CredentialVerifier } from './credentials.js';
import { applyEnforcementMode, decideAccess, routeRequest } from './decide.js';
import type { Decision } from './decision.js';
import type { CompiledPolicy, CompiledRoute } from '../policy/compiled-policy.js';
import type { RequestFacts } from './request-facts.js';
import type { TokenVerification } from './token-verification.js';

/** Everything authorising one request established, step by step. */
export interface Authorization {
  /** The route that matched, if any (also when the decision came before any credential was verified). */
  readonly route: CompiledRoute | undefined;
  /** The verification of the presented credentials, when the route needed them and some were presented. */
  readonly verification: TokenVerification | undefined;
  /** The decision after the enforcement mode: a report-only denial is an allow with `wouldDeny`. */
  readonly decision: Decision;
  /** What the client or the upstream sees. */
  readonly answer: Answer;
  /** Under report-only, the answer the denial would have had; undefined otherwise. */
  readonly wouldDenyAnswer: Answer | undefined;
}

/**
 * The one decision pipeline, used by the gRPC handler, `authz explain`, `test`, `diff` and the bench:
 * route the request, verify its credentials when the route needs them, decide, apply the enforcement
 * mode, and answer. Pure but for what the verifier does (fetching keys, for a real one).
 *
 * @param now milliseconds since the epoch, read once verification is done (for `max_age`).
 */
export async function authorize<Presented>(
  policy: CompiledPolicy,
  request: RequestFacts<Presented>,
  verifier: CredentialVerifier<Presented>,
  now: () => number,
): Promise<Authorization> {
  const step = routeRequest(policy, request);
  let decision: Decision;
  let verification: TokenVerification | undefined;
  if (step.kind === 'decided') {
    decision = step.decision;
  } else {
    verification = await verifier.verify(step.presented);
    decision = decideAccess(step.route, verification, now());
  }
  const enforced = applyEnforcementMode(policy, decision);
  const wouldDeny = enforced.kind === 'allow' ? enforced.wouldDeny : undefined;
  return {
    route: enforced.route,
    verification,
    decision: enforced,
    answer: answerForDecision(enforced, policy.realm),
    wouldDenyAnswer: wouldDeny === undefined ? undefined : answerForDecision(wouldDeny, policy.realm),
  };
}
