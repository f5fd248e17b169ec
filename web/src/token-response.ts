import { SignInError } from './sign-in-error.js';

/** An access token as the token endpoint granted it. */
export interface TokenGrant {
  readonly accessToken: string;
  /** The granted scopes (RFC 6749 section 5.1: absent means as requested). */
  readonly scopes: readonly string[];
  /** Milliseconds since the epoch, from `expires_in`; undefined when the provider did not say. */
  readonly expiresAtMs: number | undefined;
}

/**
 * Reads a token endpoint answer (RFC 6749 section 5.1 / 5.2). Only Bearer tokens are accepted: the app
 * has no key to bind a DPoP or MTLS token to.
 *
 * @param requestedScope used when the answer omits `scope`.
 * @throws SignInError `token_error`.
 */
export function readTokenResponse(
  status: number,
  json: unknown,
  requestedScope: string,
  nowMs: number,
): TokenGrant {
  const body =
    typeof json === 'object' && json !== null && !Array.isArray(json)
      ? (json as Record<string, unknown>)
      : {};
  if (status !== 200) {
    const error = typeof body['error'] === 'string' ? body['error'] : `status ${status}`;
    const detail = typeof body['error_description'] === 'string' ? `: ${body['error_description']}` : '';
    throw new SignInError('token_error', `The token endpoint refused (${error}${detail}).`);
  }
  const accessToken = body['access_token'];
  if (typeof accessToken !== 'string' || accessToken === '')
    throw new SignInError('token_error', 'The token endpoint sent no access token.');
  if (typeof body['token_type'] !== 'string' || body['token_type'].toLowerCase() !== 'bearer')
    throw new SignInError('token_error', 'The token endpoint sent a token that is not a Bearer token.');
  const scope = typeof body['scope'] === 'string' ? body['scope'] : requestedScope;
  const expiresIn = body['expires_in'];
  return {
    accessToken,
    scopes: scope.split(' ').filter((item) => item !== ''),
    expiresAtMs:
      typeof expiresIn === 'number' && Number.isFinite(expiresIn) && expiresIn > 0
        ? nowMs + expiresIn * 1000
        : undefined,
  };
}
