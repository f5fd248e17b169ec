import { SignJWT } from 'jose';
import { SIGNING_ALGORITHM, type SigningKey } from './signing-keys.js';

/** Everything an access token of the development identity provider says. Development only. */
export interface AccessTokenContents {
  readonly issuer: string;
  readonly audience: string;
  readonly subject: string;
  readonly scopes: readonly string[];
  readonly clientId: string;
  /** Seconds since the epoch. */
  readonly issuedAt: number;
  readonly ttlSeconds: number;
  /** When the user authenticated, in seconds since the epoch. */
  readonly authTime: number;
  readonly acr: string;
  readonly amr: readonly string[];
  /**
   * The RFC 7638 thumbprint of the client's DPoP key, when the token request proved possession of one: the
   * token then carries `cnf: {jkt}` (RFC 9449 section 6.1) and is good only with proofs from that key.
   */
  readonly dpopJkt?: string;
}

/**
 * Signs an RFC 9068 access token (`typ: at+jwt`) with claims `iss sub aud scope client_id iat exp jti
 * auth_time amr acr`, and `cnf.jkt` for a DPoP-bound token. Development only: signed with an in-memory key of
 * the development provider.
 *
 * @returns the compact JWT and its `jti`, which may be logged (the token may not).
 */
export async function signAccessToken(
  key: SigningKey,
  contents: AccessTokenContents,
): Promise<{ token: string; jti: string }> {
  const jti = crypto.randomUUID();
  const token = await new SignJWT({
    scope: contents.scopes.join(' '),
    client_id: contents.clientId,
    auth_time: contents.authTime,
    amr: [...contents.amr],
    acr: contents.acr,
    ...(contents.dpopJkt === undefined ? {} : { cnf: { jkt: contents.dpopJkt } }),
  })
    .setProtectedHeader({ alg: SIGNING_ALGORITHM, kid: key.kid, typ: 'at+jwt' })
    .setIssuer(contents.issuer)
    .setSubject(contents.subject)
    .setAudience(contents.audience)
    .setIssuedAt(contents.issuedAt)
    .setExpirationTime(contents.issuedAt + contents.ttlSeconds)
    .setJti(jti)
    .sign(key.privateKey);
  return { token, jti };
}
