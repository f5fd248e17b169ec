import { SignJWT } from 'jose';
import { DEV_ALGORITHM, DEV_AUDIENCE, DEV_ISSUER, type DevKeys } from './dev-keys.js';
import type { TokenConfirmation } from './token-binding.js';

export interface DevTokenRequest {
  readonly scopes: readonly string[];
  readonly subject: string;
  readonly ttlSeconds: number;
  readonly issuer?: string;
  readonly audience?: string;
  /** Seconds since the epoch; defaults to now. */
  readonly issuedAt?: number;
  /** Authentication context class (`acr`), e.g. `urn:bank:mfa`; omitted when undefined. */
  readonly acr?: string;
  /** Authentication methods (`amr`, RFC 8176), e.g. `['pwd', 'mfa']`; omitted when empty. */
  readonly amr?: readonly string[];
  /** How long ago the user logged in, in seconds (`auth_time` = issuedAt - authAgeSeconds); default 0. */
  readonly authAgeSeconds?: number;
  /** The key or certificate the token is bound to (`cnf`); omitted when undefined or empty. */
  readonly confirmation?: TokenConfirmation;
}

/** Mints an RFC 9068-shaped access token with the development key. Development only. */
export async function mintDevToken(keys: DevKeys, request: DevTokenRequest): Promise<string> {
  const iat = request.issuedAt ?? Math.floor(Date.now() / 1000);
  const login = {
    auth_time: iat - (request.authAgeSeconds ?? 0),
    ...(request.acr === undefined ? {} : { acr: request.acr }),
    ...(request.amr === undefined || request.amr.length === 0 ? {} : { amr: [...request.amr] }),
  };
  const cnf = request.confirmation ?? {};
  const binding = Object.keys(cnf).length === 0 ? {} : { cnf: { ...cnf } };
  return new SignJWT({ scope: request.scopes.join(' '), client_id: 'authz-dev-token', ...login, ...binding })
    .setProtectedHeader({ alg: DEV_ALGORITHM, kid: keys.kid, typ: 'at+jwt' })
    .setIssuer(request.issuer ?? DEV_ISSUER)
    .setAudience(request.audience ?? DEV_AUDIENCE)
    .setSubject(request.subject)
    .setIssuedAt(iat)
    .setExpirationTime(iat + request.ttlSeconds)
    .setJti(crypto.randomUUID())
    .sign(keys.privateKey);
}
