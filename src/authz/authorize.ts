import type { Authorization } from './authorization.js';
import type { CredentialVerifier } from './credentials.js';
import { decideAccess, routePreparedRequest } from './decide.js';
import type { Decision } from './decision.js';
import { applyEnforcementMode } from './enforcement-mode.js';
import { preparedOutcomes } from './prepared-outcomes.js';
import { chooseService } from './service-selection.js';
import { verificationForService } from './service-trust.js';
import type { CompiledPolicy } from '../policy/compiled-policy.js';
import type { RequestFacts } from './request-facts.js';
import type { TokenVerification } from './token-verification.js';

export type { Authorization } from './authorization.js';

/**
 * The one decision pipeline, used by the gRPC handler, `authz explain`, `test`, `diff` and the bench:
 * choose the service (`service-selection.ts`), route the request, verify its credentials when the route needs them, decide, apply the enforcement
 * mode, and answer. Pure but for what the verifier does (fetching keys, for a real one).
 *
 * A request decided before any credential is verified (no route, an unsafe path, no token, a public
 * route) gets the authorization prepared for its service at first use (`prepared-outcomes.ts`): the same
 * values this pipeline would compute, built once and shared, so treat the result as read-only.
 *
 * @param now milliseconds since the epoch, read once verification is done (for `max_age`).
 */
export async function authorize<Presented>(
  policy: CompiledPolicy,
  request: RequestFacts<Presented>,
  verifier: CredentialVerifier<Presented>,
  now: () => number,
): Promise<Authorization> {
  const choice = chooseService(policy, request);
  if (choice.kind === 'decided') return choice.authorization;
  const { service } = choice;
  const prepared = preparedOutcomes(service);
  const step = routePreparedRequest(prepared, request);
  let decision: Decision;
  let verification: TokenVerification | undefined;
  if (step.kind === 'decided') {
    const known = prepared.authorizationOf(step.decision);
    if (known !== undefined) return known;
    decision = step.decision;
  } else {
    verification = verificationForService(service, await verifier.verify(step.presented));
    decision = decideAccess(step.route, verification, now());
  }
  const enforced = applyEnforcementMode(service, decision);
  const wouldDeny = enforced.kind === 'allow' ? enforced.wouldDeny : undefined;
  return {
    service,
    route: enforced.route,
    verification,
    decision: enforced,
    answer: prepared.answer(enforced),
    wouldDenyAnswer: wouldDeny === undefined ? undefined : prepared.answer(wouldDeny),
  };
}
