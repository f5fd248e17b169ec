import { decodeJwt, decodeProtectedHeader, type JWTPayload } from 'jose';
import { beforeAll, describe, expect, it } from 'vitest';
import { IssuerKeys } from '../../src/authn/issuer-keys.js';
import { verifyAccessToken } from '../../src/authn/verify-access-token.js';
import { devTokenConfig } from '../../src/demo/dev-token/dev-token-config.js';
import { DEV_AUDIENCE, DEV_ISSUER, type DevKeys } from '../../src/demo/dev-token/dev-keys.js';
import { mintDevToken, type DevTokenRequest } from '../../src/demo/dev-token/mint-dev-token.js';
import { compilePolicy } from '../../src/policy/compile-policy.js';
import { createKeySetFetch } from '../support/key-set-fetch.js';
import { createManualClock } from '../support/manual-clock.js';
import { generateTestKey, type TestKey } from '../support/test-issuer.js';

/** 2030-01-01T00:00:00Z, in seconds: when every token here is issued. */
const IAT = Date.UTC(2030, 0, 1) / 1000;

let signer: TestKey;
let keys: DevKeys;

beforeAll(async () => {
  signer = await generateTestKey('dev-key-1');
  keys = { privateKey: signer.privateKey, kid: signer.kid, jwksFile: '' };
});

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
      },
    });
  });
});
