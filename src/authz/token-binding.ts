import type { VerifiedToken } from './token-verification.js';

/** How a token is bound to its holder, for logs and traces: what an audit of who could use it asks. */
export type TokenBinding = 'dpop' | 'mtls' | 'dpop+mtls' | 'bearer';

/**
 * `dpop` (RFC 9449 `cnf.jkt`), `mtls` (RFC 8705 `cnf["x5t#S256"]`), both, or `bearer`; undefined without a
 * verified token.
 */
export function tokenBinding(token: VerifiedToken | undefined): TokenBinding | undefined {
  if (token === undefined) return undefined;
  const { jkt, x5tS256 } = token.confirmation;
  if (jkt !== undefined) return x5tS256 !== undefined ? 'dpop+mtls' : 'dpop';
  return x5tS256 !== undefined ? 'mtls' : 'bearer';
}
