import type { Authorization } from './authorization.js';
import type { CredentialVerifier } from './credentials.js';
import { decideAccess, routePreparedRequest, type RouteStep } from './decide.js';
import type { Decision } from './decision.js';
import { applyEnforcementMode } from './enforcement-mode.js';
import { preparedOutcomes } from './prepared-outcomes.js';
import { chooseService } from './service-selection.js';
import { verificationForService } from './service-trust.js';
import type { CompiledPolicy } from '../policy/compiled-policy.js';
import type { RequestFacts } from './request-facts.js';
import type { TokenVerification, VerifiedToken } from './token-verification.js';
import {
  bindingOutcome,
  replayOutcome,
  bindingPrecheck,
  senderConstraintFor,
  type BindingRefusal,
} from './sender-constraint.js';
import type { CompiledRoute, CompiledService } from '../policy/compiled-policy.js';

export type { Authorization } from './authorization.js';

/**
 * The one decision pipeline, used by the gRPC handler, `authz explain`, `test`, `diff` and the bench:
 * choose the service (`service-selection.ts`), route the request, verify its credentials when the route
 * needs them, check that the token may be used as presented (its binding and the route's sender constraint,
 * with the proofs the verifier checks: `sender-constraint.ts`), decide, apply the enforcement mode, and
 * answer. Pure but for what the verifier does (fetching keys, checking proofs, for a real one).
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
    const refusal =
      verification.kind === 'verified'
        ? await bindingRefusal(service, step, request, verification.token, verifier)
        : undefined;
    decision =
      refusal === undefined
        ? decideAccess(step.route, verification, now())
        : bindingDenial(
            step.route,
            refusal,
            verification.kind === 'verified' ? verification.token : undefined,
          );
    // Errors are challenged under the scheme the token came with (RFC 9449 section 7.1).
    if (decision.kind === 'deny') decision = { ...decision, scheme: step.scheme };
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

/**
 * Whether a verified token may be used as presented: its binding and the route's sender constraint
 * (`sender-constraint.ts`), with the proofs checked by the verifier only when something is to be proved.
 */
async function bindingRefusal<Presented>(
  service: CompiledService,
  step: Extract<RouteStep<Presented>, { kind: 'verify' }>,
  request: RequestFacts<Presented>,
  token: VerifiedToken,
  verifier: CredentialVerifier<Presented>,
): Promise<BindingRefusal | undefined> {
  const needs = bindingPrecheck(senderConstraintFor(step.route, token.issuer), step.scheme, token);
  if ('code' in needs) return needs;
  if (!needs.dpop && !needs.certificate) return undefined;
  const proofs = await verifier.prove(step.presented, {
    token,
    method: request.method,
    uris: service.publicOrigins.map((origin) => origin + step.path),
    service: service.name,
    dpop: needs.dpop ? service.dpop : undefined,
    certificate: needs.certificate,
    dpopProofs: request.dpopProofs ?? [],
    clientCertificate: request.clientCertificate,
  });
  const refusal = bindingOutcome(needs, token, proofs);
  if (refusal !== undefined || proofs.dpop.kind !== 'valid') return refusal;
  // The token verified, the proof verified and its key is the token's: only now is its jti remembered.
  return replayOutcome(await proofs.dpop.claim());
}

/** The denial for a binding refusal: with the identity, so the log says whose token it was. */
function bindingDenial(
  route: CompiledRoute,
  refusal: BindingRefusal,
  token: VerifiedToken | undefined,
): Decision {
  return {
    kind: 'deny',
    code: refusal.code,
    description: refusal.description,
    route,
    ...(refusal.nonce === undefined ? {} : { dpopNonce: refusal.nonce }),
    ...(refusal.retryAfterSeconds === undefined ? {} : { retryAfterSeconds: refusal.retryAfterSeconds }),
    ...(token === undefined
      ? {}
      : {
          issuer: token.issuer,
          ...(token.subject === undefined ? {} : { subject: token.subject }),
          identity: token,
        }),
  };
}
