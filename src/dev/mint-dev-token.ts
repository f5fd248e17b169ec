import { SignJWT } from 'jose';
import { DEV_ALGORITHM, DEV_AUDIENCE, DEV_ISSUER, type DevKeys } from './dev-keys.js';

export interface DevTokenRequest {
  readonly scopes: readonly string[];
  readonly subject: string;
  readonly ttlSeconds: number;
  readonly issuer?: string;
  readonly audience?: string;
  /** Seconds since the epoch; defaults to now. */
  readonly issuedAt?: number;
}

/** Mints an RFC 9068-shaped access token with the development key. Development only. */
export async function mintDevToken(keys: DevKeys, request: DevTokenRequest): Promise<string> {
  const iat = request.issuedAt ?? Math.floor(Date.now() / 1000);
  return new SignJWT({ scope: request.scopes.join(' '), client_id: 'authz-dev-token' })
    .setProtectedHeader({ alg: DEV_ALGORITHM, kid: keys.kid, typ: 'at+jwt' })
    .setIssuer(request.issuer ?? DEV_ISSUER)
    .setAudience(request.audience ?? DEV_AUDIENCE)
    .setSubject(request.subject)
    .setIssuedAt(iat)
    .setExpirationTime(iat + request.ttlSeconds)
    .setJti(crypto.randomUUID())
    .sign(keys.privateKey);
}
