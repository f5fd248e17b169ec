import { link, mkdir, readFile, rename, stat, unlink, writeFile } from 'node:fs/promises';
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
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const { privateJwk, created } = await readOrCreatePrivateJwk(privateFile);
  if (typeof privateJwk.kid !== 'string')
    throw new Error(`${privateFile} has no kid; delete ${dir} to start over`);
  const privateKey = (await importJWK(privateJwk, DEV_ALGORITHM)) as CryptoKey;
  // (Re)write the public half whenever it is missing, so a deleted jwks.json heals itself.
  if (created || !(await exists(jwksFile))) {
    const { kty, n, e } = privateJwk;
    const jwks = { keys: [{ kty, n, e, kid: privateJwk.kid, alg: DEV_ALGORITHM, use: 'sig' }] };
    const temporary = `${jwksFile}.${process.pid}.tmp`;
    await writeFile(temporary, JSON.stringify(jwks, null, 2) + '\n');
    await rename(temporary, jwksFile); // atomic: a running server never reads half a file
  }
  return { privateKey, kid: privateJwk.kid, jwksFile };
}

async function readOrCreatePrivateJwk(file: string): Promise<{ privateJwk: JWK; created: boolean }> {
  const existing = await readFile(file, 'utf8').catch(() => undefined);
  if (existing !== undefined) return { privateJwk: JSON.parse(existing) as JWK, created: false };
  const { privateKey, publicKey } = await generateKeyPair(DEV_ALGORITHM, {
    modulusLength: 2048,
    extractable: true,
  });
  const kid = await calculateJwkThumbprint(await exportJWK(publicKey));
  const privateJwk = { ...(await exportJWK(privateKey)), kid, alg: DEV_ALGORITHM, use: 'sig' };
  // Written whole to a private temporary file, then linked into place: link() fails if the key exists, so
  // two first uses at once cannot both win, and nobody ever reads half a key.
  const temporary = `${file}.${process.pid}.tmp`;
  await writeFile(temporary, JSON.stringify(privateJwk), { mode: 0o600 });
  try {
    await link(temporary, file);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    return { privateJwk: JSON.parse(await readFile(file, 'utf8')) as JWK, created: false };
  } finally {
    await unlink(temporary);
  }
  return { privateJwk, created: true };
}

async function exists(file: string): Promise<boolean> {
  return stat(file).then(
    () => true,
    () => false,
  );
}
