import type { JsonReply } from './json-reply.js';

/**
 * `error` codes the development identity provider answers with: those of RFC 6749 section 5.2, Auth0's MFA
 * API (`expired_token`), RFC 9449 section 5 (`invalid_dpop_proof`) and a few for routing (`not_found`,
 * `method_not_allowed`). Development only.
 */
export type OAuthErrorCode =
  | 'invalid_request'
  | 'invalid_grant'
  | 'invalid_scope'
  | 'unsupported_grant_type'
  | 'expired_token'
  | 'invalid_dpop_proof'
  | 'access_denied'
  | 'not_found'
  | 'method_not_allowed'
  | 'server_error';

/**
 * A request the development identity provider refuses, with the HTTP status and the OAuth-style JSON body
 * (`{error, error_description}`) to answer. Thrown by the request parsers and caught by the server, so a
 * handler reads straight through its happy path. Development only.
 */
export class OAuthError extends Error {
  override readonly name = 'OAuthError';
  readonly status: number;
  readonly code: OAuthErrorCode;
  readonly headers: Readonly<Record<string, string>>;

  constructor(
    status: number,
    code: OAuthErrorCode,
    description: string,
    headers: Record<string, string> = {},
  ) {
    super(description);
    this.status = status;
    this.code = code;
    this.headers = headers;
  }

  /** The response that tells the client what went wrong. */
  reply(): JsonReply {
    return {
      status: this.status,
      body: { error: this.code, error_description: this.message },
      headers: this.headers,
    };
  }
}
