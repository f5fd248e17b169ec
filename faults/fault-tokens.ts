import { randomUUID } from 'node:crypto';
import { generateKeyPair, exportJWK, base64url, type JWK } from 'jose';
import { generateDpopKey, type DpopKey } from '../test/kit/dpop-proofs.js';
import { generateTestKey, signTestToken, type TestKey, type TokenOptions } from '../test/kit/test-issuer.js';

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

/** `count` DPoP key pairs (ES256): one per client account, as each client holds its own. */
export function dpopKeys(count: number): Promise<DpopKey[]> {
  return Promise.all(Array.from({ length: count }, () => generateDpopKey('ES256')));
}

/**
 * A fresh key that is published nowhere, under `kid`: with a published key's `kid` its tokens have a bad
 * signature; with any other, an unknown or unusable key.
 */
export function unpublishedKey(kid: string, alg = 'RS256'): Promise<TestKey> {
  return generateTestKey(kid, alg);
}

/** An RSA public JWK without its modulus `n`: not importable. */
export function rsaKeyWithoutModulus(kid: string): JWK {
  return { kty: 'RSA', kid, alg: 'RS256', use: 'sig', e: 'AQAB' };
}

/** A P-256 public JWK whose point is not on the curve (`y` altered): not importable. */
export async function ecKeyOffCurve(kid: string): Promise<JWK> {
  const { publicKey } = await generateKeyPair('ES256', { extractable: true });
  const jwk = await exportJWK(publicKey);
  const y = base64url.decode(jwk.y!);
  y[y.length - 1] ^= 0x01;
  return { ...jwk, y: base64url.encode(y), kid, alg: 'ES256', use: 'sig' };
}
