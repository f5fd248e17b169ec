import { createHash, randomUUID } from 'node:crypto';
import { calculateJwkThumbprint, exportJWK, type CryptoKey, type JWK } from 'jose';
import { encodeJson, generateKeyPairWithJwk, signJwt } from './tokens.js';

// DPoP keys and proofs (RFC 9449 section 4), the kit's minter of proofs beside tokens.ts. Written from the
// RFC rather than with the project's own client code (src/client/dpop-key.ts), so that a mistake shared by
// both sides cannot hide: a good proof by default, and any header parameter or claim overridden or removed
// to make the bad ones.

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
  const { privateKey, publicJwk } = await generateKeyPairWithJwk(alg);
  const privateJwk = await exportJWK(privateKey);
  return { alg, privateKey, publicJwk, privateJwk, jkt: await calculateJwkThumbprint(publicJwk, 'sha256') };
}

/** `count` DPoP key pairs of `alg`: one per client, as each client holds its own. */
export function generateDpopKeys(count: number, alg = 'ES256'): Promise<DpopKey[]> {
  return Promise.all(Array.from({ length: count }, () => generateDpopKey(alg)));
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
  const header = withoutUndefined({ typ: 'dpop+jwt', alg: key.alg, jwk: key.publicJwk, ...init.header });
  return signJwt(header, proofClaims(init), init.signWith ?? key.privateKey);
}

/** An unsigned proof (`alg: none`, RFC 7519 section 6.1) with the claims of a good one from `key`. */
export function unsecuredProof(key: DpopKey, init: ProofInit): string {
  return `${encodeJson({ typ: 'dpop+jwt', alg: 'none', jwk: key.publicJwk })}.${encodeJson(proofClaims(init))}.`;
}

/** The claims of a good proof for `init` (a fresh `jti`), with its overrides. */
function proofClaims(init: ProofInit): Record<string, unknown> {
  return withoutUndefined({
    jti: randomUUID(),
    htm: init.method,
    htu: init.url,
    iat: init.now ?? Math.floor(Date.now() / 1000),
    ath: accessTokenHash(init.accessToken),
    ...init.claims,
  });
}

function withoutUndefined(value: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined));
}

/**
 * `Authorization: DPoP <token>` and a fresh proof of `key` for `method` and `url` (RFC 9449 section 7.1):
 * a new proof each time, as a proof is single-use.
 */
export async function dpopHeaders(
  key: DpopKey,
  method: string,
  url: string,
  accessToken: string,
): Promise<Record<string, string>> {
  return { authorization: `DPoP ${accessToken}`, dpop: await dpopProof(key, { method, url, accessToken }) };
}
