import { status as GrpcStatus } from '@grpc/grpc-js';
import type { Answer } from '../authz/answer-for-decision.js';
import {
  OVERWRITE_IF_EXISTS_OR_ADD,
  type CheckResponseMessage,
  type HeaderValueOptionMessage,
} from './check-messages.js';

/** gRPC status codes in CheckResponse.status: Envoy allows only on OK; the others label the denial. */
const STATUS_FOR_HTTP: Readonly<Record<number, number>> = {
  400: GrpcStatus.INVALID_ARGUMENT,
  401: GrpcStatus.UNAUTHENTICATED,
  403: GrpcStatus.PERMISSION_DENIED,
  503: GrpcStatus.UNAVAILABLE,
};

/** The status of every allow; the message encoder only reads it, so one frozen object serves all. */
const OK_STATUS = Object.freeze({ code: GrpcStatus.OK, message: '' });

const header = (key: string, value: string): HeaderValueOptionMessage => ({
  header: { key, value },
  append_action: OVERWRITE_IF_EXISTS_OR_ADD,
});

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
      headers: answer.headers.map(([key, value]) => header(key, value)),
      body: answer.body,
    },
  };
}
