import { execFile } from 'node:child_process';
import { createPrivateKey, generateKeyPair, randomBytes, X509Certificate } from 'node:crypto';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);
const generateKeyPairAsync = promisify(generateKeyPair);

/** Lifetimes of the development certificates, with units. Development only. */
export const DEV_TLS_DEFAULTS = Object.freeze({
  validDays: 30, // every certificate, the CA's included
  renewBeforeSeconds: 86_400, // a set that expires within a day is made anew
  opensslTimeoutMs: 10_000, // one openssl run
});

/** The folder under the development folder (`.authz-dev/`, env AUTHZ_DEV_DIR) that holds the set. */
export const DEV_TLS_SUBDIR = 'tls';

/** The client certificates of the set: alice's, which tokens get bound to, and a stranger's. */
export const DEV_TLS_CLIENTS = Object.freeze(['alice', 'mallory'] as const);
export type DevTlsClient = (typeof DEV_TLS_CLIENTS)[number];

/** A certificate and its private key, as PEM files. */
export interface DevTlsPair {
  readonly cert: string;
  readonly key: string;
}

/** The files of a development certificate set; the names envoy/envoy.yaml reads under `.authz-dev/tls/`. */
export interface DevTlsFiles {
  /** The folder holding the set (mode 0700). */
  readonly dir: string;
  /** The development CA: it signs every certificate below, and Envoy trusts client certificates it signed. */
  readonly ca: DevTlsPair;
  /** Envoy's server certificate for `localhost`, `127.0.0.1` and `::1`. */
  readonly server: DevTlsPair;
  /** Client certificates (TLS client authentication only), by subject common name. */
  readonly clients: Readonly<Record<DevTlsClient, DevTlsPair>>;
}

/** The file names of the set in `dir`; nothing is read or written. */
export function devTlsFiles(dir: string): DevTlsFiles {
  const pair = (name: string): DevTlsPair => ({
    cert: join(dir, `${name}.crt`),
    key: join(dir, `${name}.key`),
  });
  return Object.freeze({
    dir,
    ca: pair('ca'),
    server: pair('server'),
    clients: Object.freeze({ alice: pair('alice'), mallory: pair('mallory') }),
  });
}

/**
 * Returns the development certificate set in `<devDir>/tls/`, making it on first use and again when a file
 * is missing, unreadable, not signed by the set's CA, or expires within a day. Development only: a real
 * deployment gets its server certificate and client CA from its own PKI.
 *
 * The set is a CA (`CA:TRUE`, path length 0), a server certificate (`serverAuth`) and one client
 * certificate (`clientAuth`) per {@link DEV_TLS_CLIENTS}, all ECDSA P-256 and valid for
 * {@link DEV_TLS_DEFAULTS}.validDays. Keys are made with node:crypto and written with mode 0600; the
 * certificates are signed by the `openssl` command (node:crypto cannot issue certificates), run with fixed
 * arguments and a configuration file of its own, never the system's. A new set is made in a private
 * temporary folder and renamed into place, so nobody ever reads half a set.
 *
 * @param devDir - the development folder (`.authz-dev`, or AUTHZ_DEV_DIR)
 * @param now - the current time in milliseconds since the epoch, for the expiry check
 * @throws Error when openssl is missing or fails, naming the command
 */
export async function ensureDevCertificates(
  devDir: string,
  now: () => number = Date.now,
): Promise<DevTlsFiles> {
  const files = devTlsFiles(join(devDir, DEV_TLS_SUBDIR));
  if (await isUsable(files, now())) return files;
  await mkdir(devDir, { recursive: true, mode: 0o700 });
  const temporary = devTlsFiles(`${files.dir}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  try {
    await makeSet(temporary);
    // Another process may have made a set meanwhile: keep it rather than swap it under its user.
    if (await isUsable(files, now())) return files;
    await rm(files.dir, { recursive: true, force: true });
    try {
      await rename(temporary.dir, files.dir);
    } catch (error) {
      // Another process made a set at the same moment and renamed it into place first: use that one.
      const code = (error as NodeJS.ErrnoException).code;
      if ((code !== 'ENOTEMPTY' && code !== 'EEXIST') || !(await isUsable(files, now()))) throw error;
    }
  } finally {
    await rm(temporary.dir, { recursive: true, force: true });
  }
  return files;
}

async function isUsable(files: DevTlsFiles, nowMs: number): Promise<boolean> {
  try {
    const ca = await loadPair(files.ca);
    const leaves = await Promise.all([files.server, ...Object.values(files.clients)].map(loadPair));
    const renewBy = nowMs + DEV_TLS_DEFAULTS.renewBeforeSeconds * 1000;
    return [ca, ...leaves].every(
      (certificate) =>
        Date.parse(certificate.validTo) > renewBy &&
        certificate.verify(ca.publicKey) &&
        (certificate === ca || certificate.checkIssued(ca)),
    );
  } catch {
    return false; // missing, unreadable or not PEM: make a new set
  }
}

/** Reads a certificate and checks that its key file holds the matching private key. */
async function loadPair(pair: DevTlsPair): Promise<X509Certificate> {
  const [cert, key] = await Promise.all([readFile(pair.cert), readFile(pair.key)]);
  const certificate = new X509Certificate(cert);
  if (!certificate.checkPrivateKey(createPrivateKey(key))) throw new Error(`${pair.key} does not match`);
  return certificate;
}

/** The X.509 v3 extensions of each kind of certificate (RFC 5280 section 4.2.1). */
const EXTENSIONS = {
  ca: ['basicConstraints = critical, CA:TRUE, pathlen:0', 'keyUsage = critical, keyCertSign, cRLSign'],
  server: [
    'basicConstraints = critical, CA:FALSE',
    'keyUsage = critical, digitalSignature',
    'extendedKeyUsage = serverAuth',
    'subjectAltName = DNS:localhost, IP:127.0.0.1, IP:::1',
    'authorityKeyIdentifier = keyid',
  ],
  client: [
    'basicConstraints = critical, CA:FALSE',
    'keyUsage = critical, digitalSignature',
    'extendedKeyUsage = clientAuth',
    'authorityKeyIdentifier = keyid',
  ],
} as const;

async function makeSet(files: DevTlsFiles): Promise<void> {
  await mkdir(files.dir, { mode: 0o700 });
  await issue(files, files.ca, 'authz development CA', EXTENSIONS.ca);
  await issue(files, files.server, 'localhost', EXTENSIONS.server);
  for (const client of DEV_TLS_CLIENTS) await issue(files, files.clients[client], client, EXTENSIONS.client);
}

/** Writes a new key, and a certificate for it signed by the set's CA (self-signed for the CA itself). */
async function issue(
  files: DevTlsFiles,
  pair: DevTlsPair,
  commonName: string,
  extensions: readonly string[],
): Promise<void> {
  const { privateKey } = await generateKeyPairAsync('ec', { namedCurve: 'P-256' });
  const pem = privateKey.export({ type: 'pkcs8', format: 'pem' });
  await writeFile(pair.key, pem, { mode: 0o600 });
  // `req -x509` with a configuration of our own: the system's openssl.cnf adds extensions of its own
  // (v3_ca), which would conflict with these.
  const config = `${pair.cert}.cnf`;
  await writeFile(
    config,
    [
      '[req]',
      'prompt = no',
      'distinguished_name = dn',
      'x509_extensions = ext',
      '[dn]',
      `CN = ${commonName}`,
      '[ext]',
      'subjectKeyIdentifier = hash',
      ...extensions,
      '',
    ].join('\n'),
  );
  const signer = pair === files.ca ? [] : ['-CA', files.ca.cert, '-CAkey', files.ca.key];
  const args = ['req', '-x509', '-new', '-config', config, '-key', pair.key, ...signer];
  args.push('-sha256', '-days', String(DEV_TLS_DEFAULTS.validDays), '-out', pair.cert);
  try {
    await execFileAsync('openssl', args, { timeout: DEV_TLS_DEFAULTS.opensslTimeoutMs });
  } catch (error) {
    const { code, stderr } = error as NodeJS.ErrnoException & { stderr?: string };
    if (code === 'ENOENT') {
      throw new Error(
        'the openssl command is needed to make the development certificates ' +
          '(Debian and Ubuntu: apt-get install openssl)',
        { cause: error },
      );
    }
    throw new Error(`openssl ${args.join(' ')} failed: ${stderr?.trim() ?? (error as Error).message}`, {
      cause: error,
    });
  } finally {
    await rm(config, { force: true });
  }
}
