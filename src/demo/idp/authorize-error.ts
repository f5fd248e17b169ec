/**
 * `error` codes the authorization endpoint reports to the client (RFC 6749 section 4.1.2.1, and
 * `login_required` from OpenID Connect Core section 3.1.2.6 for `prompt=none`). Development only.
 */
export type AuthorizeErrorCode =
  'invalid_request' | 'unsupported_response_type' | 'invalid_scope' | 'access_denied' | 'login_required';

/** Where to send the client its error: the registered redirect URI, and the `state` to echo. Development only. */
export interface RedirectTarget {
  readonly redirectUri: string;
  /** Echoed exactly when the request carried a well-formed one. */
  readonly state: string | undefined;
}

/**
 * An authorization request refused. With a `target`, the client is told by redirect; without one (unknown
 * client, missing or unregistered redirect URI) the person is shown a page and nothing is redirected, so the
 * endpoint cannot be used as an open redirector (RFC 6749 sections 4.1.2.1 and 10.15). Development only.
 */
export class AuthorizeError extends Error {
  override readonly name = 'AuthorizeError';
  readonly code: AuthorizeErrorCode;
  readonly target: RedirectTarget | undefined;

  constructor(code: AuthorizeErrorCode, description: string, target: RedirectTarget | undefined) {
    super(description);
    this.code = code;
    this.target = target;
  }
}
