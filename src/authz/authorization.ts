import type { Answer } from './answer-for-decision.js';
import type { Decision } from './decision.js';
import type { CompiledRoute, CompiledService } from '../policy/compiled-policy.js';
import type { TokenVerification } from './token-verification.js';

/** Everything authorising one request established, step by step. */
export interface Authorization {
  /** The service the request is for; undefined when none could be chosen (`no_service`, `service_unknown`). */
  readonly service: CompiledService | undefined;
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
