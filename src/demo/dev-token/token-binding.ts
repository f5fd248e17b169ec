import { createHash, X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { UsageError } from '../../args/usage-error.js';

/**
 * The `cnf` (confirmation) claim of a sender-constrained token: the RFC 7638 thumbprint of the DPoP key
 * (`jkt`, RFC 9449 section 6.1) and/or the SHA-256 thumbprint of the client certificate (`x5t#S256`,
 * RFC 8705 section 3.1), both base64url without padding.
 */
export interface TokenConfirmation {
  readonly jkt?: string;
  readonly 'x5t#S256'?: string;
}

/** A base64url SHA-256 digest: 43 characters, the last of which carries only 4 bits (2 unused bits zero). */
const SHA256_BASE64URL = /^[A-Za-z0-9_-]{42}[AEIMQUYcgkosw048]$/;

/** Whether `value` is a base64url (unpadded, canonical) SHA-256 thumbprint, as `cnf.jkt` must be. */
export function isSha256Thumbprint(value: string): boolean {
  return SHA256_BASE64URL.test(value);
}

/**
 * The RFC 8705 certificate thumbprint: base64url(SHA-256(DER of the certificate)).
 *
 * @param pem - a PEM certificate (the first one, for a file holding a chain)
 * @throws Error from node:crypto when `pem` holds no certificate
 */
export function certificateThumbprint(pem: string | Buffer): string {
  return createHash('sha256').update(new X509Certificate(pem).raw).digest('base64url');
}

/**
 * Reads the PEM certificate in `file` for `--bind-cert` and returns its RFC 8705 thumbprint.
 *
 * @throws UsageError naming the flag and the file when it cannot be read or holds no certificate
 */
export async function readCertificateThumbprint(file: string): Promise<string> {
  let pem: Buffer;
  try {
    pem = await readFile(file);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? (error as Error).message;
    throw new UsageError(`--bind-cert: cannot read "${file}" (${code})`);
  }
  try {
    return certificateThumbprint(pem);
  } catch {
    throw new UsageError(`--bind-cert: "${file}" holds no PEM certificate (-----BEGIN CERTIFICATE-----)`);
  }
}
