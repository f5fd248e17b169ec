/**
 * The identifiers the development identity provider speaks: grant types, scopes, authentication context
 * classes and methods. Development only: they mirror the Auth0 step-up scenario, not a real tenant.
 */

/** Resource Owner Password Credentials (RFC 6749 section 4.3). Development only. */
export const PASSWORD_GRANT = 'password';

/**
 * Auth0's MFA API grant: trade an `mfa_token` and a one-time code for the tokens of the original request.
 * Development only.
 */
export const MFA_OTP_GRANT = 'http://auth0.com/oauth/grant-type/mfa-otp';

/**
 * The authorization code grant (RFC 6749 section 4.1), always with PKCE S256 (RFC 7636): what the browser
 * app uses. Development only.
 */
export const AUTHORIZATION_CODE_GRANT = 'authorization_code';

/** Every grant type accepted, as discovery lists them. Development only. */
export const GRANT_TYPES = [PASSWORD_GRANT, MFA_OTP_GRANT, AUTHORIZATION_CODE_GRANT] as const;

/**
 * The scope that, as with the scenario's Auth0 Action, is granted only after multi-factor authentication.
 * Development only.
 */
export const MFA_SCOPE = 'transfer:funds';

/** Every scope the provider grants; any other is refused with `invalid_scope`. Development only. */
export const SCOPES = ['openid', 'view:balance', MFA_SCOPE] as const;

/** `acr` of a password-only login. Development only. */
export const ACR_PASSWORD = 'urn:bank:pwd';

/** `acr` of a login with a second factor; asking for it in `acr_values` triggers MFA. Development only. */
export const ACR_MFA = 'urn:bank:mfa';

/** Every `acr` known; any other in `acr_values` is refused. Development only. */
export const ACR_VALUES = [ACR_PASSWORD, ACR_MFA] as const;

/** `amr` values (RFC 8176 section 2): a password, then a password plus a second factor. Development only. */
export const AMR_PASSWORD = ['pwd'] as const;
export const AMR_MFA = ['pwd', 'mfa'] as const;

/** The `client_id` claim when a request names none: there is no client registry. Development only. */
export const DEFAULT_CLIENT_ID = 'authz-dev-client';

/**
 * The one client registered for the authorization endpoint: the bank's browser app, a public client (RFC 6749
 * section 2.1) with no secret, so PKCE is what binds the code to it. Development only.
 */
export const SPA_CLIENT_ID = 'bank-spa';

/**
 * Where the bank's browser app may receive codes unless configured otherwise: its callback page on the demo
 * port, under both loopback names a browser may use. Development only.
 */
export const DEFAULT_REDIRECT_URIS = [
  'http://127.0.0.1:8000/app/callback.html',
  'http://localhost:8000/app/callback.html',
] as const;
