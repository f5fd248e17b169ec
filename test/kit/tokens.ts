import {
  base64url,
  exportJWK,
  generateKeyPair,
  SignJWT,
  type CryptoKey,
  type JWK,
  type JWTPayload,
} from 'jose';

// The kit's one minter of access tokens, for tests, the bench and the fault suite: signing keys, tokens
// with any claims and header, many tokens at once, and the tokens and key sets that must be refused.
// DPoP keys and proofs are its other half, in dpop-proofs.ts.

/** A signing key of a test issuer, with its public JWK. */
export interface TestKey {
  readonly kid: string;
  readonly alg: string;
  readonly privateKey: CryptoKey;
  readonly publicJwk: JWK;
}

/** Generates a signing key (RS256 by default) with a public JWK carrying `kid`, `alg` and `use`. */
export async function generateTestKey(kid: string, alg = 'RS256'): Promise<TestKey> {
  const { privateKey, publicJwk } = await generateKeyPairWithJwk(alg);
  return { kid, alg, privateKey, publicJwk: { ...publicJwk, kid, alg, use: 'sig' } };
}

/** A fresh key pair for `alg` (extractable) and its public JWK, bare: no `kid`, `alg` or `use`. */
export async function generateKeyPairWithJwk(
  alg: string,
): Promise<{ privateKey: CryptoKey; publicKey: CryptoKey; publicJwk: JWK }> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  return { privateKey, publicKey, publicJwk: await exportJWK(publicKey) };
}

/** A JWS in compact form: `claims` under the protected `header`, signed with `key`. */
export function signJwt(
  header: Record<string, unknown>,
  claims: Record<string, unknown>,
  key: CryptoKey | Uint8Array,
): Promise<string> {
  return new SignJWT(claims as JWTPayload).setProtectedHeader(header as never).sign(key);
}

export interface TokenOptions {
  /** Claims merged over the defaults (iss, aud, sub, scope, iat, exp = iat + 600). `undefined` removes one. */
  readonly claims?: Record<string, unknown>;
  /** Protected header parameters merged over `{alg, kid, typ: 'at+jwt'}`. */
  readonly header?: Record<string, unknown>;
  /** Seconds since the epoch to treat as now (default: the real clock). */
  readonly now?: number;
}

/** Signs a JWT with `key`. Defaults describe a valid token for `issuer` / `audience`. */
export async function signTestToken(
  key: TestKey,
  defaults: { issuer: string; audience: string },
  options: TokenOptions = {},
): Promise<string> {
  const now = options.now ?? Math.floor(Date.now() / 1000);
  const claims: Record<string, unknown> = {
    iss: defaults.issuer,
    aud: defaults.audience,
    sub: 'alice',
    scope: 'view:balance',
    iat: now,
    exp: now + 600,
    ...options.claims,
  };
  for (const [name, value] of Object.entries(claims)) if (value === undefined) delete claims[name];
  return signJwt({ alg: key.alg, kid: key.kid, typ: 'at+jwt', ...options.header }, claims, key.privateKey);
}

/**
 * Signing jobs kept in flight by {@link signMany}: jose signs with WebCrypto, which does the RSA and ECDSA
 * work on libuv's thread pool (four threads unless UV_THREADPOOL_SIZE says otherwise), so enough jobs in
 * flight keep every thread busy while this thread only encodes.
 */
const SIGNING_IN_FLIGHT = 64;

/**
 * `count` JWTs, number i signed by `sign(i)`, several at a time: as fast as one worker thread per core on
 * two cores (measured for the bench: 20,000 RS256 tokens in 2.9 s either way), without workers.
 */
export async function signMany(count: number, sign: (index: number) => Promise<string>): Promise<string[]> {
  const tokens = new Array<string>(count);
  let next = 0;
  const signer = async () => {
    while (next < count) {
      const index = next++;
      tokens[index] = await sign(index);
    }
  };
  await Promise.all(Array.from({ length: Math.min(count, SIGNING_IN_FLIGHT) }, signer));
  return tokens;
}

/** An unsigned `alg: none` token with the given claims (RFC 7519 section 6.1): must always be refused. */
export function unsecuredToken(claims: Record<string, unknown>): string {
  return `${encodeJson({ alg: 'none', typ: 'JWT' })}.${encodeJson(claims)}.`;
}

/** Flips one character in the payload part: a token whose signature no longer matches. */
export function tamperWithPayload(token: string): string {
  const [header, payload, signature] = token.split('.') as [string, string, string];
  const claims = JSON.parse(new TextDecoder().decode(base64url.decode(payload))) as Record<string, unknown>;
  claims['scope'] = 'view:balance transfer:funds';
  return `${header}.${encodeJson(claims)}.${signature}`;
}

/** An RSA public JWK without its modulus `n`: not importable. */
export function rsaKeyWithoutModulus(kid: string): JWK {
  return { kty: 'RSA', kid, alg: 'RS256', use: 'sig', e: 'AQAB' };
}

/** A P-256 public JWK whose point is not on the curve (`y` altered): not importable. */
export async function ecKeyOffCurve(kid: string): Promise<JWK> {
  const { publicJwk: jwk } = await generateKeyPairWithJwk('ES256');
  const y = base64url.decode(jwk.y!);
  y[y.length - 1] ^= 0x01;
  return { ...jwk, y: base64url.encode(y), kid, alg: 'ES256', use: 'sig' };
}

/** base64url of `value` as JSON: one part of a JWS in compact form. */
export function encodeJson(value: object): string {
  return base64url.encode(JSON.stringify(value));
}
