import type { Logger } from 'pino';
import type { Answer } from '../authz/answer-for-decision.js';
import { authorize } from '../authz/authorize.js';
import type { CredentialVerifier } from '../authz/credentials.js';
import type { Decision } from '../authz/decision.js';
import { preparedOutcomes } from '../authz/prepared-outcomes.js';
import type { CompiledPolicy, CompiledService } from '../policy/compiled-policy.js';
import { decisionLogger, logDecision } from '../log/decision-log.js';
import type { CheckSpan, CheckTracing, TraceFieldReader } from '../tracing/check-tracing.js';
import { checkSpanAttributes } from '../tracing/check-span-attributes.js';
import type { CheckRequestMessage, CheckResponseMessage } from './check-messages.js';
import { checkFaultKind } from './check-fault-kind.js';
import { checkResponseForAnswer } from './check-response-for-answer.js';
import { requestFactsFromCheck } from './request-facts-from-check.js';
import { NO_TRACE_FIELDS, traceFieldsFromCheck } from './trace-fields-from-check.js';

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
  /** Sees every decision (metrics), whether or not it is logged; `service` undefined when none was chosen. */
  readonly observe?: (decision: Decision, durationMs: number, service: CompiledService | undefined) => void;
  /**
   * The share of allow decisions that are logged, 0 to 1 (default 1). Denials and report-only would-denials
   * are always logged: they are what an operator looks for; plain allows are the bulk of high traffic.
   */
  readonly logAllowedSample?: number;
  /** A number in [0, 1); injectable for tests. */
  readonly random?: () => number;
  /** Tracing, when `authz serve` started it (OpenTelemetry variables); undefined: off, no cost. */
  readonly tracing?: CheckTracing;
}

/**
 * The Envoy adapter: CheckRequest in, CheckResponse out. Every request, allowed or denied, is answered
 * with a CheckResponse and logged exactly once; only an internal fault rejects (a gRPC error), which Envoy
 * turns into `status_on_error` because `failure_mode_allow` is off.
 */
export function createCheckHandler(deps: CheckHandlerDependencies) {
  // Resolved once, not per request.
  const { active, now, observe } = deps;
  const logger = decisionLogger(deps.logger);
  const sampleRate = deps.logAllowedSample ?? 1;
  const random = deps.random ?? Math.random;
  // The CheckResponse of every answer prepared for a service (no route, no token, a public route...) and of
  // the denials made before any service is chosen, encoded once; entries go with the answers when a reload
  // drops the policy. Other answers (they name an identity or missing scopes) are encoded per request.
  const preparedResponses = new WeakMap<Answer, CheckResponseMessage>();
  const servicesSeen = new WeakSet<CompiledService>();
  const responseFor = (service: CompiledService | undefined, answer: Answer): CheckResponseMessage => {
    const prepared = preparedResponses.get(answer);
    if (prepared !== undefined) return prepared;
    if (service === undefined) {
      // no_service or service_unknown: one frozen answer per policy, like the prepared ones.
      const response = checkResponseForAnswer(answer);
      preparedResponses.set(answer, response);
      return response;
    }
    if (!servicesSeen.has(service)) {
      servicesSeen.add(service);
      for (const known of preparedOutcomes(service).answers) {
        preparedResponses.set(known, checkResponseForAnswer(known));
      }
      return preparedResponses.get(answer) ?? checkResponseForAnswer(answer);
    }
    return checkResponseForAnswer(answer);
  };

  const { tracing } = deps;
  /** Decides one Check; with `span`, ends it with the decision's attributes and logs its ids. */
  const decide = async (
    request: CheckRequestMessage,
    span: CheckSpan | undefined,
  ): Promise<CheckResponseMessage> => {
    const started = performance.now();
    const { policy, verifier } = active(); // one version for the whole request
    const facts = requestFactsFromCheck(request);
    const { service, decision, answer } = await authorize(policy, facts, verifier, now);
    const durationMs = performance.now() - started;
    observe?.(decision, durationMs, service);
    const sampled = decision.kind === 'deny' || decision.wouldDeny !== undefined || random() < sampleRate;
    if (sampled) {
      logDecision(logger, {
        decision,
        answer,
        method: facts.method,
        target: facts.target,
        requestId: facts.requestId,
        service: service?.name,
        serviceRequested:
          decision.kind === 'deny' && decision.code === 'service_unknown' ? facts.serviceName : undefined,
        policyVersion: policy.version,
        durationMs,
        trace: span,
      });
    }
    span?.end(() =>
      checkSpanAttributes({ decision, answer, service: service?.name, policyVersion: policy.version }),
    );
    return responseFor(service, answer);
  };

  /**
   * @param metadata the call's gRPC metadata, where Envoy's tracing propagates its span (read only with
   *   tracing on).
   */
  return async function check(
    request: CheckRequestMessage,
    metadata: TraceFieldReader = NO_TRACE_FIELDS,
  ): Promise<CheckResponseMessage> {
    if (tracing === undefined) return decide(request, undefined);
    const span = tracing.startCheck(metadata, traceFieldsFromCheck(request));
    try {
      return await span.within(() => decide(request, span));
    } catch (error) {
      span.fail(checkFaultKind(error));
      throw error;
    }
  };
}
