import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  calculateJwkThumbprint,
  exportJWK,
  generateKeyPair,
  importJWK,
  type CryptoKey,
  type JWK,
} from 'jose';

/** The development issuer and audience the demo policy trusts. Development only. */
export const DEV_ISSUER = 'https://idp.example/';
export const DEV_AUDIENCE = 'https://my-banking-api';
export const DEV_ALGORITHM = 'RS256';

/** Where development keys live unless `AUTHZ_DEV_DIR` says otherwise; the folder is git-ignored. */
export const DEFAULT_DEV_DIR = '.authz-dev';

export interface DevKeys {
  readonly privateKey: CryptoKey;
  readonly kid: string;
  /** The public key set file the demo policy points at (`jwks_file`). */
  readonly jwksFile: string;
}

/**
 * Loads the development signing key from `dir`, generating it (RSA 2048, RS256) on first use. The private
 * key is written with mode 0600 and never leaves this folder; the public half is written as `jwks.json`.
 * Development only: production tokens come from a real identity provider.
 */
export async function ensureDevKeys(dir: string): Promise<DevKeys> {
  const privateFile = join(dir, 'signing-key.json');
  const jwksFile = join(dir, 'jwks.json');
  const existing = await readFile(privateFile, 'utf8').catch(() => undefined);
  if (existing !== undefined) {
    const jwk = JSON.parse(existing) as JWK;
    if (typeof jwk.kid !== 'string')
      throw new Error(`${privateFile} has no kid; delete ${dir} to start over`);
    return { privateKey: (await importJWK(jwk, DEV_ALGORITHM)) as CryptoKey, kid: jwk.kid, jwksFile };
  }

  const { privateKey, publicKey } = await generateKeyPair(DEV_ALGORITHM, {
    modulusLength: 2048,
    extractable: true,
  });
  const publicJwk = await exportJWK(publicKey);
  const kid = await calculateJwkThumbprint(publicJwk);
  const privateJwk = { ...(await exportJWK(privateKey)), kid, alg: DEV_ALGORITHM, use: 'sig' };
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await writeFile(privateFile, JSON.stringify(privateJwk), { mode: 0o600, flag: 'wx' });
  await chmod(privateFile, 0o600);
  const jwks = { keys: [{ ...publicJwk, kid, alg: DEV_ALGORITHM, use: 'sig' }] };
  await writeFile(jwksFile, JSON.stringify(jwks, null, 2) + '\n');
  return { privateKey, kid, jwksFile };
}
