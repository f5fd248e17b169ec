import { execFileSync } from 'node:child_process';
import { createHash, X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clientCertificateCheck } from '../../../src/authn/client-certificate.js';

// The client certificate Envoy saw on the TLS connection (`attributes.source.certificate`: URL-encoded PEM)
// as the thumbprint RFC 8705 section 3.1 binds tokens to: base64url(SHA-256(DER)). The certificates are made
// by the real openssl, in a temporary directory.

const UNREADABLE = { kind: 'invalid', description: 'the client certificate cannot be read' };

let dir: string;
/** A self-signed EC (P-256) client certificate: PEM, and its thumbprint as openssl computes it. */
let ecPem: string;
let ecThumbprint: string;
/** A self-signed RSA client certificate, likewise. */
let rsaPem: string;
let rsaThumbprint: string;
/** The EC certificate's private key, PEM: not a certificate. */
let keyPem: string;

function openssl(args: readonly string[]): Buffer {
  return execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
}

/** Makes a self-signed certificate with openssl; answers its PEM and openssl's thumbprint of its DER. */
function makeCertificate(name: string, keyArgs: readonly string[]): { pem: string; thumbprint: string } {
  openssl(['genpkey', ...keyArgs, '-out', `${name}.key`]);
  openssl([
    'req',
    '-new',
    '-x509',
    '-key',
    `${name}.key`,
    '-subj',
    `/CN=${name} client`,
    '-days',
    '30',
    '-out',
    `${name}.pem`,
  ]);
  openssl(['x509', '-in', `${name}.pem`, '-outform', 'DER', '-out', `${name}.der`]);
  const digest = openssl(['dgst', '-sha256', '-binary', `${name}.der`]);
  return { pem: readFileSync(join(dir, `${name}.pem`), 'utf8'), thumbprint: digest.toString('base64url') };
}

/** URL-encodes a PEM as Envoy does for `source.certificate`. */
const envoyEncoded = (pem: string) => encodeURIComponent(pem);

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'authz-client-cert-'));
  ({ pem: ecPem, thumbprint: ecThumbprint } = makeCertificate('ec', [
    '-algorithm',
    'EC',
    '-pkeyopt',
    'ec_paramgen_curve:P-256',
  ]));
  ({ pem: rsaPem, thumbprint: rsaThumbprint } = makeCertificate('rsa', [
    '-algorithm',
    'RSA',
    '-pkeyopt',
    'rsa_keygen_bits:2048',
  ]));
  keyPem = readFileSync(join(dir, 'ec.key'), 'utf8');
});

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe('clientCertificateCheck', () => {
  it.each([
    ['EC', () => ({ pem: ecPem, thumbprint: ecThumbprint })],
    ['RSA', () => ({ pem: rsaPem, thumbprint: rsaThumbprint })],
  ])(
    'answers the base64url SHA-256 of the DER of an %s certificate, as openssl computes it',
    (_kind, made) => {
      const { pem, thumbprint } = made();
      expect(clientCertificateCheck(envoyEncoded(pem))).toEqual({ kind: 'present', thumbprint });
    },
  );

  it('agrees with node:crypto: base64url(sha256(X509Certificate.raw))', () => {
    const der = new X509Certificate(ecPem).raw;
    const independent = createHash('sha256').update(der).digest('base64url');
    expect(independent).toBe(ecThumbprint);
    expect(clientCertificateCheck(envoyEncoded(ecPem))).toEqual({ kind: 'present', thumbprint: independent });
  });

  it('gives a thumbprint of the RFC 8705 shape: 43 base64url characters', () => {
    const result = clientCertificateCheck(envoyEncoded(ecPem));
    expect(result.kind === 'present' ? result.thumbprint : '').toMatch(/^[A-Za-z0-9_-]{43}$/);
  });

  it('tells two certificates apart', () => {
    expect(ecThumbprint).not.toBe(rsaThumbprint);
    expect(clientCertificateCheck(envoyEncoded(rsaPem))).not.toEqual(
      clientCertificateCheck(envoyEncoded(ecPem)),
    );
  });

  it('reads a PEM that was not URL-encoded as well (nothing to decode)', () => {
    expect(clientCertificateCheck(ecPem)).toEqual({ kind: 'present', thumbprint: ecThumbprint });
  });

  it('reads a PEM with CRLF line ends', () => {
    const crlf = ecPem.replace(/\n/g, '\r\n');
    expect(clientCertificateCheck(envoyEncoded(crlf))).toEqual({ kind: 'present', thumbprint: ecThumbprint });
  });

  it.each([
    ['no certificate attribute', undefined],
    ['an empty certificate attribute', ''],
  ])('answers none for %s', (_case, encoded) => {
    expect(clientCertificateCheck(encoded)).toEqual({ kind: 'none' });
  });

  it.each([
    ['garbage', () => 'garbage'],
    ['URL-encoded garbage', () => envoyEncoded('-----BEGIN CERTIFICATE-----\nnot base64\n')],
    ['a truncated PEM', () => envoyEncoded(ecPem.slice(0, ecPem.length / 2))],
    ['a PEM whose body is corrupted', () => envoyEncoded(ecPem.replace(/\n[A-Za-z0-9+/]{8}/, '\n!!!!!!!!'))],
    ['a private key rather than a certificate', () => envoyEncoded(keyPem)],
    ['a percent sign not followed by two hex digits', () => `${envoyEncoded(ecPem)}%zz`],
    ['a lone percent sign', () => `%${envoyEncoded(ecPem)}`],
    ['an escape that is not UTF-8', () => envoyEncoded(ecPem).replace('%0A', '%C0%0A')],
    [
      'more than 32 KiB, however valid the certificate in it',
      () => envoyEncoded(ecPem + '\n'.repeat(32 * 1024)),
    ],
  ])('refuses %s as unreadable', (_case, encoded) => {
    expect(clientCertificateCheck(encoded())).toEqual(UNREADABLE);
  });

  it('reads a certificate followed by a little white space (the size limit is what refused above)', () => {
    expect(clientCertificateCheck(envoyEncoded(ecPem + '\n'.repeat(100)))).toEqual({
      kind: 'present',
      thumbprint: ecThumbprint,
    });
  });

  it('never echoes the certificate in a refusal', () => {
    const result = clientCertificateCheck(envoyEncoded(ecPem.slice(0, 200)));
    expect(result).toEqual(UNREADABLE);
    expect(JSON.stringify(result)).not.toContain('BEGIN');
  });
});
