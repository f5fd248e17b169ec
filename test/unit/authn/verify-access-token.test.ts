import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { base64url, exportSPKI, importJWK, SignJWT, type CryptoKey } from 'jose';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { IssuerKeys } from '../../../src/authn/issuer-keys.js';
import type { TokenVerification } from '../../../src/authz/token-verification.js';
import { verifyAccessToken, type VerifyContext } from '../../../src/authn/verify-access-token.js';
import { compilePolicy } from '../../../src/policy/compile-policy.js';
import type { CompiledPolicy } from '../../../src/policy/compiled-policy.js';
import { createKeySetFetch, type FakeKeySetFetch } from '../../kit/key-set-fetch.js';
import { createManualClock, type ManualClock } from '../../kit/manual-clock.js';
import {
  generateTestKey,
  signTestToken,
  tamperWithPayload,
  unsecuredToken,
  type TestKey,
  type TokenOptions,
} from '../../kit/tokens.js';

const ISSUER = 'https://idp.example/';
const AUDIENCE = 'https://my-banking-api';
const JWKS_URI = 'https://idp.example/.well-known/jwks.json';
/** An issuer whose keys come from a file, with ES256 tokens. */
const FILE_ISSUER = 'https://files.example/';

let dir: string;
let policy: CompiledPolicy;
let signer: TestKey; // the issuer's RS256 key, published in its key set
let otherPublished: TestKey; // a second RS256 key of the issuer, also published
let attacker: TestKey; // an RS256 key nobody published
let ecSigner: TestKey; // ES256, published by the file issuer only
let rs384: TestKey;

let clock: ManualClock;
let fetch: FakeKeySetFetch;
let context: VerifyContext;

beforeAll(async () => {
  [signer, otherPublished, attacker, ecSigner, rs384] = await Promise.all([
    generateTestKey('rs-1'),
    generateTestKey('rs-2'),
    generateTestKey('rs-attacker'),
    generateTestKey('es-1', 'ES256'),
    generateTestKey('rs384-1', 'RS384'),
  ]);
  dir = await mkdtemp(join(tmpdir(), 'authz-verify-'));
  await writeFile(join(dir, 'jwks.json'), JSON.stringify({ keys: [ecSigner.publicJwk] }));
  const text = [
    'version: 1',
    'realm: bank-api',
    'issuers:',
    `  - issuer: ${ISSUER}`,
    `    audiences: [${AUDIENCE}, ${AUDIENCE}/v2]`,
    `    jwks_uri: ${JWKS_URI}`,
    '    algorithms: [RS256]',
    `  - issuer: ${FILE_ISSUER}`,
    `    audiences: [${AUDIENCE}]`,
    '    jwks_file: jwks.json',
    '    algorithms: [ES256]',
    'routes: []',
  ].join('\n');
  policy = compilePolicy(text, join(dir, 'policy.yaml'));
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

beforeEach(() => {
  clock = createManualClock();
  fetch = createKeySetFetch([signer.publicJwk]);
  const keys = new Map(
    [...policy.issuers.values()].map((issuer) => [
      issuer.issuer,
      new IssuerKeys({ issuer, fetchKeySet: fetch.fetch, now: clock.now }),
    ]),
  );
  context = { policy, keysFor: (issuer) => keys.get(issuer), now: clock.now };
});

/** A token from `key` (default: the issuer's published key), issued now by the test clock. */
function sign(options: Omit<TokenOptions, 'now'> = {}, key: TestKey = signer): Promise<string> {
  return signTestToken(key, { issuer: ISSUER, audience: AUDIENCE }, { now: clock.seconds(), ...options });
}

function verify(token: string): Promise<TokenVerification> {
  return verifyAccessToken(token, context);
}

function refused(reason: string, description?: string) {
  return description === undefined
    ? expect.objectContaining({ kind: 'invalid', reason })
    : { kind: 'invalid', reason, description };
}

describe('verifyAccessToken: valid tokens', () => {
  it('verifies a token signed with a published key, giving issuer, subject and scopes', async () => {
    const token = await sign({ claims: { scope: 'view:balance transfer:funds' } });

    expect(await verify(token)).toEqual({
      kind: 'verified',
      token: {
        issuer: ISSUER,
        subject: 'alice',
        scopes: new Set(['view:balance', 'transfer:funds']),
        acr: undefined,
        amr: new Set(),
        authTime: undefined,
        audiences: new Set([AUDIENCE]),
        headerClaims: new Map(),
        confirmation: {},
      },
    });
  });

  it('fetches the key set from the issuer jwks_uri only', async () => {
    await verify(await sign());

    expect(fetch.urls).toEqual([JWKS_URI]);
  });

  it('refuses a token without sub: RFC 9068 section 2.2 requires it of a JWT access token', async () => {
    expect(await verify(await sign({ claims: { sub: undefined } }))).toEqual(
      refused('token_claims_invalid', 'the token has no sub claim'),
    );
  });

  it('verifies a token without sub from an issuer with require_sub: false, leaving the subject undefined', async () => {
    const lenient: CompiledPolicy = {
      ...policy,
      issuers: new Map(
        [...policy.issuers].map(([iss, issuer]) => [iss, { ...issuer, requireSubject: false }]),
      ),
    };
    const result = await verifyAccessToken(await sign({ claims: { sub: undefined } }), {
      ...context,
      policy: lenient,
    });

    expect(result).toEqual({ kind: 'verified', token: expect.objectContaining({ subject: undefined }) });
  });

  it.each([
    ['an array holding the audience', [`https://other.example`, AUDIENCE]],
    ['the second configured audience', `${AUDIENCE}/v2`],
  ])('accepts an aud that is %s', async (_case, aud) => {
    expect((await verify(await sign({ claims: { aud } }))).kind).toBe('verified');
  });

  it('accepts scopes from an scp array', async () => {
    const result = await verify(await sign({ claims: { scope: undefined, scp: ['view:balance'] } }));

    expect(result).toMatchObject({ kind: 'verified', token: { scopes: new Set(['view:balance']) } });
  });

  it('verifies a token without kid against the one published key that fits', async () => {
    const token = await sign({ header: { kid: undefined } });

    expect((await verify(token)).kind).toBe('verified');
  });

  it('verifies a token without kid when several published keys fit, by trying each', async () => {
    fetch.publish([otherPublished.publicJwk, signer.publicJwk]);

    expect((await verify(await sign({ header: { kid: undefined } }))).kind).toBe('verified');
    expect(await verify(await sign({ header: { kid: undefined } }, attacker))).toEqual(
      refused('token_signature_invalid', 'the token signature is invalid'),
    );
  });

  it('verifies a token of an issuer whose keys come from a jwks_file', async () => {
    const token = await signTestToken(
      ecSigner,
      { issuer: FILE_ISSUER, audience: AUDIENCE },
      { now: clock.seconds() },
    );

    expect(await verify(token)).toMatchObject({ kind: 'verified', token: { issuer: FILE_ISSUER } });
    expect(fetch.calls).toBe(0);
  });
});

describe('verifyAccessToken: time', () => {
  it('refuses a token that expired beyond the 30 s clock tolerance', async () => {
    const token = await sign(); // exp = now + 600

    clock.advance((600 + 31) * 1000);

    expect(await verify(token)).toEqual(refused('token_expired', 'the token has expired'));
  });

  it('accepts a token that expired within the clock tolerance', async () => {
    const token = await sign();

    clock.advance((600 + 29) * 1000);

    expect((await verify(token)).kind).toBe('verified');
  });

  it('refuses a token whose exp was long ago', async () => {
    const now = clock.seconds();
    const token = await sign({ claims: { iat: now - 7200, exp: now - 3600 } });

    expect(await verify(token)).toEqual(refused('token_expired', 'the token has expired'));
  });

  it('refuses a token whose nbf is beyond the tolerance in the future', async () => {
    const token = await sign({ claims: { nbf: clock.seconds() + 60 } });

    expect(await verify(token)).toEqual(refused('token_not_yet_valid', 'the token is not valid yet'));
  });

  it('accepts a token whose nbf is in the future within the tolerance, and once it has come', async () => {
    const soon = await sign({ claims: { nbf: clock.seconds() + 20 } });
    const later = await sign({ claims: { nbf: clock.seconds() + 60 } });

    expect((await verify(soon)).kind).toBe('verified');
    clock.advance(60_000);
    expect((await verify(later)).kind).toBe('verified');
  });

  it.each([
    ['missing', undefined],
    ['a string', 'tomorrow'],
  ])('refuses a token whose exp is %s: token_claims_invalid', async (_case, exp) => {
    const token = await sign({ claims: { exp } });

    expect(await verify(token)).toEqual(refused('token_claims_invalid', 'the token has no valid exp claim'));
  });
});

describe('verifyAccessToken: issuer, audience and algorithm', () => {
  it.each([
    ['an unknown issuer', { iss: 'https://evil.example/' }],
    ['the issuer without its trailing slash', { iss: 'https://idp.example' }],
    ['no iss', { iss: undefined }],
    ['an iss that is not a string', { iss: ['https://idp.example/'] }],
  ])('refuses %s without fetching any key', async (_case, claims) => {
    const token = await sign({ claims });

    expect(await verify(token)).toEqual(
      refused('token_issuer_unknown', 'the token was not issued by a trusted issuer'),
    );
    expect(fetch.calls).toBe(0);
  });

  it.each([
    ['another audience', { aud: 'https://other-api.example' }],
    ['an array without the audience', { aud: ['https://a.example', 'https://b.example'] }],
    ['no aud', { aud: undefined }],
    ['a prefix of the audience', { aud: 'https://my-banking' }],
  ])('refuses a token for %s', async (_case, claims) => {
    expect(await verify(await sign({ claims }))).toEqual(
      refused('token_audience_mismatch', 'the token is not meant for this API'),
    );
  });

  it('refuses an ES256 token when only RS256 is allowed, before looking up any key', async () => {
    const token = await sign({}, ecSigner);

    expect(await verify(token)).toEqual(
      refused('token_algorithm_not_allowed', 'the token is signed with an algorithm that is not allowed'),
    );
    expect(fetch.calls).toBe(0);
  });

  it('refuses an RS384 token when only RS256 is allowed, even with a published key', async () => {
    fetch.publish([signer.publicJwk, rs384.publicJwk]);

    expect(await verify(await sign({}, rs384))).toEqual(refused('token_algorithm_not_allowed'));
  });

  it('refuses an RS256 token for the issuer that allows only ES256', async () => {
    const token = await signTestToken(
      signer,
      { issuer: FILE_ISSUER, audience: AUDIENCE },
      { now: clock.seconds() },
    );

    expect(await verify(token)).toEqual(refused('token_algorithm_not_allowed'));
  });

  it('refuses an unsecured alg "none" token', async () => {
    const now = clock.seconds();
    const token = unsecuredToken({
      iss: ISSUER,
      aud: AUDIENCE,
      sub: 'alice',
      scope: 'transfer:funds',
      exp: now + 600,
    });

    expect(await verify(token)).toEqual(refused('token_algorithm_not_allowed'));
    expect(fetch.calls).toBe(0);
  });

  it.each([
    [
      'the PEM of its public key',
      async () => new TextEncoder().encode(await exportSPKI(await publicKeyOf(signer))),
    ],
    ['its public JWK as JSON', async () => new TextEncoder().encode(JSON.stringify(signer.publicJwk))],
  ])('refuses an HS256 token whose secret is %s (key confusion)', async (_case, secret) => {
    const now = clock.seconds();
    const token = await new SignJWT({
      iss: ISSUER,
      aud: AUDIENCE,
      sub: 'mallory',
      scope: 'transfer:funds',
      exp: now + 600,
    })
      .setProtectedHeader({ alg: 'HS256', kid: signer.kid, typ: 'at+jwt' })
      .sign(await secret());

    expect(await verify(token)).toEqual(refused('token_algorithm_not_allowed'));
  });
});

async function publicKeyOf(key: TestKey): Promise<CryptoKey> {
  return (await importJWK(key.publicJwk, key.alg)) as CryptoKey;
}

describe('verifyAccessToken: signature and keys', () => {
  it('refuses a token whose payload was changed after signing', async () => {
    const token = tamperWithPayload(await sign());

    expect(await verify(token)).toEqual(refused('token_signature_invalid', 'the token signature is invalid'));
  });

  it('refuses a token with a kid the issuer never published', async () => {
    const token = await sign({}, attacker);

    expect(await verify(token)).toEqual(
      refused('token_key_unknown', 'the token is signed with an unknown key'),
    );
  });

  it('refuses a token signed by another key under a published kid', async () => {
    const token = await sign({ header: { kid: signer.kid } }, attacker);

    expect(await verify(token)).toEqual(refused('token_signature_invalid'));
  });

  it('ignores jku, x5u and an embedded jwk: an attacker key carried in the header is never used', async () => {
    const token = await sign(
      {
        claims: { scope: 'transfer:funds' },
        header: {
          jwk: attacker.publicJwk,
          jku: 'https://attacker.example/jwks.json',
          x5u: 'https://attacker.example/cert.pem',
        },
      },
      attacker,
    );

    expect(await verify(token)).toEqual(refused('token_key_unknown'));
    expect(fetch.urls.every((url) => url === JWKS_URI)).toBe(true);
  });

  it('ignores an embedded jwk also when the kid is a published one', async () => {
    const token = await sign({ header: { kid: signer.kid, jwk: attacker.publicJwk } }, attacker);

    expect(await verify(token)).toEqual(refused('token_signature_invalid'));
  });

  it.each([
    ['the fetch is rejected', () => fetch.failWith(new Error('connect ECONNREFUSED'))],
    ['the key set answers HTTP 500', () => fetch.failWith(500)],
  ])('answers keys_unavailable when %s and nothing is cached', async (_case, fail) => {
    fail();

    expect(await verify(await sign())).toEqual({ kind: 'keys_unavailable', issuer: ISSUER });
  });

  it('answers keys_unavailable when the jwks_file is missing', async () => {
    const missing = compilePolicy(
      [
        'version: 1',
        'realm: bank-api',
        'issuers:',
        `  - issuer: ${FILE_ISSUER}`,
        `    audiences: [${AUDIENCE}]`,
        '    jwks_file: does-not-exist.json',
        '    algorithms: [ES256]',
        'routes: []',
      ].join('\n'),
      join(dir, 'missing.yaml'),
    );
    const keys = new IssuerKeys({
      issuer: missing.issuers.get(FILE_ISSUER)!,
      fetchKeySet: fetch.fetch,
      now: clock.now,
    });
    const token = await signTestToken(
      ecSigner,
      { issuer: FILE_ISSUER, audience: AUDIENCE },
      { now: clock.seconds() },
    );

    expect(await verifyAccessToken(token, { policy: missing, keysFor: () => keys, now: clock.now })).toEqual({
      kind: 'keys_unavailable',
      issuer: FILE_ISSUER,
    });
  });
});

describe('verifyAccessToken: size and shape', () => {
  it('refuses a token larger than max_token_bytes before parsing it', async () => {
    const token = await sign({ claims: { padding: 'x'.repeat(9000) } });

    expect(token.length).toBeGreaterThan(8192);
    expect(await verify(token)).toEqual(refused('token_too_large', 'the token is too large'));
    expect(fetch.calls).toBe(0);
  });

  it('measures the limit inclusively: 8192 characters are parsed, 8193 are not', async () => {
    expect(await verify('a'.repeat(8192))).toEqual(refused('token_malformed'));
    expect(await verify('a'.repeat(8193))).toEqual(refused('token_too_large'));
  });

  it.each([
    ['three parts of garbage', 'abc.def.ghi'],
    ['two parts', 'a.b'],
    ['one part', 'abc'],
    ['four parts', 'a.b.c.d'],
    ['an empty string', ''],
    [
      'a header that is not JSON',
      `${base64url.encode('not json')}.${base64url.encode(`{"iss":"${ISSUER}"}`)}.c2ln`,
    ],
    [
      'a header without alg',
      `${base64url.encode('{"typ":"JWT"}')}.${base64url.encode(`{"iss":"${ISSUER}"}`)}.c2ln`,
    ],
    [
      'a payload that is a JSON array',
      `${base64url.encode('{"alg":"RS256"}')}.${base64url.encode('[1]')}.sig`,
    ],
  ])('refuses %s as token_malformed', async (_case, token) => {
    expect(await verify(token)).toEqual(refused('token_malformed', 'the token is not a well-formed JWT'));
  });

  it('refuses a signed token whose signature part is not base64url as token_malformed', async () => {
    const [header, payload] = (await sign()).split('.');

    expect(await verify(`${header}.${payload}.***`)).toEqual(
      refused('token_malformed', 'the token is not a well-formed JWT'),
    );
  });
});

describe('verifyAccessToken: claims copied for the upstream', () => {
  it.each([
    ['a newline', 'alice\nx-injected: 1'],
    ['a carriage return', 'alice\r'],
    ['a NUL', 'al\u0000ice'],
    ['DEL', 'alice\u007f'],
    ['a C1 control', 'alice\u0085'],
    ['nothing at all', ''],
    ['more than 1024 characters', 'a'.repeat(1025)],
  ])('refuses a sub with %s: token_claims_invalid', async (_case, sub) => {
    expect(await verify(await sign({ claims: { sub } }))).toEqual(
      refused('token_claims_invalid', 'the sub claim is not a usable subject'),
    );
  });

  it.each([
    ['a number', 42],
    ['an array', ['alice']],
    ['an object', { name: 'alice', length: 5 }],
  ])('refuses a sub that is %s, not a string', async (_case, sub) => {
    expect(await verify(await sign({ claims: { sub } }))).toEqual(refused('token_claims_invalid'));
  });

  it('accepts a sub of exactly 1024 visible ASCII characters, with inner spaces', async () => {
    expect(await verify(await sign({ claims: { sub: 'a'.repeat(1024) } }))).toMatchObject({
      kind: 'verified',
      token: { subject: 'a'.repeat(1024) },
    });
    expect(await verify(await sign({ claims: { sub: 'auth0|a b' } }))).toMatchObject({
      token: { subject: 'auth0|a b' },
    });
  });

  // Header values are ASCII in practice: a UTF-8 subject reaches upstreams garbled, and outer white space
  // is trimmed in transit, so either could name someone else.
  it.each([
    ['non-ASCII letters', 'zoë'],
    ['a leading space', ' alice'],
    ['a trailing space', 'alice '],
  ])('refuses a sub with %s: token_claims_invalid', async (_case, sub) => {
    expect(await verify(await sign({ claims: { sub } }))).toEqual(
      refused('token_claims_invalid', 'the sub claim is not a usable subject'),
    );
  });

  it('refuses a malformed scope claim rather than guessing: token_claims_invalid', async () => {
    expect(await verify(await sign({ claims: { scope: 42 } }))).toEqual(
      refused('token_claims_invalid', 'the scope claim is malformed'),
    );
    expect(await verify(await sign({ claims: { scope: 'view:"balance"' } }))).toEqual(
      refused('token_claims_invalid', 'the scope claim is malformed'),
    );
  });
});
