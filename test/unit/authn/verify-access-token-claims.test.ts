import { beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { IssuerKeys } from '../../../src/authn/issuer-keys.js';
import type { TokenVerification } from '../../../src/authz/token-verification.js';
import { verifyAccessToken, type VerifyContext } from '../../../src/authn/verify-access-token.js';
import { compilePolicy } from '../../../src/policy/compile-policy.js';
import type { CompiledPolicy } from '../../../src/policy/compiled-policy.js';
import { createKeySetFetch } from '../../kit/key-set-fetch.js';
import { createManualClock, type ManualClock } from '../../kit/manual-clock.js';
import { generateTestKey, signTestToken, type TestKey } from '../../kit/tokens.js';

const AUDIENCE = 'https://my-banking-api';

/** One issuer per claim shape (docs/policy.md, "Claim shapes by provider"). All publish the same key, found at any URL. */
const ISSUERS = {
  /** No claims or require_typ settings: scope and scp, acr, amr, auth_time; any typ. */
  standard: 'https://idp.example/',
  /** Auth0: OAuth scopes in `scope`, API permissions (RBAC) in the `permissions` array. */
  auth0: 'https://tenant.auth0.example/',
  /** Okta (an scp array) and Entra ID (an scp string): scp only. */
  scpOnly: 'https://login.example/tenant/v2.0',
  /** Login claims under namespaced or other names. */
  renamed: 'https://renamed.example/',
  /** RFC 9068 access tokens only. */
  typed: 'https://typed.example/',
} as const;

const CUSTOM = { acr: 'https://bank.example/loa', amr: 'https://bank.example/methods', authTime: 'login_at' };

const POLICY_TEXT = [
  'version: 1',
  'realm: bank-api',
  'issuers:',
  ...[
    [ISSUERS.standard],
    [ISSUERS.auth0, 'claims: { scopes: [scope, permissions] }'],
    [ISSUERS.scpOnly, 'claims: { scopes: [scp] }'],
    [
      ISSUERS.renamed,
      `claims: { acr: '${CUSTOM.acr}', amr: '${CUSTOM.amr}', auth_time: ${CUSTOM.authTime} }`,
    ],
    [ISSUERS.typed, 'require_typ: at+jwt'],
  ].flatMap(([issuer, ...settings]) => [
    `  - issuer: '${issuer}'`,
    `    audiences: [${AUDIENCE}]`,
    `    jwks_uri: '${issuer!.replace(/\/$/, '')}/keys'`,
    '    algorithms: [RS256]',
    ...settings.map((setting) => `    ${setting}`),
  ]),
  'routes: []',
  '',
].join('\n');

type Issuer = (typeof ISSUERS)[keyof typeof ISSUERS];

let policy: CompiledPolicy;
let signer: TestKey;
let clock: ManualClock;
let context: VerifyContext;

beforeAll(async () => {
  signer = await generateTestKey('shapes-1');
  policy = compilePolicy(POLICY_TEXT, 'policy.yaml');
});

beforeEach(() => {
  clock = createManualClock();
  const fetch = createKeySetFetch([signer.publicJwk]);
  const keys = new Map(
    [...policy.issuers.values()].map((issuer) => [
      issuer.issuer,
      new IssuerKeys({ issuer, fetchKeySet: fetch.fetch, now: clock.now }),
    ]),
  );
  context = { policy, keysFor: (issuer) => keys.get(issuer), now: clock.now };
});

/** Verifies a token from `issuer` with these claims (over the defaults) and protected header parameters. */
async function verifyFrom(
  issuer: Issuer,
  claims: Record<string, unknown>,
  header: Record<string, unknown> = {},
): Promise<TokenVerification> {
  const token = await signTestToken(
    signer,
    { issuer, audience: AUDIENCE },
    { now: clock.seconds(), claims, header },
  );
  return verifyAccessToken(token, context);
}

async function scopesFrom(issuer: Issuer, claims: Record<string, unknown>): Promise<ReadonlySet<string>> {
  const result = await verifyFrom(issuer, claims);
  if (result.kind !== 'verified') throw new Error(`expected a verified token, got ${JSON.stringify(result)}`);
  return result.token.scopes;
}

const refused = (reason: string, description: string) => ({ kind: 'invalid', reason, description });

describe('verifyAccessToken: the scope claims each issuer names (claims.scopes)', () => {
  it.each<[string, Issuer, Record<string, unknown>, string[]]>([
    [
      'scope and scp together, by default',
      ISSUERS.standard,
      { scope: 'openid', scp: ['view:balance'] },
      ['openid', 'view:balance'],
    ],
    [
      'not permissions, by default',
      ISSUERS.standard,
      { scope: 'openid', permissions: ['transfer:funds'] },
      ['openid'],
    ],
    [
      'the union of scope and permissions, the Auth0 shape',
      ISSUERS.auth0,
      { scope: 'openid profile', permissions: ['view:balance', 'transfer:funds'] },
      ['openid', 'profile', 'view:balance', 'transfer:funds'],
    ],
    [
      'permissions alone when there is no scope claim',
      ISSUERS.auth0,
      { scope: undefined, permissions: ['view:balance'] },
      ['view:balance'],
    ],
    [
      'not scp, once scope and permissions are configured',
      ISSUERS.auth0,
      { scope: 'openid', scp: ['transfer:funds'] },
      ['openid'],
    ],
    [
      'an scp array, the Okta shape',
      ISSUERS.scpOnly,
      { scope: undefined, scp: ['view:balance', 'transfer:funds'] },
      ['view:balance', 'transfer:funds'],
    ],
    [
      'an scp string, the Entra ID shape',
      ISSUERS.scpOnly,
      { scope: undefined, scp: 'view:balance transfer:funds' },
      ['view:balance', 'transfer:funds'],
    ],
    [
      'scp only, ignoring a scope claim beside it',
      ISSUERS.scpOnly,
      { scope: 'transfer:funds', scp: ['view:balance'] },
      ['view:balance'],
    ],
    [
      'scp only, ignoring even a malformed scope claim it does not read',
      ISSUERS.scpOnly,
      { scope: 42, scp: 'view:balance' },
      ['view:balance'],
    ],
    ['no scopes when none of its claims is present', ISSUERS.scpOnly, { scope: 'view:balance' }, []],
  ])('reads %s', async (_case, issuer, claims, expected) => {
    expect(await scopesFrom(issuer, claims)).toEqual(new Set(expected));
  });

  it.each<[string, Issuer, Record<string, unknown>]>([
    ['a permissions array holding a number', ISSUERS.auth0, { permissions: [42] }],
    ['a permissions claim that is an object', ISSUERS.auth0, { permissions: { 'view:balance': true } }],
    ['a permission holding a quote', ISSUERS.auth0, { permissions: ['view:"balance"'] }],
    ['a malformed scope beside good permissions', ISSUERS.auth0, { scope: 7, permissions: ['view:balance'] }],
    ['an scp that is a number', ISSUERS.scpOnly, { scp: 42 }],
    ['an scp array holding null', ISSUERS.scpOnly, { scp: ['view:balance', null] }],
  ])('refuses %s: a configured scope claim must be readable', async (_case, issuer, claims) => {
    expect(await verifyFrom(issuer, claims)).toEqual(
      refused('token_claims_invalid', 'the scope claim is malformed'),
    );
  });
});

describe('verifyAccessToken: the login claims (acr, amr, auth_time)', () => {
  it('reads acr, amr and auth_time by their standard names by default', async () => {
    const authTime = clock.seconds() - 120;

    expect(
      await verifyFrom(ISSUERS.standard, { acr: 'urn:bank:mfa', amr: ['pwd', 'mfa'], auth_time: authTime }),
    ).toMatchObject({
      kind: 'verified',
      token: { acr: 'urn:bank:mfa', amr: new Set(['pwd', 'mfa']), authTime },
    });
  });

  it('reads them by the names claims gives, ignoring the standard names', async () => {
    const authTime = clock.seconds() - 30;
    const result = await verifyFrom(ISSUERS.renamed, {
      [CUSTOM.acr]: 'urn:bank:mfa',
      [CUSTOM.amr]: ['hwk', 'pin'],
      [CUSTOM.authTime]: authTime,
      // Other values, and malformed ones, under the standard names: not this issuer's login claims.
      acr: 'urn:bank:pwd',
      amr: 'pwd',
      auth_time: 'yesterday',
    });

    expect(result).toEqual({
      kind: 'verified',
      token: {
        issuer: ISSUERS.renamed,
        subject: 'alice',
        scopes: new Set(['view:balance']),
        acr: 'urn:bank:mfa',
        amr: new Set(['hwk', 'pin']),
        authTime,
        audiences: new Set([AUDIENCE]),
        headerClaims: new Map(),
        confirmation: {},
      },
    });
  });

  it('leaves them unset when the token carries none: acr and authTime undefined, amr empty', async () => {
    expect(await verifyFrom(ISSUERS.renamed, { acr: 'urn:bank:mfa', amr: ['mfa'] })).toMatchObject({
      kind: 'verified',
      token: { acr: undefined, amr: new Set(), authTime: undefined },
    });
  });

  it.each<[string, Record<string, unknown>]>([
    ['an amr of exactly 32 methods', { amr: Array.from({ length: 32 }, (_, i) => `m${i}`) }],
    ['an empty amr', { amr: [] }],
    ['an auth_time of 0', { auth_time: 0 }],
  ])('accepts %s', async (_case, claims) => {
    expect((await verifyFrom(ISSUERS.standard, claims)).kind).toBe('verified');
  });

  it.each<[string, Record<string, unknown>, string]>([
    ['an acr that is a number', { acr: 2 }, 'the acr claim is malformed'],
    ['an acr that is a list', { acr: ['urn:bank:mfa'] }, 'the acr claim is malformed'],
    ['an acr that is null', { acr: null }, 'the acr claim is malformed'],
    ['an amr that is a string', { amr: 'mfa' }, 'the amr claim is malformed'],
    ['an amr holding a number', { amr: ['pwd', 1] }, 'the amr claim is malformed'],
    ['an amr holding an object', { amr: [{ method: 'mfa' }] }, 'the amr claim is malformed'],
    [
      'an amr of 33 methods',
      { amr: Array.from({ length: 33 }, (_, i) => `m${i}`) },
      'the amr claim is malformed',
    ],
    ['an auth_time that is a string', { auth_time: '1893456000' }, 'the auth_time claim is malformed'],
    ['a negative auth_time', { auth_time: -1 }, 'the auth_time claim is malformed'],
    ['an auth_time that is null', { auth_time: null }, 'the auth_time claim is malformed'],
  ])('refuses %s: token_claims_invalid', async (_case, claims, description) => {
    expect(await verifyFrom(ISSUERS.standard, claims)).toEqual(refused('token_claims_invalid', description));
  });

  it.each<[string, Record<string, unknown>, string]>([
    ['acr', { [CUSTOM.acr]: 3 }, 'the acr claim is malformed'],
    ['amr', { [CUSTOM.amr]: 'hwk' }, 'the amr claim is malformed'],
    ['auth_time', { [CUSTOM.authTime]: '10:42' }, 'the auth_time claim is malformed'],
  ])('refuses a malformed %s under its configured name', async (_case, claims, description) => {
    expect(await verifyFrom(ISSUERS.renamed, claims)).toEqual(refused('token_claims_invalid', description));
  });
});

describe('verifyAccessToken: the typ header (require_typ)', () => {
  // RFC 7515 section 4.1.9: a typ without "/" means application/<typ>, and media types ignore case.
  it.each(['at+jwt', 'application/at+jwt', 'AT+JWT', 'Application/AT+JWT'])(
    'accepts typ %s where require_typ is at+jwt',
    async (typ) => {
      expect((await verifyFrom(ISSUERS.typed, {}, { typ })).kind).toBe('verified');
    },
  );

  it.each<[string, unknown]>([
    ['JWT', 'JWT'],
    ['application/jwt', 'application/jwt'],
    ['an ID token type', 'id_token+jwt'],
    ['at+jwt with a parameter', 'at+jwt; charset=utf-8'],
    ['no typ at all', undefined],
    ['a typ that is not a string', 1],
  ])('refuses %s where require_typ is at+jwt: token_type_invalid', async (_case, typ) => {
    expect(await verifyFrom(ISSUERS.typed, {}, { typ })).toEqual(
      refused('token_type_invalid', 'the token is not an access token of the required type'),
    );
  });

  it.each<[string, unknown]>([
    ['at+jwt', 'at+jwt'],
    ['JWT', 'JWT'],
    ['application/jwt', 'application/jwt'],
    ['no typ at all', undefined],
  ])('accepts any typ without require_typ: %s', async (_case, typ) => {
    expect((await verifyFrom(ISSUERS.standard, {}, { typ })).kind).toBe('verified');
  });
});
