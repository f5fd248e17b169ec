/** Stable codes for a sign-in that did not produce a token. */
export type SignInErrorCode =
  | 'provider_metadata' // the discovery document is unusable
  | 'popup_blocked' // the browser refused to open the sign-in window
  | 'popup_closed' // the person closed the sign-in window
  | 'timed_out' // no answer within the time allowed
  | 'state_mismatch' // the callback answers another request (CSRF, RFC 6749 section 10.12)
  | 'issuer_mismatch' // the callback came from another provider (mix-up, RFC 9207)
  | 'authorization_error' // the provider answered with an error (RFC 6749 section 4.1.2.1)
  | 'token_error'; // the token endpoint refused or answered nonsense

/** Why signing in failed; `message` is written for the person using the app. */
export class SignInError extends Error {
  override readonly name = 'SignInError';

  constructor(
    readonly code: SignInErrorCode,
    message: string,
  ) {
    super(message);
  }
}
