import { createHash, X509Certificate } from 'node:crypto';
import type { CertificateCheck } from '../authz/possession-proof.js';

/** A URL-encoded PEM certificate larger than this is refused unread, in characters. */
const MAX_CERTIFICATE_CHARS = 32 * 1024;

/**
 * The client certificate Envoy saw on the TLS connection (`attributes.source.certificate`: URL-encoded PEM,
 * sent with the ext_authz filter's `include_peer_certificate`), as the SHA-256 thumbprint RFC 8705 section
 * 3.1 binds tokens to: base64url of the digest of the certificate's DER encoding.
 */
export function clientCertificateCheck(encoded: string | undefined): CertificateCheck {
  if (encoded === undefined || encoded === '') return { kind: 'none' };
  const unreadable = { kind: 'invalid', description: 'the client certificate cannot be read' } as const;
  if (encoded.length > MAX_CERTIFICATE_CHARS) return unreadable;
  let certificate: X509Certificate;
  try {
    certificate = new X509Certificate(decodeURIComponent(encoded));
  } catch {
    return unreadable;
  }
  return { kind: 'present', thumbprint: createHash('sha256').update(certificate.raw).digest('base64url') };
}
