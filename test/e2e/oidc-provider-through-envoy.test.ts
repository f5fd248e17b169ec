import { decodeJwt, decodeProtectedHeader } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { claimShape, recordedToken } from '../kit/claim-shapes.js';
import { writeDemoPolicy } from '../kit/demo-policy.js';
import { jsonRequest } from '../kit/raw-http.js';
import { waitUntil } from '../kit/wait-until.js';
import { dpopHeaders, dpopProof, generateDpopKey, type DpopKey } from '../kit/dpop-proofs.js';
import { startEnvoyStack, type EnvoyStack } from '../kit/envoy-stack.js';
import {
  BANK_RESOURCE,
  MFA_ACR,
  newBrowserSession,
  startOidcProvider,
  type StartedOidcProvider,
} from '../kit/oidc-provider.js';

// Another party's identity provider, not ours: panva's oidc-provider 9 (OpenID Certified), configured for
// the bank as its documentation shows (test/kit/oidc-provider.ts) -> tokens for the bank's API -> real
// Envoy on envoy/envoy.yaml -> `authz serve` on the demo policy (policy.yaml) trusting that provider through
// discovery -> `authz bank`. What a user of that library meets, end to end (issue 24).

let provider: StartedOidcProvider;
/** The same provider as the library ships it: no `extraTokenClaims`, so no login claims in access tokens. */
let plain: StartedOidcProvider;
/** With extraTokenClaims but without the step-up login: acr_values is voluntary to it, as shipped. */
let voluntary: StartedOidcProvider;
let stack: EnvoyStack;
let base: string;
let holder: DpopKey;

/** One request through Envoy on a fresh connection; `body` is sent as JSON. */
const call = (method: string, target: string, headers: Record<string, string>, body?: unknown) =>
  jsonRequest(base, method, target, headers, body);

/** `Authorization: DPoP <token>` and a fresh proof of the holder's key for this request. */
const dpop = (method: string, target: string, token: string) =>
  dpopHeaders(holder, method, `${base}${target}`, token);

beforeAll(async () => {
  [provider, plain, voluntary] = await Promise.all([
    startOidcProvider(),
    startOidcProvider({ copyLoginClaims: false }),
    startOidcProvider({ stepUpLogin: false }),
  ]);
  holder = await generateDpopKey('ES256');
  const trusted = (issuer: string) => ({
    issuer,
    audiences: [BANK_RESOURCE],
    discovery: true,
    algorithms: ['ES256'],
    require_typ: 'at+jwt',
    // A rotated key is fetched as soon as a token names it (the default waits 30 s between fetches).
    jwks_refresh_cooldown: '1s',
  });
  stack = await startEnvoyStack({
    policyFile: ({ origin }) =>
      writeDemoPolicy({
        public_origin: origin,
        issuers: [trusted(provider.issuer), trusted(plain.issuer), trusted(voluntary.issuer)],
      }),
  });
  base = stack.envoy.baseUrl;
});

afterAll(async () => {
  await stack?.stop();
  await Promise.all([provider?.close(), plain?.close(), voluntary?.close()]);
});

describe("oidc-provider's tokens through real Envoy: the bank's step-up scenario", () => {
  it('shows the balance to a bearer token from a password login (200)', async () => {
    const token = await provider.token({ user: 'alice' });
    const answer = await call('GET', '/balance', { authorization: `Bearer ${token}` });
    expect(answer.status, stack.authz.output().slice(-2000)).toBe(200);
    expect(answer.json).toMatchObject({ account: 'alice' });
  });

  it('asks a password login to step up for POST /transfer, and a second factor satisfies it', async () => {
    const weak = await provider.token({ user: 'alice', dpop: holder });
    const refused = await call('POST', '/transfer', await dpop('POST', '/transfer', weak), {
      to: 'bob',
      amount: 5,
    });
    expect(refused.status).toBe(401);
    expect(refused.json['error']).toBe('insufficient_user_authentication');
    const challenge = refused.challenges.find((line) => line.startsWith('DPoP '));
    expect(challenge).toContain('error="insufficient_user_authentication"');
    // RFC 9470 section 3: the client asks again with the challenge's acr_values.
    const acrValues = /acr_values="([^"]+)"/.exec(challenge ?? '')?.[1];
    expect(acrValues).toBe(MFA_ACR);

    const strong = await provider.token({ user: 'alice', acrValues, dpop: holder });
    const answer = await call('POST', '/transfer', await dpop('POST', '/transfer', strong), {
      to: 'bob',
      amount: 5,
    });
    expect(answer.status, stack.authz.output().slice(-2000)).toBe(201);
  });

  it('refuses a DPoP-bound token sent as Bearer, and one whose proof is from another key (401)', async () => {
    const bound = await provider.token({ user: 'alice', dpop: holder });
    expect((await call('GET', '/balance', { authorization: `Bearer ${bound}` })).status).toBe(401);
    const thief = await generateDpopKey('ES256');
    const proof = await dpopProof(thief, { method: 'GET', url: `${base}/balance`, accessToken: bound });
    expect((await call('GET', '/balance', { authorization: `DPoP ${bound}`, dpop: proof })).status).toBe(401);
    expect((await call('GET', '/balance', await dpop('GET', '/balance', bound))).status).toBe(200);
  });

  it("picks up the provider's key rotation: tokens of the new key and of the old one are served", async () => {
    const before = await provider.token({ user: 'alice' });
    const oldKid = provider.kid;
    await provider.rotate();
    expect(provider.kid).not.toBe(oldKid);
    const after = await provider.token({ user: 'alice' });
    // The unknown kid is fetched at once unless a fetch ran within jwks_refresh_cooldown (1 s here): then
    // by the first request after it.
    const status = await waitUntil(
      async () => (await call('GET', '/balance', { authorization: `Bearer ${after}` })).status,
      (got) => got === 200,
      { timeoutMs: 5_000, what: "a token of the provider's new key served" },
    );
    expect(status).toBe(200);
    const fetches = stack.authz
      .logLines()
      .filter((line) => line['event'] === 'jwks_fetch' && line['issuer'] === provider.issuer);
    expect(fetches.map((line) => [line['trigger'], line['outcome'], line['keys']])).toEqual([
      ['initial', 'ok', 1],
      ['unknown_key', 'ok', 2],
    ]);
    expect((await call('GET', '/balance', { authorization: `Bearer ${before}` })).status).toBe(200);
  });
});

describe('step-up with single sign-on: the client keeps its session at the provider', () => {
  /** POST /transfer with a token `acrValues` got from `op` in `session`: the answer's status. */
  const transfer = async (
    op: StartedOidcProvider,
    session: ReturnType<typeof newBrowserSession>,
    acrValues?: string,
  ) => {
    const token = await op.token({
      user: 'alice',
      dpop: holder,
      session,
      ...(acrValues === undefined ? {} : { acrValues }),
    });
    return (await call('POST', '/transfer', await dpop('POST', '/transfer', token), { to: 'bob', amount: 5 }))
      .status;
  };

  it("re-sending the challenge's acr_values makes the step-up login ask for the second factor (201)", async () => {
    const session = newBrowserSession();
    expect(await transfer(provider, session)).toBe(401);
    expect(await transfer(provider, session, MFA_ACR)).toBe(201);
  });

  it('as shipped, acr_values is voluntary: the session answers with the same password login (401 again)', async () => {
    const session = newBrowserSession();
    expect(await transfer(voluntary, session)).toBe(401);
    expect(await transfer(voluntary, session, MFA_ACR)).toBe(401);
  });
});

describe('oidc-provider as shipped, without extraTokenClaims', () => {
  it('its access tokens carry no acr or amr, so no login, however strong, passes a step-up route', async () => {
    const strong = await plain.token({ user: 'alice', acrValues: MFA_ACR, dpop: holder });
    const answer = await call('POST', '/transfer', await dpop('POST', '/transfer', strong), {
      to: 'bob',
      amount: 5,
    });
    expect(answer.status).toBe(401);
    expect(answer.json['error']).toBe('insufficient_user_authentication');
    expect((await call('GET', '/balance', await dpop('GET', '/balance', strong))).status).toBe(200);
  });
});

describe('the claim shape docs/policy.md shows for oidc-provider (test/fixtures/claim-shapes/oidc-provider.json)', () => {
  it('is the shape of a token the running provider issues after a step-up with DPoP', async () => {
    const recorded = await recordedToken('oidc-provider');
    const token = await provider.token({ user: 'alice', acrValues: MFA_ACR, dpop: holder });
    expect(claimShape(decodeProtectedHeader(token))).toEqual(claimShape(recorded.header));
    expect(claimShape(decodeJwt(token))).toEqual(claimShape(recorded.claims));
    expect(decodeJwt(token)).toMatchObject({
      acr: recorded.claims['acr'],
      amr: recorded.claims['amr'],
      scope: recorded.claims['scope'],
      aud: BANK_RESOURCE,
    });
  });
});
