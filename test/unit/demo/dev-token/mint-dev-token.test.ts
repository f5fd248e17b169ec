import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { decodeJwt, decodeProtectedHeader, type JWTPayload } from 'jose';
import { beforeAll, describe, expect, it } from 'vitest';
import { IssuerKeys } from '../../../../src/authn/issuer-keys.js';
import { verifyAccessToken } from '../../../../src/authn/verify-access-token.js';
import { devTokenConfig } from '../../../../src/demo/dev-token/dev-token-config.js';
import { DEV_AUDIENCE, DEV_ISSUER, type DevKeys } from '../../../../src/demo/dev-token/dev-keys.js';
import { mintDevToken, type DevTokenRequest } from '../../../../src/demo/dev-token/mint-dev-token.js';
import {
  certificateThumbprint,
  isSha256Thumbprint,
  readCertificateThumbprint,
} from '../../../../src/demo/dev-token/token-binding.js';
import { compilePolicy } from '../../../../src/policy/compile-policy.js';
import { createKeySetFetch } from '../../../kit/key-set-fetch.js';
import { createManualClock } from '../../../kit/manual-clock.js';
import { generateTestKey, type TestKey } from '../../../kit/tokens.js';
import { usageErrorFrom } from '../../../kit/usage-error-from.js';

/** 2030-01-01T00:00:00Z, in seconds: when every token here is issued. */
const IAT = Date.UTC(2030, 0, 1) / 1000;

let signer: TestKey;
let keys: DevKeys;

beforeAll(async () => {
  signer = await generateTestKey('dev-key-1');
  keys = { privateKey: signer.privateKey, kid: signer.kid, jwksFile: '' };
});

/**
 * A self-signed certificate (its key thrown away) and its RFC 8705 thumbprint, computed by openssl:
 * `openssl x509 -in FILE -outform DER | openssl dgst -sha256 -binary | base64 | tr '+/' '-_' | tr -d '='`
 */
const CERTIFICATE_FILE = fileURLToPath(
  new URL('../../../fixtures/tls/client-certificate.pem', import.meta.url),
);
const CERTIFICATE_THUMBPRINT = 'uQB7FYHcMssqK-cKBN0R7v74Rgu0jKYHMkEzUXcqgzg';
/** A JWK thumbprint of the shape RFC 7638 gives (base64url SHA-256). */
const JKT = 'NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs';

const BASE: DevTokenRequest = { scopes: ['view:balance'], subject: 'alice', ttlSeconds: 600, issuedAt: IAT };

async function mintedClaims(request: Partial<DevTokenRequest> = {}): Promise<JWTPayload> {
  return decodeJwt(await mintDevToken(keys, { ...BASE, ...request }));
}

/** The login claims of a payload, with `absent` for a claim that is not there at all. */
function loginClaims(payload: JWTPayload) {
  const claim = (name: string) => (name in payload ? payload[name] : 'absent');
  return { acr: claim('acr'), amr: claim('amr'), auth_time: claim('auth_time') };
}

describe('mintDevToken', () => {
  it('mints an RFC 9068 access token: at+jwt, RS256 with the key id, the dev issuer and audience', async () => {
    const token = await mintDevToken(keys, BASE);
    const payload = decodeJwt(token);

    expect(decodeProtectedHeader(token)).toEqual({ alg: 'RS256', kid: 'dev-key-1', typ: 'at+jwt' });
    expect(payload).toMatchObject({
      iss: DEV_ISSUER,
      aud: DEV_AUDIENCE,
      sub: 'alice',
      scope: 'view:balance',
      client_id: 'authz-dev-token',
      iat: IAT,
      exp: IAT + 600,
    });
    expect(payload.jti).toMatch(/^[0-9a-f-]{36}$/);
  });

  it.each<[string, Partial<DevTokenRequest>, ReturnType<typeof loginClaims>]>([
    [
      'a login at the time of issue, and no acr or amr, by default',
      {},
      { acr: 'absent', amr: 'absent', auth_time: IAT },
    ],
    ['an acr', { acr: 'urn:bank:mfa' }, { acr: 'urn:bank:mfa', amr: 'absent', auth_time: IAT }],
    [
      'amr methods, in order',
      { amr: ['pwd', 'mfa'] },
      { acr: 'absent', amr: ['pwd', 'mfa'], auth_time: IAT },
    ],
    ['no amr for an empty list', { amr: [] }, { acr: 'absent', amr: 'absent', auth_time: IAT }],
    [
      'auth_time = iat - authAgeSeconds',
      { authAgeSeconds: 900 },
      { acr: 'absent', amr: 'absent', auth_time: IAT - 900 },
    ],
    [
      'all of them',
      { acr: 'urn:bank:mfa', amr: ['pwd', 'otp', 'mfa'], authAgeSeconds: 60 },
      { acr: 'urn:bank:mfa', amr: ['pwd', 'otp', 'mfa'], auth_time: IAT - 60 },
    ],
  ])('writes %s', async (_case, request, expected) => {
    expect(loginClaims(await mintedClaims(request))).toEqual(expected);
  });

  it('mints what devTokenConfig parsed from --acr, --amr "pwd,mfa" and --auth-age', async () => {
    const config = devTokenConfig(
      ['--scope', 'transfer:funds', '--acr', 'urn:bank:mfa', '--amr', 'pwd,mfa', '--auth-age', '15m'],
      {},
    );

    expect(await mintedClaims({ ...config, issuedAt: IAT })).toMatchObject({
      scope: 'transfer:funds',
      acr: 'urn:bank:mfa',
      amr: ['pwd', 'mfa'],
      auth_time: IAT - 900,
    });
  });

  it('mints a token the verifier accepts, with the login it describes, under require_typ: at+jwt', async () => {
    const policy = compilePolicy(
      [
        'version: 1',
        'realm: bank-api',
        'issuers:',
        `  - issuer: ${DEV_ISSUER}`,
        `    audiences: [${DEV_AUDIENCE}]`,
        '    jwks_uri: https://idp.example/.well-known/jwks.json',
        '    algorithms: [RS256]',
        '    require_typ: at+jwt',
        'routes: []',
      ].join('\n'),
      'policy.yaml',
    );
    const clock = createManualClock(IAT * 1000);
    const issuerKeys = new IssuerKeys({
      issuer: policy.issuers.get(DEV_ISSUER)!,
      fetchKeySet: createKeySetFetch([signer.publicJwk]).fetch,
      now: clock.now,
    });
    const token = await mintDevToken(keys, {
      ...BASE,
      scopes: ['transfer:funds'],
      acr: 'urn:bank:mfa',
      amr: ['pwd', 'mfa'],
      authAgeSeconds: 120,
    });

    expect(await verifyAccessToken(token, { policy, keysFor: () => issuerKeys, now: clock.now })).toEqual({
      kind: 'verified',
      token: {
        issuer: DEV_ISSUER,
        subject: 'alice',
        scopes: new Set(['transfer:funds']),
        acr: 'urn:bank:mfa',
        amr: new Set(['pwd', 'mfa']),
        authTime: IAT - 120,
        audiences: new Set([DEV_AUDIENCE]),
        headerClaims: new Map(),
        confirmation: {},
      },
    });
    // Bound to a certificate and a DPoP key, the verifier reads both bindings from cnf.
    const bound = await mintDevToken(keys, {
      ...BASE,
      confirmation: { jkt: JKT, 'x5t#S256': CERTIFICATE_THUMBPRINT },
    });
    expect(
      await verifyAccessToken(bound, { policy, keysFor: () => issuerKeys, now: clock.now }),
    ).toMatchObject({
      kind: 'verified',
      token: { confirmation: { jkt: JKT, x5tS256: CERTIFICATE_THUMBPRINT } },
    });
  });
});

describe('sender-constrained dev tokens', () => {
  it('writes no cnf claim unless asked to bind the token', async () => {
    expect(await mintedClaims()).not.toHaveProperty('cnf');
    expect(await mintedClaims({ confirmation: {} })).not.toHaveProperty('cnf');
  });

  it.each([
    ['a certificate (RFC 8705)', { 'x5t#S256': CERTIFICATE_THUMBPRINT }],
    ['a DPoP key (RFC 9449)', { jkt: JKT }],
    ['both', { jkt: JKT, 'x5t#S256': CERTIFICATE_THUMBPRINT }],
  ])('binds the token to %s with cnf', async (_case, confirmation) => {
    expect((await mintedClaims({ confirmation })).cnf).toEqual(confirmation);
  });

  it('takes the base64url SHA-256 of the DER certificate, as openssl computes it', async () => {
    expect(await readCertificateThumbprint(CERTIFICATE_FILE)).toBe(CERTIFICATE_THUMBPRINT);
  });

  it('parses --bind-cert and --dpop-jkt, and leaves both out by default', () => {
    expect(devTokenConfig(['--scope', 'view:balance'], {})).toMatchObject({
      bindCertFile: undefined,
      dpopJkt: undefined,
    });
    expect(devTokenConfig(['--bind-cert', CERTIFICATE_FILE, '--dpop-jkt', JKT], {})).toMatchObject({
      bindCertFile: CERTIFICATE_FILE,
      dpopJkt: JKT,
    });
  });

  it.each([
    [['--dpop-jkt', JKT.slice(1)], /--dpop-jkt: .* is not a JWK SHA-256 thumbprint/],
    [['--dpop-jkt', `${JKT}=`], /--dpop-jkt/],
    [['--dpop-jkt', JKT.replace('N', '+')], /--dpop-jkt/],
    // 43 characters, but the last one sets bits beyond the 256 of a SHA-256 digest.
    [['--dpop-jkt', `${JKT.slice(0, 42)}t`], /--dpop-jkt/],
    [['--bind-cert', ''], /--bind-cert needs the file of a PEM certificate/],
    [['--bind-cert'], /--bind-cert/],
  ])('refuses %j with a usage error', (argv, message) => {
    expect(usageErrorFrom(() => devTokenConfig(argv, {})).message).toMatch(message);
  });

  it('refuses a --bind-cert file that is missing or holds no certificate, naming flag and file', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'bind-cert-'));
    try {
      const missing = path.join(dir, 'missing.pem');
      await expect(readCertificateThumbprint(missing)).rejects.toMatchObject({
        code: 'ERR_USAGE',
        message: `--bind-cert: cannot read "${missing}" (ENOENT)`,
      });
      const notCertificate = path.join(dir, 'key.pem');
      await writeFile(notCertificate, '-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n');
      await expect(readCertificateThumbprint(notCertificate)).rejects.toMatchObject({
        code: 'ERR_USAGE',
        message: expect.stringContaining(`--bind-cert: "${notCertificate}" holds no PEM certificate`),
      });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('recognises a base64url SHA-256 thumbprint and nothing else', () => {
    expect(isSha256Thumbprint(JKT)).toBe(true);
    expect(isSha256Thumbprint(certificateThumbprint(readFileSync(CERTIFICATE_FILE)))).toBe(true);
    for (const other of ['', JKT.slice(1), `${JKT}A`, `${JKT.slice(0, 42)}t`, JKT.replace('N', '/')]) {
      expect(isSha256Thumbprint(other), other).toBe(false);
    }
  });
});
