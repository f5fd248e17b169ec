import { decodeJwt } from 'jose';
import type { TokenType } from './token-response.js';

/** What a person watching the demo may see of a token: its claims, never the token itself. */
export interface TokenSummary {
  readonly subject: string | undefined;
  readonly scope: string;
  readonly acr: string | undefined;
  readonly amr: readonly string[];
  /** Seconds since the epoch. */
  readonly authTime: number | undefined;
  readonly expiresAt: number | undefined;
  /** `cnf.jkt` (RFC 9449 section 6.1): the thumbprint of the key the token is bound to. */
  readonly jkt: string | undefined;
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
  const cnf = claims['cnf'];
  const jkt =
    typeof cnf === 'object' && cnf !== null && typeof (cnf as Record<string, unknown>)['jkt'] === 'string'
      ? ((cnf as Record<string, unknown>)['jkt'] as string)
      : undefined;
  return {
    subject: text('sub'),
    scope: text('scope') ?? '',
    acr: text('acr'),
    amr: Array.isArray(amr) ? amr.filter((method): method is string => typeof method === 'string') : [],
    authTime: seconds('auth_time'),
    expiresAt: seconds('exp'),
    jkt,
  };
}

/** Characters of a thumbprint shown: enough to tell keys apart on screen, short enough to read. */
const SHOWN_THUMBPRINT_CHARS = 8;

/**
 * Says, for people, how a held token is protected: bound to this browser's DPoP key, to another key, or a
 * bearer token anyone holding it can use. Only the start of a thumbprint is shown, never the token.
 *
 * @param keyThumbprint the RFC 7638 thumbprint of this app's DPoP key.
 */
export function describeBinding(
  tokenType: TokenType,
  summary: Pick<TokenSummary, 'jkt'>,
  keyThumbprint: string,
): string {
  if (tokenType === 'Bearer') return 'a bearer token: it works for whoever holds it';
  const shown = (thumbprint: string) => `${thumbprint.slice(0, SHOWN_THUMBPRINT_CHARS)}…`;
  // The token is opaque to the app (RFC 9068 section 6); cnf.jkt is read only to show what it says.
  if (summary.jkt === undefined)
    return `bound to this browser's key (DPoP, thumbprint ${shown(keyThumbprint)})`;
  if (summary.jkt !== keyThumbprint)
    return `bound to another key than this browser's (DPoP, thumbprint ${shown(summary.jkt)})`;
  return `bound to this browser's key (DPoP, thumbprint ${shown(keyThumbprint)})`;
}
