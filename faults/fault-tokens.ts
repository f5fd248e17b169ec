import { randomUUID } from 'node:crypto';
import type { DpopKey } from '../test/kit/dpop-proofs.js';
import { signTestToken, type TestKey, type TokenOptions } from '../test/kit/tokens.js';

// The fault suite's words for tokens, on top of the kit's minter (test/kit/tokens.ts): its issuer and
// audience, and the claims its scenarios send.

/** The issuer and audience of every scenario's tokens. */
export const FAULT_ISSUER = 'https://issuer.faults.test/';
export const FAULT_AUDIENCE = 'https://my-banking-api';

/**
 * Signs an access token for the suite's issuer with `key`: valid by default (`scope: view:balance`, ten
 * minutes), and distinct from every other (`jti`), so each request is verified rather than answered from
 * authz's verified-token cache.
 */
export function signToken(key: TestKey, options: TokenOptions = {}): Promise<string> {
  return signTestToken(
    key,
    { issuer: FAULT_ISSUER, audience: FAULT_AUDIENCE },
    { ...options, claims: { jti: randomUUID(), ...options.claims } },
  );
}

/** Claims of an expired token: issued twelve minutes ago, expired two minutes ago (beyond clock tolerance). */
export function expiredClaims(): Record<string, unknown> {
  const now = Math.floor(Date.now() / 1000);
  return { iat: now - 720, exp: now - 120 };
}

/** Login claims of a recent multi-factor login, as the demo `POST /transfer` route requires (RFC 9470). */
export function mfaLoginClaims(): Record<string, unknown> {
  return { acr: 'urn:bank:mfa', amr: ['pwd', 'mfa'], auth_time: Math.floor(Date.now() / 1000) - 30 };
}

/** The claim that binds a token to `key` (`cnf.jkt`, RFC 9449 section 6.1). */
export function boundTo(key: DpopKey): Record<string, unknown> {
  return { cnf: { jkt: key.jkt } };
}
