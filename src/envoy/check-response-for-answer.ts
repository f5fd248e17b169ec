import { status as GrpcStatus } from '@grpc/grpc-js';
import type { Answer } from '../authz/answer-for-decision.js';
import {
  APPEND_IF_EXISTS_OR_ADD,
  OVERWRITE_IF_EXISTS_OR_ADD,
  type CheckResponseMessage,
  type HeaderValueOptionMessage,
} from './check-messages.js';

/** gRPC status codes in CheckResponse.status: Envoy allows only on OK; the others label the denial. */
const STATUS_FOR_HTTP: Readonly<Record<number, number>> = {
  400: GrpcStatus.INVALID_ARGUMENT,
  401: GrpcStatus.UNAUTHENTICATED,
  403: GrpcStatus.PERMISSION_DENIED,
  429: GrpcStatus.RESOURCE_EXHAUSTED,
  503: GrpcStatus.UNAVAILABLE,
};

/** The status of every allow; the message encoder only reads it, so one frozen object serves all. */
const OK_STATUS = Object.freeze({ code: GrpcStatus.OK, message: '' });

const header = (key: string, value: string, append = false): HeaderValueOptionMessage => ({
  header: { key, value },
  append_action: append ? APPEND_IF_EXISTS_OR_ADD : OVERWRITE_IF_EXISTS_OR_ADD,
});

/**
 * A denial's headers: the first of each name overwrites, any later one of the same name is appended, so
 * that one `WWW-Authenticate` line per accepted scheme reaches the client (RFC 9449 section 7.1).
 */
function denialHeaderOptions(headers: readonly (readonly [string, string])[]): HeaderValueOptionMessage[] {
  const seen = new Set<string>();
  return headers.map(([key, value]) => {
    const repeated = seen.has(key);
    seen.add(key);
    return header(key, value, repeated);
  });
}

/**
 * Encodes an answer as Envoy's CheckResponse (external_auth.proto). The result is only read by the message
 * encoder, so callers may encode an answer once and send the same response for it again.
 */
export function checkResponseForAnswer(answer: Answer): CheckResponseMessage {
  if (answer.kind === 'allow') {
    return {
      status: OK_STATUS,
      ok_response: {
        headers: answer.setHeaders.map(([key, value]) => header(key, value)),
        headers_to_remove: [...answer.removeHeaders],
      },
    };
  }
  return {
    status: { code: STATUS_FOR_HTTP[answer.status] ?? GrpcStatus.PERMISSION_DENIED, message: '' },
    denied_response: {
      status: { code: answer.status },
      headers: denialHeaderOptions(answer.headers),
      body: answer.body,
    },
  };
}
