import type { Answer } from '../authz/answer-for-decision.js';
import type { Decision } from '../authz/decision.js';
import { tokenBinding } from '../authz/token-binding.js';
import type { SpanAttributes } from './check-tracing.js';

/**
 * The attributes a Check span ends with: what an operator asks of a slow or refused request ("why?"),
 * from the decision as it is logged (src/log/decision-log.ts), under `authz.*`. Only names and codes the
 * policy or this service chose, and the issuer and binding of a verified token: never a token, a proof, a
 * header value, a path or a subject, which a client controls or which could identify a person.
 * `rpc.grpc.status_code` follows the RPC semantic conventions (0: the Check answered).
 */
export function checkSpanAttributes(input: {
  readonly decision: Decision;
  readonly answer: Answer;
  readonly service: string | undefined;
  readonly policyVersion: string;
}): SpanAttributes {
  const { decision, answer } = input;
  const denial = decision.kind === 'deny' ? decision : decision.wouldDeny;
  const issuer =
    decision.kind === 'allow' ? decision.identity?.issuer : (decision.identity?.issuer ?? decision.issuer);
  const binding = tokenBinding(decision.identity);
  return {
    'rpc.grpc.status_code': 0,
    'authz.decision': decision.kind,
    'authz.status': answer.kind === 'allow' ? 200 : answer.status,
    'authz.reason': decision.kind === 'deny' ? decision.code : (decision.wouldDeny?.code ?? 'allowed'),
    'authz.policy_version': input.policyVersion,
    ...(decision.kind === 'allow' && decision.wouldDeny !== undefined ? { 'authz.would_deny': true } : {}),
    ...(input.service === undefined ? {} : { 'authz.policy_service': input.service }),
    ...(decision.route === undefined ? {} : { 'authz.route': decision.route.name }),
    ...(issuer === undefined ? {} : { 'authz.issuer': issuer }),
    ...(binding === undefined ? {} : { 'authz.token_binding': binding }),
    ...(denial?.missingScopes === undefined || denial.missingScopes.length === 0
      ? {}
      : { 'authz.missing_scopes': [...denial.missingScopes] }),
  };
}
