import { decodeJwt } from 'jose';

/** What a person watching the demo may see of a token: its claims, never the token itself. */
export interface TokenSummary {
  readonly subject: string | undefined;
  readonly scope: string;
  readonly acr: string | undefined;
  readonly amr: readonly string[];
  /** Seconds since the epoch. */
  readonly authTime: number | undefined;
  readonly expiresAt: number | undefined;
}

/**
 * Reads a JWT access token's claims for display only. The app never trusts them: the API verifies the
 * token, and an access token is opaque to clients (RFC 9068 section 6). A token that is not a JWT gives an
 * empty summary.
 */
export function summarizeToken(accessToken: string): TokenSummary {
  let claims: Record<string, unknown> = {};
  try {
    claims = decodeJwt(accessToken);
  } catch {
    // Not a JWT: nothing to show.
  }
  const text = (name: string) => (typeof claims[name] === 'string' ? (claims[name] as string) : undefined);
  const seconds = (name: string) => (typeof claims[name] === 'number' ? (claims[name] as number) : undefined);
  const amr = claims['amr'];
  return {
    subject: text('sub'),
    scope: text('scope') ?? '',
    acr: text('acr'),
    amr: Array.isArray(amr) ? amr.filter((method): method is string => typeof method === 'string') : [],
    authTime: seconds('auth_time'),
    expiresAt: seconds('exp'),
  };
}
