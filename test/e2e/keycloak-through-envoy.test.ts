import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeJwt, decodeProtectedHeader } from 'jose';
import { claimShape, recordedToken } from '../kit/claim-shapes.js';
import { demoPolicyWith, writeDemoPolicy } from '../kit/demo-policy.js';
import { dpopHeaders, generateDpopKey, type DpopKey } from '../kit/dpop-proofs.js';
import { startEnvoyStack, type EnvoyStack } from '../kit/envoy-stack.js';
import {
  KEYCLOAK_MFA_ACR,
  KEYCLOAK_PASSWORD_ACR,
  KEYCLOAK_RESOURCE,
  startKeycloak,
  type StartedKeycloak,
} from '../kit/keycloak.js';
import { jsonRequest } from '../kit/raw-http.js';
import { waitUntil } from '../kit/wait-until.js';

// Another party's identity provider: a real Keycloak (the pinned distribution, scripts/install-keycloak.sh)
// with the bank's realm (test/fixtures/keycloak/bank-realm.json: a step-up browser flow by level of
// authentication, a TOTP credential, DPoP, the bank's audience) -> tokens from its login pages -> real Envoy
// on envoy/envoy.yaml -> `authz serve` on the demo policy trusting Keycloak through discovery -> `authz
// bank`. Keycloak starts once for this file (some 20 s, ~500 MB).

let keycloak: StartedKeycloak;
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
  keycloak = await startKeycloak();
  holder = await generateDpopKey('ES256');
  // The demo's routes, but for amr: Keycloak's access tokens carry acr (its level of authentication), and
  // amr only with an AMR mapper and a reference value on each authenticator, which this realm leaves out.
  const demo = await demoPolicyWith({});
  const routes = (demo['routes'] as Record<string, unknown>[]).map((route) => {
    const authentication = route['authentication'] as Record<string, unknown> | undefined;
    if (authentication === undefined) return route;
    const withoutAmr = { ...authentication };
    delete withoutAmr['amr'];
    return { ...route, authentication: withoutAmr };
  });
  stack = await startEnvoyStack({
    policyFile: ({ origin }) =>
      writeDemoPolicy({
        public_origin: origin,
        routes,
        issuers: [
          {
            issuer: keycloak.issuer,
            audiences: [KEYCLOAK_RESOURCE],
            discovery: true,
            algorithms: ['RS256'],
            // Keycloak's access tokens have typ JWT, not at+jwt: no require_typ.
            jwks_refresh_cooldown: '1s',
          },
        ],
      }),
  });
  base = stack.envoy.baseUrl;
}, 180_000);

afterAll(async () => {
  await stack?.stop();
  await keycloak?.stop();
});

describe("Keycloak's tokens through real Envoy: the bank's step-up scenario", () => {
  it('shows the balance to a bearer token from a password login (200), whose acr is level 1', async () => {
    const token = await keycloak.token();
    expect(decodeJwt(token)).toMatchObject({ acr: KEYCLOAK_PASSWORD_ACR, aud: KEYCLOAK_RESOURCE });
    const answer = await call('GET', '/balance', { authorization: `Bearer ${token}` });
    expect(answer.status, stack.authz.outputTail(2000)).toBe(200);
    expect(answer.json['account']).toBe(decodeJwt(token).sub);
  });

  it('asks a password login to step up for POST /transfer; the one-time code satisfies it (201)', async () => {
    const weak = await keycloak.token({ dpop: holder });
    const refused = await call('POST', '/transfer', await dpop('POST', '/transfer', weak), {
      to: 'bob',
      amount: 5,
    });
    expect(refused.status).toBe(401);
    expect(refused.json['error']).toBe('insufficient_user_authentication');
    const challenge = refused.challenges.find((line) => line.startsWith('DPoP '));
    const acrValues = /acr_values="([^"]+)"/.exec(challenge ?? '')?.[1];
    expect(acrValues).toBe(KEYCLOAK_MFA_ACR);

    const strong = await keycloak.token({ acrValues, dpop: holder });
    expect(decodeJwt(strong)).toMatchObject({ acr: KEYCLOAK_MFA_ACR, cnf: { jkt: holder.jkt } });
    const answer = await call('POST', '/transfer', await dpop('POST', '/transfer', strong), {
      to: 'bob',
      amount: 5,
    });
    expect(answer.status, stack.authz.outputTail(2000)).toBe(201);
  });

  it('refuses a DPoP-bound token sent as Bearer (401), and serves it with its proof', async () => {
    const bound = await keycloak.token({ dpop: holder });
    expect((await call('GET', '/balance', { authorization: `Bearer ${bound}` })).status).toBe(401);
    expect((await call('GET', '/balance', await dpop('GET', '/balance', bound))).status).toBe(200);
  });

  it("picks up Keycloak's key rotation: a token of the new key is served once its key set is fetched", async () => {
    const before = await keycloak.token();
    await keycloak.rotateKeys();
    const after = await keycloak.token();
    expect(decodeProtectedHeader(after).kid).not.toBe(decodeProtectedHeader(before).kid);
    const status = await waitUntil(
      async () => (await call('GET', '/balance', { authorization: `Bearer ${after}` })).status,
      (got) => got === 200,
      { timeoutMs: 10_000, what: "a token of Keycloak's new key served" },
    );
    expect(status).toBe(200);
    expect((await call('GET', '/balance', { authorization: `Bearer ${before}` })).status).toBe(200);
  });
});

describe('the claim shape docs/policy.md shows for Keycloak (test/fixtures/claim-shapes/keycloak.json)', () => {
  it('is the shape of a token the running Keycloak issues after a step-up with DPoP', async () => {
    const recorded = await recordedToken('keycloak');
    const token = await keycloak.token({ acrValues: KEYCLOAK_MFA_ACR, dpop: holder });
    expect(claimShape(decodeProtectedHeader(token))).toEqual(claimShape(recorded.header));
    expect(claimShape(decodeJwt(token))).toEqual(claimShape(recorded.claims));
    const claims = decodeJwt(token);
    expect(claims['acr']).toBe(recorded.claims['acr']);
    // Keycloak lists the scopes in no set order.
    const scopes = (value: unknown) => String(value).split(' ').sort();
    expect(scopes(claims['scope'])).toEqual(scopes(recorded.claims['scope']));
  });
});
