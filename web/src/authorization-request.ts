import type { StepUpRequest } from '../../src/client/index.js';
import { SignInError } from './sign-in-error.js';

/** One authorization request (RFC 6749 section 4.1.1 with PKCE, RFC 7636 section 4.3). */
export interface AuthorizationRequest {
  readonly clientId: string;
  readonly redirectUri: string;
  readonly audience: string;
  readonly state: string;
  readonly codeChallenge: string;
  /** The scope, and the `acr_values` / `max_age` a step-up challenge asked for (RFC 9470 section 4). */
  readonly want: StepUpRequest & { readonly scope: string };
}

/** The authorization endpoint URL for a request; parameters already on the endpoint are kept. */
export function authorizationUrl(endpoint: URL, request: AuthorizationRequest): URL {
  const url = new URL(endpoint);
  const params: [string, string][] = [
    ['response_type', 'code'],
    ['client_id', request.clientId],
    ['redirect_uri', request.redirectUri],
    ['scope', request.want.scope],
    ['audience', request.audience],
    ['state', request.state],
    ['code_challenge', request.codeChallenge],
    ['code_challenge_method', 'S256'],
  ];
  if (request.want.acrValues !== undefined) params.push(['acr_values', request.want.acrValues]);
  if (request.want.maxAge !== undefined) params.push(['max_age', request.want.maxAge]);
  for (const [name, value] of params) url.searchParams.set(name, value);
  return url;
}

/** The query parameters the callback page relays; only these names are read. */
export interface AuthorizationResponse {
  readonly code?: string;
  readonly state?: string;
  readonly iss?: string;
  readonly error?: string;
  readonly error_description?: string;
}

const RESPONSE_NAMES = ['code', 'state', 'iss', 'error', 'error_description'] as const;

/** Picks the authorization response parameters out of a callback URL's query (first value of each). */
export function authorizationResponseFrom(query: URLSearchParams): AuthorizationResponse {
  const response: Record<string, string> = {};
  for (const name of RESPONSE_NAMES) {
    const value = query.get(name);
    if (value !== null) response[name] = value;
  }
  return response;
}

/**
 * Checks an authorization response against the request this page made: `state` must match (CSRF,
 * RFC 6749 section 10.12), `iss` must be the provider's when it promises to send it (mix-up defence,
 * RFC 9207 section 2.4), and an error answer becomes a SignInError carrying the provider's words.
 *
 * @returns the authorization code.
 * @throws SignInError `state_mismatch`, `issuer_mismatch` or `authorization_error`.
 */
export function codeFromResponse(
  response: AuthorizationResponse,
  expected: { readonly state: string; readonly issuer: string; readonly issRequired: boolean },
): string {
  if (response.state !== expected.state)
    throw new SignInError('state_mismatch', 'The sign-in answer does not belong to this request.');
  if (response.iss !== undefined ? response.iss !== expected.issuer : expected.issRequired)
    throw new SignInError('issuer_mismatch', 'The sign-in answer came from another identity provider.');
  if (response.error !== undefined) {
    const detail = response.error_description === undefined ? '' : `: ${response.error_description}`;
    throw new SignInError(
      'authorization_error',
      `The identity provider refused (${response.error}${detail}).`,
    );
  }
  if (response.code === undefined || response.code === '')
    throw new SignInError('authorization_error', 'The identity provider sent no authorization code.');
  return response.code;
}
