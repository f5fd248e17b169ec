import type { JWTPayload } from 'jose';
import { describe, expect, it } from 'vitest';
import { readAccessTokenCredentials } from '../../../src/authn/access-token-credentials.js';
import type { Answer } from '../../../src/authz/answer-for-decision.js';
import { authorize, type Authorization } from '../../../src/authz/authorize.js';
import type { ProofRequest } from '../../../src/authz/possession-proof.js';
import { compilePolicy } from '../../../src/policy/compile-policy.js';
import { claimsVerifier } from '../../kit/claims-verifier.js';

// The pipeline with sender constraints (docs/sender-constraints.md): the route's constraint, the token's
// binding and the proofs the verifier reports, end to end through authorize() and the answer. Proofs are
// the test verifier's stand-ins (`thumbprint:T`, `invalid:CODE`; test/kit/claims-verifier.ts).

const ISSUER = 'https://idp.example/';
const JKT = 'NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs';
const OTHER_JKT = 'hHEnfBkN_9Cy3hq7EdMNVkhJFtAgPtzGzX4Kk-6BAEc';
const X5T = 'A1bSuhDXVPRN9aSUbkpSAMm8GS1P-FBhkeKl3kyYs1I';

const policy = compilePolicy(
  `version: 1
realm: bank-api
public_origin: [https://bank.example, http://127.0.0.1:8000]
sender_constraint: { dpop: allowed, mtls: allowed }
dpop: { algorithms: [ES256, PS256] }
issuers:
  - issuer: ${ISSUER}
    audiences: [https://my-banking-api]
    jwks_uri: https://idp.example/jwks.json
    algorithms: [RS256]
routes:
  - { methods: [GET], path: /balance, scopes: [view:balance] }
  - { methods: [POST], path: /transfer, scopes: [transfer:funds], sender_constraint: { dpop: required } }
  - { methods: [GET], path: /legacy, scopes: [view:balance], sender_constraint: { dpop: off, mtls: off } }
  - { methods: [GET], path: /fapi, scopes: [view:balance], sender_constraint: { dpop: required, mtls: required } }
`,
  'policy.yaml',
);

const BASE: JWTPayload = {
  iss: ISSUER,
  aud: 'https://my-banking-api',
  sub: 'alice',
  scope: 'view:balance transfer:funds',
};
const TOKENS: Record<string, JWTPayload> = {
  unbound: BASE,
  dpop: { ...BASE, cnf: { jkt: JKT } },
  cert: { ...BASE, cnf: { 'x5t#S256': X5T } },
  jwkBound: { ...BASE, cnf: { jwk: { kty: 'EC' } } },
  narrow: { ...BASE, scope: 'view:balance', cnf: { jkt: JKT } },
  both: { ...BASE, cnf: { jkt: JKT, 'x5t#S256': X5T } },
};

interface Call {
  method?: string;
  path?: string;
  authorization: string;
  proofs?: string[];
  certificate?: string;
}

const asked: ProofRequest[] = [];
/** The thumbprints of the proofs whose jti the core claimed, in the last call. */
let claimed: readonly string[] = [];

async function call({
  method = 'GET',
  path = '/balance',
  authorization,
  proofs,
  certificate,
}: Call): Promise<Authorization> {
  const verifier = claimsVerifier(policy, TOKENS);
  claimed = verifier.claimed;
  const proving = {
    verify: verifier.verify,
    prove: (presented: string, request: ProofRequest) => {
      asked.push(request);
      return verifier.prove(presented, request);
    },
  };
  return authorize(
    policy,
    {
      method,
      target: path,
      host: 'bank.example',
      credentials: readAccessTokenCredentials([authorization]),
      ...(proofs === undefined ? {} : { dpopProofs: proofs }),
      ...(certificate === undefined ? {} : { clientCertificate: certificate }),
    },
    proving,
    () => Date.UTC(2026, 10, 30),
  );
}

function denial(authorization: Authorization) {
  const { decision, answer } = authorization;
  if (decision.kind !== 'deny' || answer.kind !== 'deny')
    throw new Error(`expected a denial, got ${decision.kind}`);
  const challenges = answer.headers.filter(([name]) => name === 'www-authenticate').map(([, value]) => value);
  return {
    code: decision.code,
    status: answer.status,
    challenges,
    headers: answer.headers,
    body: JSON.parse(answer.body) as Record<string, string>,
    answer,
  };
}

const allowedAnswer = (answer: Answer) => answer.kind === 'allow';

describe('authorize with sender constraints', () => {
  it('allows a DPoP-bound token with a proof from its key, and asks the verifier with the service origins', async () => {
    asked.length = 0;
    const result = await call({
      method: 'POST',
      path: '/transfer?x=1',
      authorization: 'DPoP dpop',
      proofs: [`thumbprint:${JKT}`],
    });

    expect(allowedAnswer(result.answer)).toBe(true);
    expect(asked).toHaveLength(1);
    expect(asked[0]).toMatchObject({
      method: 'POST',
      uris: ['https://bank.example/transfer', 'http://127.0.0.1:8000/transfer'],
      service: 'default',
      certificate: false,
      dpopProofs: [`thumbprint:${JKT}`],
    });
    expect(asked[0]?.dpop?.algorithms).toEqual(['ES256', 'PS256']);
  });

  it('asks for no proof for an unbound bearer token where nothing is required', async () => {
    asked.length = 0;
    const result = await call({ authorization: 'Bearer unbound', proofs: ['ignored'] });

    expect(allowedAnswer(result.answer)).toBe(true);
    expect(asked).toHaveLength(0);
  });

  it('refuses a DPoP-bound token sent as Bearer, under Bearer, offering DPoP beside it (RFC 9449 section 7.2)', async () => {
    const refused = denial(await call({ authorization: 'Bearer dpop' }));

    expect(refused.code).toBe('binding_dpop_scheme_required');
    expect(refused.status).toBe(401);
    expect(refused.challenges).toEqual([
      'Bearer realm="bank-api", error="invalid_token", error_description="the token is bound to a DPoP key: send it with the DPoP scheme and a DPoP proof"',
      'DPoP realm="bank-api", algs="ES256 PS256"',
    ]);
    expect(refused.body.error).toBe('invalid_token');
  });

  it('refuses the stolen transfer token as Bearer with invalid_token under DPoP, the only scheme the route accepts', async () => {
    const refused = denial(await call({ method: 'POST', path: '/transfer', authorization: 'Bearer dpop' }));

    expect(refused.code).toBe('binding_dpop_scheme_required');
    expect(refused.challenges).toEqual([
      'DPoP realm="bank-api", error="invalid_token", error_description="the token is bound to a DPoP key: send it with the DPoP scheme and a DPoP proof", algs="ES256 PS256"',
    ]);
  });

  it('refuses a proof from another key as invalid_token: the token belongs to another key', async () => {
    const refused = denial(
      await call({
        method: 'POST',
        path: '/transfer',
        authorization: 'DPoP dpop',
        proofs: [`thumbprint:${OTHER_JKT}`],
      }),
    );

    expect(refused.code).toBe('binding_dpop_key_mismatch');
    expect(refused.challenges[0]).toMatch(/^DPoP realm="bank-api", error="invalid_token", /);
  });

  it('answers a bad proof with invalid_dpop_proof under DPoP, whatever scheme else the route accepts', async () => {
    const refused = denial(
      await call({ authorization: 'DPoP dpop', proofs: ['invalid:dpop_proof_uri_mismatch'] }),
    );

    expect(refused.code).toBe('dpop_proof_uri_mismatch');
    expect(refused.challenges).toEqual([
      'DPoP realm="bank-api", error="invalid_dpop_proof", error_description="test proof refused: dpop_proof_uri_mismatch", algs="ES256 PS256"',
      'Bearer realm="bank-api"',
    ]);
    expect(refused.body.error).toBe('invalid_dpop_proof');
  });

  it("claims a proof's jti only once its key is the token's: a proof from another key, or a missing certificate, claims nothing", async () => {
    await call({
      method: 'POST',
      path: '/transfer',
      authorization: 'DPoP dpop',
      proofs: [`thumbprint:${OTHER_JKT}`],
    });
    expect(claimed).toEqual([]);
    await call({ authorization: 'DPoP both', proofs: [`thumbprint:${JKT}`] }); // no certificate
    expect(claimed).toEqual([]);
    await call({
      authorization: 'DPoP both',
      proofs: [`thumbprint:${JKT}`],
      certificate: `thumbprint:${OTHER_JKT}`,
    });
    expect(claimed).toEqual([]);

    const allowed = await call({
      authorization: 'DPoP both',
      proofs: [`thumbprint:${JKT}`],
      certificate: `thumbprint:${X5T}`,
    });
    expect(allowedAnswer(allowed.answer)).toBe(true);
    expect(claimed).toEqual([JKT]);
  });

  it('refuses a proof whose jti was claimed before: 401 invalid_dpop_proof, dpop_proof_replayed', async () => {
    const refused = denial(
      await call({ authorization: 'DPoP dpop', proofs: [`thumbprint:${JKT};replayed`] }),
    );

    expect(refused.code).toBe('dpop_proof_replayed');
    expect(refused.status).toBe(401);
    expect(refused.challenges[0]).toMatch(/^DPoP realm="bank-api", error="invalid_dpop_proof", /);
  });

  it('tells a key over its share of the replay store to slow down: 429, Retry-After, no challenge (RFC 6585 section 4)', async () => {
    const refused = denial(
      await call({ authorization: 'DPoP dpop', proofs: [`thumbprint:${JKT};over_quota`] }),
    );

    expect(refused.code).toBe('dpop_proof_quota_exceeded');
    expect(refused.status).toBe(429);
    expect(refused.headers).toContainEqual(['retry-after', '42']);
    expect(refused.challenges).toEqual([]);
    expect(refused.body.error).toBe('too_many_requests');
  });

  it('answers 503 while the replay store is full for everyone', async () => {
    const refused = denial(await call({ authorization: 'DPoP dpop', proofs: [`thumbprint:${JKT};full`] }));

    expect(refused.code).toBe('dpop_replay_cache_full');
    expect(refused.status).toBe(503);
  });

  it('answers a missing proof with invalid_dpop_proof', async () => {
    expect(denial(await call({ authorization: 'DPoP dpop' })).code).toBe('dpop_proof_missing');
  });

  it('answers a missing nonce with use_dpop_nonce and the DPoP-Nonce header (RFC 9449 section 9)', async () => {
    const refused = denial(
      await call({ authorization: 'DPoP dpop', proofs: ['invalid:dpop_nonce_missing'] }),
    );

    expect(refused.code).toBe('dpop_nonce_missing');
    expect(refused.challenges[0]).toMatch(/^DPoP realm="bank-api", error="use_dpop_nonce", /);
    expect(refused.headers).toContainEqual(['dpop-nonce', 'test-nonce']);
    expect(refused.body.error).toBe('use_dpop_nonce');
  });

  it('refuses an unbound token where DPoP is required, and the DPoP scheme with an unbound token', async () => {
    expect(
      denial(await call({ method: 'POST', path: '/transfer', authorization: 'Bearer unbound' })).code,
    ).toBe('binding_required');
    expect(denial(await call({ authorization: 'DPoP unbound', proofs: [`thumbprint:${JKT}`] })).code).toBe(
      'binding_token_not_dpop_bound',
    );
  });

  it('refuses the DPoP scheme before verifying anything where DPoP is off, with a bare Bearer challenge', async () => {
    asked.length = 0;
    const result = await call({ path: '/legacy', authorization: 'DPoP dpop', proofs: [`thumbprint:${JKT}`] });
    const refused = denial(result);

    expect(refused.code).toBe('scheme_not_accepted');
    expect(result.verification).toBeUndefined();
    expect(refused.challenges).toEqual(['Bearer realm="bank-api"']);
    expect(refused.body.error).toBe('unauthorized');
  });

  it('refuses bound tokens where their binding is off, even as Bearer', async () => {
    expect(denial(await call({ path: '/legacy', authorization: 'Bearer dpop' })).code).toBe(
      'binding_not_accepted',
    );
    expect(
      denial(await call({ path: '/legacy', authorization: 'Bearer cert', certificate: `thumbprint:${X5T}` }))
        .code,
    ).toBe('binding_not_accepted');
  });

  it('checks a certificate-bound token against the connection certificate (RFC 8705 section 3)', async () => {
    expect(
      allowedAnswer((await call({ authorization: 'Bearer cert', certificate: `thumbprint:${X5T}` })).answer),
    ).toBe(true);
    expect(denial(await call({ authorization: 'Bearer cert' })).code).toBe('binding_certificate_missing');
    expect(denial(await call({ authorization: 'Bearer cert', certificate: `thumbprint:${JKT}` })).code).toBe(
      'binding_certificate_mismatch',
    );
    expect(denial(await call({ authorization: 'Bearer cert', certificate: 'garbage' })).code).toBe(
      'binding_certificate_invalid',
    );
  });

  it('accepts either binding where both are required (FAPI 2.0), and neither unbound', async () => {
    expect(
      allowedAnswer(
        (await call({ path: '/fapi', authorization: 'Bearer cert', certificate: `thumbprint:${X5T}` }))
          .answer,
      ),
    ).toBe(true);
    expect(
      allowedAnswer(
        (await call({ path: '/fapi', authorization: 'DPoP dpop', proofs: [`thumbprint:${JKT}`] })).answer,
      ),
    ).toBe(true);
    const refused = denial(await call({ path: '/fapi', authorization: 'Bearer unbound' }));
    expect(refused.code).toBe('binding_required');
    expect(refused.body.error_description).toBe(
      'this API requires a DPoP-bound or certificate-bound token here',
    );
  });

  it('refuses a token bound in a way it cannot check (cnf.jwk) rather than taking it as a bearer token', async () => {
    expect(denial(await call({ authorization: 'Bearer jwkBound' })).code).toBe('token_claims_invalid');
  });

  it('checks the binding before the scopes, and challenges a missing scope under the scheme used', async () => {
    const refused = denial(
      await call({
        method: 'POST',
        path: '/transfer',
        authorization: 'DPoP narrow',
        proofs: [`thumbprint:${JKT}`],
      }),
    );
    expect(refused.code).toBe('insufficient_scope');
    expect(refused.status).toBe(403);
    expect(refused.challenges).toEqual([
      'DPoP realm="bank-api", error="insufficient_scope", scope="transfer:funds", algs="ES256 PS256"',
    ]);
    const unproven = denial(await call({ method: 'POST', path: '/transfer', authorization: 'DPoP narrow' }));
    expect(unproven.code).toBe('dpop_proof_missing');
  });

  it('challenges a request without credentials with every scheme the route accepts', async () => {
    expect(denial(await call({ authorization: '' })).challenges).toEqual([
      'Bearer realm="bank-api"',
      'DPoP realm="bank-api", algs="ES256 PS256"',
    ]);
    const transfer = denial(await call({ method: 'POST', path: '/transfer', authorization: '' }));
    expect(transfer.challenges).toEqual(['DPoP realm="bank-api", algs="ES256 PS256"']);
    expect(transfer.body).toEqual({
      error: 'unauthorized',
      error_description: 'a DPoP-bound access token is required',
    });
    expect(denial(await call({ path: '/legacy', authorization: '' })).challenges).toEqual([
      'Bearer realm="bank-api"',
    ]);
  });

  it('challenges malformed DPoP credentials under DPoP', async () => {
    const refused = denial(await call({ authorization: 'DPoP a b' }));
    expect(refused.code).toBe('credentials_malformed');
    expect(refused.challenges[0]).toMatch(/^DPoP realm="bank-api", error="invalid_request", /);
  });
});
