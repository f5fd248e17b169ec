import { SignInError } from './sign-in-error.js';

/**
 * How an access token is presented: `Bearer` (RFC 6750), or `DPoP` (RFC 9449 section 7.1), bound to the
 * app's key and sent with a fresh proof from it on every call.
 */
export type TokenType = 'Bearer' | 'DPoP';

/** An access token as the token endpoint granted it. */
export interface TokenGrant {
  readonly accessToken: string;
  readonly tokenType: TokenType;
  /** The granted scopes (RFC 6749 section 5.1: absent means as requested). */
  readonly scopes: readonly string[];
  /** Milliseconds since the epoch, from `expires_in`; undefined when the provider did not say. */
  readonly expiresAtMs: number | undefined;
}

const TOKEN_TYPES: ReadonlyMap<string, TokenType> = new Map([
  ['bearer', 'Bearer'],
  ['dpop', 'DPoP'],
]);

/**
 * Reads a token endpoint answer (RFC 6749 section 5.1 / 5.2). `token_type` is compared case-insensitively
 * (RFC 6749 section 7.1); `DPoP` and `Bearer` are accepted (a provider that does not do DPoP may answer a
 * proof with a Bearer token, RFC 9449 section 5), anything else (MTLS, MAC) is refused: the app could not
 * present it.
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
  const tokenType =
    typeof body['token_type'] === 'string' ? TOKEN_TYPES.get(body['token_type'].toLowerCase()) : undefined;
  if (tokenType === undefined)
    throw new SignInError(
      'token_error',
      'The token endpoint sent a token that is neither a DPoP nor a Bearer token.',
    );
  const scope = typeof body['scope'] === 'string' ? body['scope'] : requestedScope;
  const expiresIn = body['expires_in'];
  return {
    accessToken,
    tokenType,
    scopes: scope.split(' ').filter((item) => item !== ''),
    expiresAtMs:
      typeof expiresIn === 'number' && Number.isFinite(expiresIn) && expiresIn > 0
        ? nowMs + expiresIn * 1000
        : undefined,
  };
}
