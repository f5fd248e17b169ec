import { createHash, randomUUID } from 'node:crypto';
import {
  base64url,
  calculateJwkThumbprint,
  exportJWK,
  generateKeyPair,
  SignJWT,
  type CryptoKey,
  type JWK,
  type JWTPayload,
} from 'jose';

// DPoP proofs (RFC 9449 section 4) for tests, written here from the RFC rather than with the project's own
// client code (src/client/dpop-key.ts), so that a mistake shared by both sides cannot hide: a good proof by
// default, and any header parameter or claim overridden or removed to make the bad ones.

/** A client's DPoP key pair, with its public JWK and RFC 7638 thumbprint (the token's `cnf.jkt`). */
export interface DpopKey {
  readonly alg: string;
  readonly privateKey: CryptoKey;
  /** The public JWK (no `alg`, `kid` or `use`: what a client puts in the proof's `jwk` header). */
  readonly publicJwk: JWK;
  /** The private JWK, `d` included: never to be sent. */
  readonly privateJwk: JWK;
  /** The base64url SHA-256 RFC 7638 thumbprint of the public key. */
  readonly jkt: string;
}

/** Generates a DPoP key pair (ES256 by default; EdDSA gives Ed25519, PS256 an RSA key). */
export async function generateDpopKey(alg = 'ES256'): Promise<DpopKey> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  const publicJwk = await exportJWK(publicKey);
  const privateJwk = await exportJWK(privateKey);
  return { alg, privateKey, publicJwk, privateJwk, jkt: await calculateJwkThumbprint(publicJwk, 'sha256') };
}

/** `ath` (RFC 9449 section 4.2): the base64url SHA-256 of the access token's ASCII. */
export function accessTokenHash(accessToken: string): string {
  return createHash('sha256').update(accessToken, 'ascii').digest('base64url');
}

/** What a proof is for, and what to change of a good one. */
export interface ProofInit {
  /** `htm`. */
  readonly method: string;
  /** `htu`. */
  readonly url: string;
  /** The access token the proof goes with, for `ath`. */
  readonly accessToken: string;
  /** Claims merged over the defaults (jti, htm, htu, iat, ath); `undefined` removes one. */
  readonly claims?: Record<string, unknown>;
  /** Header parameters merged over `{typ: 'dpop+jwt', alg, jwk}`; `undefined` removes one. */
  readonly header?: Record<string, unknown>;
  /** Signs with this key instead of the proof key's (the header still names `alg` and `jwk` as set). */
  readonly signWith?: CryptoKey | Uint8Array;
  /** Seconds since the epoch to take as now for `iat` (default: the real clock). */
  readonly now?: number;
}

/** A DPoP proof JWT from `key`; valid for `init` unless its overrides say otherwise. */
export async function dpopProof(key: DpopKey, init: ProofInit): Promise<string> {
  const claims = withoutUndefined({
    jti: randomUUID(),
    htm: init.method,
    htu: init.url,
    iat: init.now ?? Math.floor(Date.now() / 1000),
    ath: accessTokenHash(init.accessToken),
    ...init.claims,
  });
  const header = withoutUndefined({ typ: 'dpop+jwt', alg: key.alg, jwk: key.publicJwk, ...init.header });
  return new SignJWT(claims as JWTPayload)
    .setProtectedHeader(header as never)
    .sign(init.signWith ?? key.privateKey);
}

/** An unsigned proof (`alg: none`, RFC 7519 section 6.1) with the claims of a good one from `key`. */
export function unsecuredProof(key: DpopKey, init: ProofInit): string {
  const encode = (value: object) => base64url.encode(JSON.stringify(value));
  const claims = withoutUndefined({
    jti: randomUUID(),
    htm: init.method,
    htu: init.url,
    iat: init.now ?? Math.floor(Date.now() / 1000),
    ath: accessTokenHash(init.accessToken),
    ...init.claims,
  });
  return `${encode({ typ: 'dpop+jwt', alg: 'none', jwk: key.publicJwk })}.${encode(claims)}.`;
}

function withoutUndefined(value: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined));
}
