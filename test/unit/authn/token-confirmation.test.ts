import { createHash } from 'node:crypto';
import type { JWTPayload } from 'jose';
import { beforeAll, describe, expect, it } from 'vitest';
import { IssuerKeys } from '../../../src/authn/issuer-keys.js';
import { readTokenClaims } from '../../../src/authn/read-token-claims.js';
import { verifyAccessToken, type VerifyContext } from '../../../src/authn/verify-access-token.js';
import type { TokenVerification } from '../../../src/authz/token-verification.js';
import type { IssuerPolicy } from '../../../src/policy/compiled-policy.js';
import { compileRoutes, DEMO_AUDIENCE, DEMO_ISSUER } from '../../kit/inline-policy.js';
import { createKeySetFetch } from '../../kit/key-set-fetch.js';
import { createManualClock } from '../../kit/manual-clock.js';
import { generateTestKey, signTestToken, type TestKey } from '../../kit/tokens.js';

// The `cnf` claim (RFC 7800 section 3.1) as VerifiedToken.confirmation: `jkt` (RFC 9449 section 6.1) and
// `x5t#S256` (RFC 8705 section 3.1), each a base64url SHA-256 thumbprint. A cnf this API cannot check is
// refused as token_claims_invalid, never ignored (docs/sender-constraints.md).

const sha256 = (text: string) => createHash('sha256').update(text).digest('base64url');
const JKT = sha256('a DPoP key'); // 43 characters, as every thumbprint
const X5T = sha256('a client certificate');

const CNF_INVALID = {
  kind: 'invalid',
  reason: 'token_claims_invalid',
  description: 'the cnf claim binds the token in a way this API cannot check',
};

const policy = compileRoutes('{ methods: [GET], path: /balance, scopes: [view:balance] }');
const issuer: IssuerPolicy = policy.issuers.get(DEMO_ISSUER)!;

/** The claims of an ordinary token with `cnf` set as given (`undefined`: none). */
function claimsWith(cnf?: unknown): JWTPayload {
  const payload: JWTPayload = {
    iss: DEMO_ISSUER,
    aud: DEMO_AUDIENCE,
    sub: 'alice',
    scope: 'view:balance',
    iat: 1_893_456_000,
    exp: 1_893_456_600,
  };
  if (cnf !== undefined) payload['cnf'] = cnf;
  return payload;
}

const confirmationOf = (verification: TokenVerification) =>
  verification.kind === 'verified' ? verification.token.confirmation : verification;

describe('readTokenClaims: cnf', () => {
  it('reads a token without cnf as unbound: an empty confirmation', () => {
    const confirmation = confirmationOf(readTokenClaims(claimsWith(), issuer));
    expect(confirmation).toEqual({});
    expect(Object.isFrozen(confirmation)).toBe(true);
  });

  it.each([
    ['a DPoP-bound token (jkt)', { jkt: JKT }, { jkt: JKT }],
    ['a certificate-bound token (x5t#S256)', { 'x5t#S256': X5T }, { x5tS256: X5T }],
    ['a token bound both ways', { jkt: JKT, 'x5t#S256': X5T }, { jkt: JKT, x5tS256: X5T }],
    ['jkt beside members this API does not check', { jkt: JKT, kid: 'k-1' }, { jkt: JKT }],
    ['x5t#S256 beside a jwk', { 'x5t#S256': X5T, jwk: { kty: 'EC' } }, { x5tS256: X5T }],
  ])('reads %s', (_case, cnf, expected) => {
    const confirmation = confirmationOf(readTokenClaims(claimsWith(cnf), issuer));
    expect(confirmation).toEqual(expected);
    expect(Object.isFrozen(confirmation)).toBe(true);
  });

  it.each(['A', 'E', 'I', 'w', '0', '4', '8'])(
    'accepts a jkt ending in %s, a last character a 32-byte digest can have',
    (last) => {
      const jkt = `${JKT.slice(0, 42)}${last}`;
      expect(confirmationOf(readTokenClaims(claimsWith({ jkt }), issuer))).toEqual({ jkt });
    },
  );

  it.each([
    ['a string', 'jkt'],
    ['a number', 42],
    ['true', true],
    ['null', null],
    ['an array', [{ jkt: JKT }]],
    ['an empty object', {}],
    ['a jwk only (RFC 7800 section 3.2)', { jwk: { kty: 'EC', crv: 'P-256', x: 'x', y: 'y' } }],
    ['a kid only', { kid: 'key-1' }],
    ['x5t#S256 under another name (x5t)', { x5t: X5T }],
    ['jkt as a number', { jkt: 42 }],
    ['jkt null', { jkt: null }],
    ['jkt empty', { jkt: '' }],
    ['jkt too short', { jkt: JKT.slice(0, 42) }],
    ['jkt too long', { jkt: `${JKT}A` }],
    ['jkt with base64 padding', { jkt: `${JKT}=` }],
    ['jkt in base64 rather than base64url', { jkt: `+/${JKT.slice(2)}` }],
    ['jkt as hex', { jkt: createHash('sha256').update('k').digest('hex') }],
    ['jkt ending in a character no 32-byte digest ends in', { jkt: `${JKT.slice(0, 42)}B` }],
    ['a valid jkt beside an invalid x5t#S256', { jkt: JKT, 'x5t#S256': 'not a thumbprint' }],
    ['a valid x5t#S256 beside an invalid jkt', { jkt: ['x'], 'x5t#S256': X5T }],
    ['x5t#S256 an object', { 'x5t#S256': { value: X5T } }],
  ])('refuses a cnf that is %s: token_claims_invalid', (_case, cnf) => {
    expect(readTokenClaims(claimsWith(cnf), issuer)).toEqual(CNF_INVALID);
  });

  it('reads only own members: a jkt under __proto__ (as JSON.parse gives it) binds nothing checkable', () => {
    const payload = JSON.parse(
      JSON.stringify(claimsWith()).replace(/}$/, `,"cnf":{"__proto__":{"jkt":"${JKT}"}}}`),
    ) as JWTPayload;
    expect(readTokenClaims(payload, issuer)).toEqual(CNF_INVALID);
  });

  it('does not take cnf from Object.prototype', () => {
    const payload = Object.create({ cnf: { jkt: JKT } }) as JWTPayload;
    Object.assign(payload, claimsWith());
    expect(confirmationOf(readTokenClaims(payload, issuer))).toEqual({});
  });

  it('copies the thumbprints: the confirmation does not change with the payload', () => {
    const cnf = { jkt: JKT };
    const confirmation = confirmationOf(readTokenClaims(claimsWith(cnf), issuer));
    cnf.jkt = X5T;
    expect(confirmation).toEqual({ jkt: JKT });
  });
});

describe('verifyAccessToken: cnf of a signed token', () => {
  let signer: TestKey;

  beforeAll(async () => {
    signer = await generateTestKey('cnf-1');
  });

  async function verify(cnf: unknown): Promise<TokenVerification> {
    const clock = createManualClock();
    const fetch = createKeySetFetch([signer.publicJwk]);
    const keys = new IssuerKeys({ issuer, fetchKeySet: fetch.fetch, now: clock.now });
    const context: VerifyContext = {
      policy,
      keysFor: (name) => (name === DEMO_ISSUER ? keys : undefined),
      now: clock.now,
    };
    const token = await signTestToken(
      signer,
      { issuer: DEMO_ISSUER, audience: DEMO_AUDIENCE },
      { now: clock.seconds(), claims: { cnf } },
    );
    return verifyAccessToken(token, context);
  }

  it('verifies a DPoP- and certificate-bound token with its confirmation', async () => {
    const verification = await verify({ jkt: JKT, 'x5t#S256': X5T });
    expect(verification).toMatchObject({ kind: 'verified', token: { subject: 'alice' } });
    expect(confirmationOf(verification)).toEqual({ jkt: JKT, x5tS256: X5T });
  });

  it('verifies a token without cnf as unbound', async () => {
    expect(confirmationOf(await verify(undefined))).toEqual({});
  });

  it('refuses a signed token bound by cnf.jwk only', async () => {
    expect(await verify({ jwk: { kty: 'EC', crv: 'P-256' } })).toEqual(CNF_INVALID);
  });
});
