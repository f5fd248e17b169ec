import { DPOP_ALGORITHMS } from './dpop-proof.js';
import { ACR_VALUES, GRANT_TYPES, SCOPES } from './protocol-values.js';
import { SIGNING_ALGORITHM } from './signing-keys.js';

/** Where the development identity provider serves its endpoints, relative to the issuer. Development only. */
export const DISCOVERY_PATH = '/.well-known/openid-configuration';
export const JWKS_PATH = '/.well-known/jwks.json';
export const TOKEN_PATH = '/oauth/token';
export const AUTHORIZATION_PATH = '/authorize';
/** Where the sign-in pages post the password and the one-time code. */
export const LOGIN_PATH = '/authorize/login';
export const MFA_PATH = '/authorize/mfa';

/** The token endpoint's URL, as discovery publishes it and as a DPoP proof's `htu` must name it. Development only. */
export function tokenEndpointUrl(issuer: string): string {
  return `${issuer.replace(/\/$/, '')}${TOKEN_PATH}`;
}

/**
 * The OpenID Connect Discovery 1.0 / RFC 8414 metadata of the development identity provider. `issuer` is
 * the configured issuer exactly (verifiers compare it byte for byte); the endpoint URLs join the issuer,
 * less a trailing slash, with their paths. `x_development_only` marks it for anyone reading it by hand.
 * Development only.
 */
export function discoveryDocument(issuer: string): Record<string, unknown> {
  const base = issuer.replace(/\/$/, '');
  return {
    issuer,
    authorization_endpoint: `${base}${AUTHORIZATION_PATH}`,
    jwks_uri: `${base}${JWKS_PATH}`,
    token_endpoint: tokenEndpointUrl(issuer),
    grant_types_supported: [...GRANT_TYPES],
    response_types_supported: ['code'],
    response_modes_supported: ['query'],
    code_challenge_methods_supported: ['S256'], // RFC 7636: plain is refused
    authorization_response_iss_parameter_supported: true, // RFC 9207
    scopes_supported: [...SCOPES],
    acr_values_supported: [...ACR_VALUES],
    claims_supported: [
      'iss',
      'sub',
      'aud',
      'exp',
      'iat',
      'jti',
      'scope',
      'client_id',
      'auth_time',
      'acr',
      'amr',
    ],
    token_endpoint_auth_methods_supported: ['none'],
    access_token_signing_alg_values_supported: [SIGNING_ALGORITHM],
    // RFC 9449 section 5.1: proofs the token endpoint takes; a request with one gets a DPoP-bound token.
    dpop_signing_alg_values_supported: [...DPOP_ALGORITHMS],
    x_development_only: true,
  };
}
