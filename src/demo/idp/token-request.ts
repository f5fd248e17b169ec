import { OAuthError } from './oauth-error.js';
import {
  ACR_VALUES,
  AUTHORIZATION_CODE_GRANT,
  DEFAULT_CLIENT_ID,
  MFA_OTP_GRANT,
  PASSWORD_GRANT,
  SCOPES,
} from './protocol-values.js';

/** `grant_type=password`, checked: every field is well-formed and allowed. Development only. */
export interface PasswordGrantRequest {
  readonly grantType: typeof PASSWORD_GRANT;
  readonly username: string;
  readonly password: string;
  readonly audience: string;
  /** Requested scopes, in request order, duplicates removed. */
  readonly scopes: readonly string[];
  readonly acrValues: readonly string[];
  readonly maxAgeSeconds: number | undefined;
  readonly clientId: string;
}

/** `grant_type=http://auth0.com/oauth/grant-type/mfa-otp`, checked for presence only. Development only. */
export interface MfaOtpGrantRequest {
  readonly grantType: typeof MFA_OTP_GRANT;
  readonly mfaToken: string;
  readonly otp: string;
}

/**
 * `grant_type=authorization_code` (RFC 6749 section 4.1.3 with RFC 7636 section 4.5), checked for presence
 * only: whether the code, client, redirect URI and verifier fit together is for the code's holder to say.
 * Development only.
 */
export interface AuthorizationCodeGrantRequest {
  readonly grantType: typeof AUTHORIZATION_CODE_GRANT;
  readonly code: string;
  readonly redirectUri: string;
  readonly clientId: string;
  readonly codeVerifier: string;
}

/** A token request the development identity provider understands. Development only. */
export type TokenRequest = PasswordGrantRequest | MfaOtpGrantRequest | AuthorizationCodeGrantRequest;

// A printable client_id of sane length: it is copied into tokens and log lines.
const CLIENT_ID = /^[\x21-\x7E]{1,128}$/;
// Up to 10 digits: a year is 31,536,000 seconds, so anything longer is a typo.
const MAX_AGE = /^\d{1,10}$/;

/**
 * Validates token endpoint parameters. Unrecognized parameters are ignored (RFC 6749 section 3.2).
 * Development only.
 *
 * @param audience the one API audience the provider issues tokens for.
 * @throws OAuthError 400: `invalid_request` (missing or malformed parameter, other audience, unknown
 * `acr_values`), `unsupported_grant_type`, `invalid_scope` (a scope the provider does not know).
 */
export function parseTokenRequest(params: ReadonlyMap<string, string>, audience: string): TokenRequest {
  const grantType = params.get('grant_type');
  if (grantType === undefined || grantType === '') throw invalidRequest('grant_type is required');
  if (grantType === MFA_OTP_GRANT) {
    return { grantType, mfaToken: required(params, 'mfa_token'), otp: required(params, 'otp') };
  }
  if (grantType === AUTHORIZATION_CODE_GRANT) {
    return {
      grantType,
      code: required(params, 'code'),
      redirectUri: required(params, 'redirect_uri'),
      clientId: required(params, 'client_id'),
      codeVerifier: required(params, 'code_verifier'),
    };
  }
  if (grantType !== PASSWORD_GRANT) {
    throw new OAuthError(
      400,
      'unsupported_grant_type',
      `grant_type must be ${PASSWORD_GRANT}, ${MFA_OTP_GRANT} or ${AUTHORIZATION_CODE_GRANT}`,
    );
  }
  const username = required(params, 'username');
  const password = required(params, 'password');
  if (required(params, 'audience') !== audience) throw invalidRequest(`audience must be ${audience}`);
  return {
    grantType,
    username,
    password,
    audience,
    scopes: parseScopes(required(params, 'scope')),
    acrValues: parseAcrValues(params.get('acr_values') ?? ''),
    maxAgeSeconds: parseMaxAge(params.get('max_age')),
    clientId: parseClientId(params.get('client_id')),
  };
}

/**
 * A `scope` value: known scopes only, in request order, duplicates removed. Shared with the authorization
 * endpoint. Development only.
 *
 * @throws OAuthError 400 `invalid_request` when empty, `invalid_scope` for a scope the provider does not know.
 */
export function parseScopes(scope: string): string[] {
  const scopes = [...new Set(spaceSeparated(scope))];
  if (scopes.length === 0) throw invalidRequest('scope is required');
  if (!scopes.every((name) => (SCOPES as readonly string[]).includes(name)))
    throw new OAuthError(400, 'invalid_scope', `scope may only contain ${SCOPES.join(', ')}`);
  return scopes;
}

/**
 * An `acr_values` value (OpenID Connect Core section 3.1.2.1): known classes only. Development only.
 *
 * @throws OAuthError 400 `invalid_request` for an unknown class.
 */
export function parseAcrValues(acrValues: string): string[] {
  const values = [...new Set(spaceSeparated(acrValues))];
  if (!values.every((value) => (ACR_VALUES as readonly string[]).includes(value)))
    throw invalidRequest(`acr_values may only contain ${ACR_VALUES.join(', ')}`);
  return values;
}

/**
 * A `max_age` value in whole seconds; undefined when absent. Development only.
 *
 * @throws OAuthError 400 `invalid_request` when it is not a non-negative whole number.
 */
export function parseMaxAge(maxAge: string | undefined): number | undefined {
  if (maxAge === undefined) return undefined;
  if (!MAX_AGE.test(maxAge)) throw invalidRequest('max_age must be a non-negative whole number of seconds');
  return Number(maxAge);
}

function parseClientId(clientId: string | undefined): string {
  if (clientId === undefined) return DEFAULT_CLIENT_ID;
  if (!CLIENT_ID.test(clientId)) throw invalidRequest('client_id must be 1 to 128 printable characters');
  return clientId;
}

/** RFC 6749 section 3.3: space-delimited; repeated spaces are tolerated. */
function spaceSeparated(value: string): string[] {
  return value.split(' ').filter((part) => part !== '');
}

function required(params: ReadonlyMap<string, string>, name: string): string {
  const value = params.get(name);
  if (value === undefined || value === '') throw invalidRequest(`${name} is required`);
  return value;
}

function invalidRequest(description: string): OAuthError {
  return new OAuthError(400, 'invalid_request', description);
}
