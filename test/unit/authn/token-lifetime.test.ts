import { beforeAll, describe, expect, it } from 'vitest';
import { IssuerKeys } from '../../../src/authn/issuer-keys.js';
import {
  bearerTokenVerifier,
  verifyAccessToken,
  type VerifyContext,
} from '../../../src/authn/verify-access-token.js';
import { authorize } from '../../../src/authz/authorize.js';
import type { TokenVerification } from '../../../src/authz/token-verification.js';
import { compilePolicy } from '../../../src/policy/compile-policy.js';
import type { CompiledPolicy } from '../../../src/policy/compiled-policy.js';
import { demoPolicyText, DEMO_AUDIENCE, DEMO_ISSUER } from '../../kit/inline-policy.js';
import { createKeySetFetch } from '../../kit/key-set-fetch.js';
import { createManualClock, type ManualClock } from '../../kit/manual-clock.js';
import { generateTestKey, signTestToken, type TestKey } from '../../kit/tokens.js';

// A token lives at most the issuer's max_token_lifetime (exp - iat, or exp - now without iat) and is never
// issued in the future (iat later than now), both with the issuer's clock_tolerance (docs/policy.md, "Token
// validation"). jose checks exp and nbf; these checks run after it, at the instant it verified at.

const HOUR = 3600;
const YEAR = 365 * 24 * HOUR;
const CENTURIES = 300 * YEAR;

const LIFETIME_EXCEEDED = {
  kind: 'invalid',
  reason: 'token_lifetime_exceeded',
  description: "the token's lifetime is longer than this API accepts",
};
const ISSUED_IN_FUTURE = {
  kind: 'invalid',
  reason: 'token_issued_in_future',
  description: 'the token was issued in the future',
};

let signer: TestKey;

beforeAll(async () => {
  signer = await generateTestKey('lifetime-1');
});

/** A verifier for the demo issuer with these settings, its keys served at once, on a manual clock. */
function verifierWith(issuerSettings: Record<string, string | number> = {}) {
  const policy: CompiledPolicy = compilePolicy(
    demoPolicyText(['{ methods: [GET], path: /balance, scopes: [view:balance] }'], { issuerSettings }),
    'policy.yaml',
  );
  const clock: ManualClock = createManualClock();
  const fetch = createKeySetFetch([signer.publicJwk]);
  const keys = new IssuerKeys({
    issuer: policy.issuers.get(DEMO_ISSUER)!,
    fetchKeySet: fetch.fetch,
    now: clock.now,
  });
  const context: VerifyContext = {
    policy,
    keysFor: (issuer) => (issuer === DEMO_ISSUER ? keys : undefined),
    now: clock.now,
  };

  /** Signs a token with these times, relative to now in seconds (`iat: undefined`: none), and verifies it. */
  const verify = async (times: { iat: number | undefined; exp: number }): Promise<TokenVerification> => {
    const now = clock.seconds();
    const token = await signTestToken(
      signer,
      { issuer: DEMO_ISSUER, audience: DEMO_AUDIENCE },
      {
        now,
        claims: {
          iat: times.iat === undefined ? undefined : now + times.iat,
          exp: now + times.exp,
        },
      },
    );
    return verifyAccessToken(token, context);
  };
  return { policy, clock, context, verify };
}

describe('max_token_lifetime (default 24h) and iat', () => {
  it('accepts an ordinary one-hour token with iat', async () => {
    const { verify } = verifierWith();
    expect(await verify({ iat: 0, exp: HOUR })).toMatchObject({
      kind: 'verified',
      token: { subject: 'alice' },
    });
  });

  it('accepts an ordinary one-hour token without iat', async () => {
    const { verify } = verifierWith();
    expect((await verify({ iat: undefined, exp: HOUR })).kind).toBe('verified');
  });

  it('refuses a token whose exp is centuries away, with iat: token_lifetime_exceeded', async () => {
    const { verify } = verifierWith();
    expect(await verify({ iat: 0, exp: CENTURIES })).toEqual(LIFETIME_EXCEEDED);
  });

  it('refuses a token whose exp is centuries away, without iat: token_lifetime_exceeded', async () => {
    const { verify } = verifierWith();
    expect(await verify({ iat: undefined, exp: CENTURIES })).toEqual(LIFETIME_EXCEEDED);
  });

  it('measures the lifetime from iat, not from now: an old token about to expire can still be too long', async () => {
    const { verify } = verifierWith();
    // Issued 24h ago, valid another hour: 25 hours in all, though only one remains.
    expect(await verify({ iat: -24 * HOUR, exp: HOUR })).toEqual(LIFETIME_EXCEEDED);
  });

  it('refuses a token issued far in the future: token_issued_in_future', async () => {
    const { verify } = verifierWith();
    expect(await verify({ iat: 10 * YEAR, exp: 10 * YEAR + HOUR })).toEqual(ISSUED_IN_FUTURE);
  });

  it('refuses a non-numeric iat, as jose does, with token_claims_invalid', async () => {
    const { clock, context } = verifierWith();
    const now = clock.seconds();
    const token = await signTestToken(
      signer,
      { issuer: DEMO_ISSUER, audience: DEMO_AUDIENCE },
      { now, claims: { iat: 'yesterday', exp: now + HOUR } },
    );
    expect(await verifyAccessToken(token, context)).toMatchObject({
      kind: 'invalid',
      reason: 'token_claims_invalid',
    });
  });

  it.each([
    ['token_lifetime_exceeded', { iat: 0, exp: CENTURIES }],
    ['token_issued_in_future', { iat: 10 * YEAR, exp: 10 * YEAR + HOUR }],
  ])('answers %s with 401 invalid_token and its challenge', async (reason, times) => {
    const { policy, clock, context } = verifierWith();
    const now = clock.seconds();
    const token = await signTestToken(
      signer,
      { issuer: DEMO_ISSUER, audience: DEMO_AUDIENCE },
      { now, claims: { iat: now + times.iat, exp: now + times.exp } },
    );
    const evaluation = await authorize(
      policy,
      {
        method: 'GET',
        target: '/balance',
        credentials: { kind: 'presented', scheme: 'Bearer', value: token },
      },
      bearerTokenVerifier(context),
      clock.now,
    );
    expect(evaluation.decision).toMatchObject({ kind: 'deny', code: reason });
    expect(evaluation.answer).toMatchObject({ kind: 'deny', status: 401 });
    if (evaluation.answer.kind !== 'deny') throw new Error('expected a denial');
    expect(JSON.parse(evaluation.answer.body)).toMatchObject({ error: 'invalid_token' });
    expect(new Map(evaluation.answer.headers).get('www-authenticate')).toMatch(
      /^Bearer realm="bank-api", error="invalid_token"/,
    );
  });
});

describe('the boundaries, with clock_tolerance', () => {
  // max_token_lifetime 1h and clock_tolerance 30s: a lifetime of up to 3630 s passes, an iat up to 30 s ahead.
  const settings = { max_token_lifetime: '1h', clock_tolerance: '30s' };

  it.each([
    ['exp - iat = max + tolerance', { iat: 0, exp: HOUR + 30 }, 'verified'],
    ['exp - iat = max + tolerance + 1 s', { iat: 0, exp: HOUR + 31 }, 'token_lifetime_exceeded'],
    ['exp - now = max + tolerance, no iat', { iat: undefined, exp: HOUR + 30 }, 'verified'],
    [
      'exp - now = max + tolerance + 1 s, no iat',
      { iat: undefined, exp: HOUR + 31 },
      'token_lifetime_exceeded',
    ],
    ['iat = now + tolerance', { iat: 30, exp: 30 + HOUR }, 'verified'],
    ['iat = now + tolerance + 1 s', { iat: 31, exp: 31 + HOUR }, 'token_issued_in_future'],
  ])('%s: %j is %s', async (_, times, expected) => {
    const { verify } = verifierWith(settings);
    const result = await verify(times);
    expect(
      result.kind === 'verified' ? 'verified' : result.kind === 'invalid' ? result.reason : result.kind,
    ).toBe(expected);
  });

  it('with clock_tolerance 0, allows exactly max_token_lifetime and an iat of exactly now', async () => {
    const { verify } = verifierWith({ max_token_lifetime: '1h', clock_tolerance: 0 });
    expect((await verify({ iat: 0, exp: HOUR })).kind).toBe('verified');
    expect(await verify({ iat: 0, exp: HOUR + 1 })).toEqual(LIFETIME_EXCEEDED);
    expect(await verify({ iat: 1, exp: HOUR })).toEqual(ISSUED_IN_FUTURE);
  });
});
