import type { Logger } from 'pino';
import type { Decision } from '../authz/decision.js';
import type { Answer } from '../authz/answer-for-decision.js';
import { tokenBinding } from '../authz/token-binding.js';

/** The fields of one decision log line. Never the token, never claims beyond subject and issuer. */
export interface DecisionLogInput {
  readonly decision: Decision;
  readonly answer: Answer;
  readonly method: string;
  readonly target: string;
  readonly requestId: string;
  /** The service the request was for; undefined when none could be chosen. */
  readonly service: string | undefined;
  /** For `service_unknown`: the name the proxy gave, which the policy does not have (a configuration error). */
  readonly serviceRequested?: string | undefined;
  readonly policyVersion: string;
  readonly durationMs: number;
  /**
   * With tracing on: the trace the Check belongs to (the caller's, from Envoy, even when this service's span
   * is not sampled), and this service's span when it is sampled, so that a log line leads to its trace.
   */
  readonly trace?: { readonly traceId: string; readonly spanId: string | undefined } | undefined;
}

const MAX_LOGGED_PATH = 512; // characters
const MAX_LOGGED_SERVICE_NAME = 128; // characters

/** The `event` of a decision line (docs/operations.md, "Logs"): a documented field, which log pipelines select on. */
export const DECISION_EVENT = 'decision';

/**
 * The logger decision lines go through: `logger` without its redaction. pino's redaction walks every
 * logged object (about 10 µs a line here, four times the cost of the line itself), and a decision line
 * cannot hold what it looks for: {@link logDecision} builds it from the closed set of fields above, none
 * of them a header or a token. Every other line keeps the net. Built once, not per request.
 */
export function decisionLogger(logger: Logger): Logger {
  return logger.child({}, { redact: [] });
}

/** Writes the one structured line every decision gets (through a {@link decisionLogger}). */
export function logDecision(logger: Logger, input: DecisionLogInput): void {
  const { decision, answer } = input;
  const queryAt = input.target.search(/[?#]/);
  const path = (queryAt === -1 ? input.target : input.target.slice(0, queryAt)).slice(0, MAX_LOGGED_PATH);
  const identity = decision.kind === 'allow' ? decision.identity : decision;
  logger.info(
    {
      event: DECISION_EVENT,
      decision: decision.kind,
      status: answer.kind === 'allow' ? 200 : answer.status,
      reason: decision.kind === 'allow' ? (decision.wouldDeny?.code ?? 'allowed') : decision.code,
      ...(decision.kind === 'allow' && decision.wouldDeny !== undefined
        ? { would_deny: true, mode: 'report-only' }
        : {}),
      // Not `service`: every line of this process already has `service: "authz"` (create-logger.ts).
      policy_service: input.service ?? null,
      ...(input.serviceRequested === undefined
        ? {}
        : { service_requested: input.serviceRequested.slice(0, MAX_LOGGED_SERVICE_NAME) }),
      route: decision.route?.name ?? null,
      method: input.method.slice(0, 32),
      path,
      subject: identity?.subject ?? null,
      issuer: identity?.issuer ?? null,
      // What the token was bound to (RFC 9449 cnf.jkt, RFC 8705 cnf x5t#S256), for audits of who could use it.
      token_binding: tokenBinding(decision.identity) ?? null,
      missing_scopes: (decision.kind === 'deny' ? decision : decision.wouldDeny)?.missingScopes ?? [],
      policy_version: input.policyVersion,
      request_id: input.requestId || null,
      duration_ms: Math.round(input.durationMs * 1000) / 1000,
      ...(input.trace === undefined
        ? {}
        : input.trace.spanId === undefined
          ? { trace_id: input.trace.traceId }
          : { trace_id: input.trace.traceId, span_id: input.trace.spanId }),
    },
    'decision',
  );
}
