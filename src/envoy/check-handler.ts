import type { Logger } from 'pino';
import { authorize } from '../authz/authorize.js';
import type { CredentialVerifier } from '../authz/credentials.js';
import type { Decision } from '../authz/decision.js';
import type { CompiledPolicy } from '../policy/compiled-policy.js';
import { logDecision } from '../log/decision-log.js';
import type { CheckRequestMessage, CheckResponseMessage } from './check-messages.js';
import { checkResponseForAnswer } from './check-response-for-answer.js';
import { requestFactsFromCheck } from './request-facts-from-check.js';

/** The policy in force and the verifier of its issuers' tokens; swapped together, read once per request. */
export interface ActivePolicy {
  readonly policy: CompiledPolicy;
  readonly verifier: CredentialVerifier<string>;
}

export interface CheckHandlerDependencies {
  readonly active: () => ActivePolicy;
  readonly logger: Logger;
  /** Milliseconds since the epoch. */
  readonly now: () => number;
  /** Sees every decision (metrics), whether or not it is logged. */
  readonly observe?: (decision: Decision, durationMs: number) => void;
  /**
   * The share of allow decisions that are logged, 0 to 1 (default 1). Denials and report-only would-denials
   * are always logged: they are what an operator looks for; plain allows are the bulk of high traffic.
   */
  readonly logAllowedSample?: number;
  /** A number in [0, 1); injectable for tests. */
  readonly random?: () => number;
}

/**
 * The Envoy adapter: CheckRequest in, CheckResponse out. Every request, allowed or denied, is answered
 * with a CheckResponse and logged exactly once; only an internal fault rejects (a gRPC error), which Envoy
 * turns into `status_on_error` because `failure_mode_allow` is off.
 */
export function createCheckHandler(deps: CheckHandlerDependencies) {
  const sampleRate = deps.logAllowedSample ?? 1;
  return async function check(request: CheckRequestMessage): Promise<CheckResponseMessage> {
    const started = performance.now();
    const { policy, verifier } = deps.active(); // one version for the whole request
    const facts = requestFactsFromCheck(request);
    const { decision, answer } = await authorize(policy, facts, verifier, deps.now);
    const durationMs = performance.now() - started;
    deps.observe?.(decision, durationMs);
    const sampled =
      decision.kind === 'deny' ||
      decision.wouldDeny !== undefined ||
      (deps.random ?? Math.random)() < sampleRate;
    if (sampled) {
      logDecision(deps.logger, {
        decision,
        answer,
        method: facts.method,
        target: facts.target,
        requestId: facts.requestId,
        policyVersion: policy.version,
        durationMs,
      });
    }
    return checkResponseForAnswer(answer);
  };
}
