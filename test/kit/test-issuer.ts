import {
  exportJWK,
  generateKeyPair,
  SignJWT,
  base64url,
  type CryptoKey,
  type JWK,
  type JWTPayload,
} from 'jose';

/** A signing key of a test issuer, with its public JWK. */
export interface TestKey {
  readonly kid: string;
  readonly alg: string;
  readonly privateKey: CryptoKey;
  readonly publicJwk: JWK;
}

/** Generates a signing key (RS256 by default) with a public JWK carrying `kid`, `alg` and `use`. */
export async function generateTestKey(kid: string, alg = 'RS256'): Promise<TestKey> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  const publicJwk = { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' };
  return { kid, alg, privateKey, publicJwk };
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
  return new SignJWT(claims as JWTPayload)
    .setProtectedHeader({ alg: key.alg, kid: key.kid, typ: 'at+jwt', ...options.header } as never)
    .sign(key.privateKey);
}

/** An unsigned `alg: none` token with the given claims (RFC 7519 section 6.1): must always be refused. */
export function unsecuredToken(claims: Record<string, unknown>): string {
  const encode = (value: object) => base64url.encode(JSON.stringify(value));
  return `${encode({ alg: 'none', typ: 'JWT' })}.${encode(claims)}.`;
}

/** Flips one character in the payload part: a token whose signature no longer matches. */
export function tamperWithPayload(token: string): string {
  const [header, payload, signature] = token.split('.') as [string, string, string];
  const claims = JSON.parse(new TextDecoder().decode(base64url.decode(payload))) as Record<string, unknown>;
  claims['scope'] = 'view:balance transfer:funds';
  return `${header}.${base64url.encode(JSON.stringify(claims))}.${signature}`;
}
