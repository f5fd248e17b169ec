import { X509Certificate } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { mkdtemp, rm, unlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  DEV_TLS_CLIENTS,
  DEV_TLS_DEFAULTS,
  ensureDevCertificates,
  type DevTlsFiles,
} from '../../src/demo/dev-tls/dev-certificates.js';

// The development CA and certificates of `npm run demo` (src/demo/dev-tls), made with the real openssl.

const SERVER_AUTH = '1.3.6.1.5.5.7.3.1';
const CLIENT_AUTH = '1.3.6.1.5.5.7.3.2';
const DAY_MS = 86_400_000;

let devDir: string;

beforeEach(async () => {
  devDir = await mkdtemp(path.join(tmpdir(), 'dev-certificates-'));
});

afterEach(async () => {
  await rm(devDir, { recursive: true, force: true });
});

const certificate = (file: string) => new X509Certificate(readFileSync(file));
const mode = (file: string) => statSync(file).mode & 0o777;
const caOf = (files: DevTlsFiles) => readFileSync(files.ca.cert, 'utf8');

describe('ensureDevCertificates', () => {
  it('makes a CA, a server certificate for localhost and a client certificate for alice and mallory', async () => {
    const files = await ensureDevCertificates(devDir);

    expect(files.dir).toBe(path.join(devDir, 'tls'));
    const ca = certificate(files.ca.cert);
    expect(ca.ca).toBe(true);
    expect(ca.subject).toBe('CN=authz development CA');

    const server = certificate(files.server.cert);
    expect(server.ca).toBe(false);
    expect(server.checkIssued(ca) && server.verify(ca.publicKey)).toBe(true);
    expect(server.keyUsage).toEqual([SERVER_AUTH]);
    expect(server.checkHost('localhost')).toBe('localhost');
    expect(server.checkIP('127.0.0.1')).toBe('127.0.0.1');
    expect(server.checkIP('::1')).toBe('::1');

    for (const name of DEV_TLS_CLIENTS) {
      const client = certificate(files.clients[name].cert);
      expect(client.subject).toBe(`CN=${name}`);
      expect(client.ca).toBe(false);
      expect(client.checkIssued(ca) && client.verify(ca.publicKey)).toBe(true);
      expect(client.keyUsage).toEqual([CLIENT_AUTH]);
    }
    const validFor = Date.parse(server.validTo) - Date.now();
    expect(validFor).toBeGreaterThan((DEV_TLS_DEFAULTS.validDays - 1) * DAY_MS);
    expect(validFor).toBeLessThanOrEqual(DEV_TLS_DEFAULTS.validDays * DAY_MS);
  });

  it('keeps the keys private (0600, in a 0700 folder) and leaves nothing else behind', async () => {
    const files = await ensureDevCertificates(devDir);
    expect(mode(files.dir)).toBe(0o700);
    for (const pair of [files.ca, files.server, ...Object.values(files.clients)]) {
      expect(mode(pair.key), pair.key).toBe(0o600);
    }
    expect(readdirSync(files.dir).sort()).toEqual(
      ['alice', 'ca', 'mallory', 'server'].flatMap((name) => [`${name}.crt`, `${name}.key`]),
    );
    expect(readdirSync(devDir)).toEqual(['tls']);
  });

  it('reuses a valid set', async () => {
    const first = await ensureDevCertificates(devDir);
    const server = readFileSync(first.server.cert, 'utf8');
    const second = await ensureDevCertificates(devDir);
    expect(readFileSync(second.server.cert, 'utf8')).toBe(server);
  });

  it('makes a new set when a file is missing', async () => {
    const first = await ensureDevCertificates(devDir);
    const ca = caOf(first);
    await unlink(first.clients.alice.key);
    const second = await ensureDevCertificates(devDir);
    expect(caOf(second)).not.toBe(ca);
    expect(statSync(second.clients.alice.key).isFile()).toBe(true);
  });

  it('makes a new set when a certificate expires within a day', async () => {
    const first = await ensureDevCertificates(devDir);
    const ca = caOf(first);
    const nearlyExpired = () => Date.now() + (DEV_TLS_DEFAULTS.validDays - 0.5) * DAY_MS;
    expect(caOf(await ensureDevCertificates(devDir, nearlyExpired))).not.toBe(ca);
  });

  it('gives two first uses at once one usable set', async () => {
    const [one, two] = await Promise.all([ensureDevCertificates(devDir), ensureDevCertificates(devDir)]);
    expect(one).toEqual(two);
    const ca = certificate(one.ca.cert);
    expect(certificate(one.clients.alice.cert).verify(ca.publicKey)).toBe(true);
    expect(readdirSync(devDir)).toEqual(['tls']);
  });
});
