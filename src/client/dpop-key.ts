/**
 * A client's DPoP key (RFC 9449): a P-256 key pair whose private half never leaves WebCrypto
 * (`extractable: false`), so neither a script nor a dump of the process's objects can copy it out. Works
 * in the browser and in Node (both have `globalThis.crypto.subtle`). Written against WebCrypto alone: this
 * folder is shipped to browsers and takes no npm package (.dependency-cruiser.mjs, layers-client).
 */
export interface DpopKey {
  /** The public key as a JWK, as it goes into every proof's header. */
  readonly publicJwk: DpopPublicJwk;
  /** Its RFC 7638 thumbprint (SHA-256, base64url): the `cnf.jkt` of the tokens bound to it. */
  readonly thumbprint: string;
  /**
   * A fresh proof for one request (RFC 9449 section 4.2): `htm` and `htu` (query and fragment removed),
   * a new `jti`, `iat` now, `ath` when an access token goes with it, and the server's `nonce` if it gave one.
   */
  proof(request: DpopProofRequest): Promise<string>;
}

/** The public members of a P-256 key (RFC 7518 section 6.2.1), no more: nothing private goes into a proof. */
export interface DpopPublicJwk {
  readonly kty: 'EC';
  readonly crv: 'P-256';
  readonly x: string;
  readonly y: string;
}

export interface DpopProofRequest {
  readonly method: string;
  /** The request's absolute URI; its query and fragment are left out of `htu`. */
  readonly url: string | URL;
  /** The access token the request carries: its hash goes into `ath`. Omitted at the token endpoint. */
  readonly accessToken?: string;
  /** The latest `DPoP-Nonce` the server sent, if any. */
  readonly nonce?: string;
}

/**
 * A WebCrypto key, typed from `crypto.subtle` itself: Node's types name it `webcrypto.CryptoKey`, the DOM's
 * `CryptoKey`, and this file compiles under both.
 */
type WebCryptoKey = Parameters<typeof crypto.subtle.sign>[1];

/** A P-256 ECDSA key pair, as `crypto.subtle.generateKey` makes it. */
export interface DpopKeyPair {
  readonly publicKey: WebCryptoKey;
  readonly privateKey: WebCryptoKey;
}

const ALGORITHM = { name: 'ECDSA', namedCurve: 'P-256' } as const;
// ES256 (RFC 7518 section 3.4): WebCrypto's ECDSA signature is already the JWS form, r || s, 64 bytes.
const SIGNING = { name: 'ECDSA', hash: 'SHA-256' } as const;

/** Makes a new non-extractable ES256 key for DPoP proofs. */
export async function createDpopKey(): Promise<DpopKey> {
  const pair = await crypto.subtle.generateKey(ALGORITHM, false, ['sign', 'verify']);
  return dpopKeyFromPair(pair);
}

/** A DPoP key over a WebCrypto P-256 key pair made elsewhere (the public half must be extractable). */
export async function dpopKeyFromPair(pair: DpopKeyPair): Promise<DpopKey> {
  const { kty, crv, x, y } = await crypto.subtle.exportKey('jwk', pair.publicKey);
  if (kty !== 'EC' || crv !== 'P-256' || typeof x !== 'string' || typeof y !== 'string')
    throw new TypeError('a DPoP key must be a P-256 ECDSA key pair');
  const publicJwk: DpopPublicJwk = Object.freeze({ kty, crv, x, y });
  const thumbprint = await jwkThumbprint(publicJwk);
  return {
    publicJwk,
    thumbprint,
    proof: async ({ method, url, accessToken, nonce }) => {
      const target = new URL(url);
      target.search = '';
      target.hash = '';
      const claims: Record<string, string | number> = {
        jti: crypto.randomUUID(),
        htm: method,
        htu: target.href,
        iat: Math.floor(Date.now() / 1000),
      };
      if (accessToken !== undefined) claims['ath'] = await accessTokenHash(accessToken);
      if (nonce !== undefined) claims['nonce'] = nonce;
      const header = { alg: 'ES256', typ: 'dpop+jwt', jwk: publicJwk };
      const signingInput = `${encodeJson(header)}.${encodeJson(claims)}`;
      const signature = await crypto.subtle.sign(SIGNING, pair.privateKey, ascii(signingInput));
      return `${signingInput}.${base64url(new Uint8Array(signature))}`;
    },
  };
}

/** `ath` (RFC 9449 section 4.2): the base64url SHA-256 of the access token's ASCII. */
export async function accessTokenHash(accessToken: string): Promise<string> {
  return base64url(await sha256(ascii(accessToken)));
}

/**
 * The RFC 7638 thumbprint of a P-256 public key: SHA-256 over the required members in lexicographic order,
 * no white space (section 3.2), base64url.
 */
async function jwkThumbprint({ crv, kty, x, y }: DpopPublicJwk): Promise<string> {
  return base64url(await sha256(ascii(JSON.stringify({ crv, kty, x, y }))));
}

async function sha256(data: Uint8Array<ArrayBuffer>): Promise<Uint8Array> {
  return new Uint8Array(await crypto.subtle.digest('SHA-256', data));
}

/** A JWS segment (RFC 7515 section 2): base64url of the UTF-8 JSON. */
function encodeJson(value: object): string {
  return base64url(new TextEncoder().encode(JSON.stringify(value)));
}

function ascii(text: string): Uint8Array<ArrayBuffer> {
  return new TextEncoder().encode(text);
}

/** base64url without padding (RFC 7515 section 2), with what both browsers and Node have: `btoa`. */
function base64url(bytes: Uint8Array): string {
  let binary = '';
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}
