import type { JWTPayload } from 'jose';
import { describe, expect, it } from 'vitest';
import { readAccessTokenCredentials } from '../../../src/authn/access-token-credentials.js';
import type { Answer } from '../../../src/authz/answer-for-decision.js';
import { authorize, type Authorization } from '../../../src/authz/authorize.js';
import { OVERWRITE_IF_EXISTS_OR_ADD } from '../../../src/envoy/check-messages.js';
import { checkResponseForAnswer } from '../../../src/envoy/check-response-for-answer.js';
import { compilePolicy } from '../../../src/policy/compile-policy.js';
import { claimsVerifier } from '../../kit/claims-verifier.js';
import { DEMO_AUDIENCE, DEMO_ISSUER, servicesPolicyText } from '../../kit/inline-policy.js';

const ROUTES = [
  '{ methods: [GET], path: /statements, scopes: [view:statements] }',
  '{ path: /healthz, public: true }',
];

/** statements passes three claims on in headers; the bank, with the same routes and issuer, none. */
const policy = compilePolicy(
  servicesPolicyText({
    services: [
      {
        name: 'statements',
        hosts: ['statements.example'],
        realm: 'statements-api',
        claimHeaders: { email: 'x-auth-email', tier: 'x-auth-tier', verified: 'x-auth-verified' },
        routes: ROUTES,
      },
      { name: 'bank', hosts: ['bank.example'], realm: 'bank-api', routes: ROUTES },
    ],
  }),
  'policy.yaml',
);

const CLAIMS: JWTPayload = { iss: DEMO_ISSUER, aud: DEMO_AUDIENCE, sub: 'alice', scope: 'view:statements' };
const NOW = () => Date.UTC(2026, 10, 29);

/** Authorizes GET `target` on `host` with a token carrying CLAIMS and `extra` (undefined removes one). */
async function withClaims(
  extra: Record<string, unknown>,
  host = 'statements.example',
  target = '/statements',
): Promise<Authorization> {
  const claims: Record<string, unknown> = { ...CLAIMS, ...extra };
  for (const [name, value] of Object.entries(claims)) if (value === undefined) delete claims[name];
  const verifier = claimsVerifier(policy, { token: claims });
  return authorize(
    policy,
    { method: 'GET', target, host, credentials: readAccessTokenCredentials(['Bearer token']) },
    verifier,
    NOW,
  );
}

function allowed(answer: Answer): Extract<Answer, { kind: 'allow' }> {
  if (answer.kind !== 'allow') throw new Error(`expected an allow, got ${JSON.stringify(answer)}`);
  return answer;
}

describe('claim headers on allow', () => {
  it('sets x-auth-email from the email claim, after the identity headers, in file order', async () => {
    const answer = allowed(
      (await withClaims({ email: 'alice@example.com', tier: 'gold', verified: true })).answer,
    );

    expect(answer.setHeaders).toEqual([
      ['x-auth-subject', 'alice'],
      ['x-auth-scopes', 'view:statements'],
      ['x-auth-email', 'alice@example.com'],
      ['x-auth-tier', 'gold'],
      ['x-auth-verified', 'true'],
    ]);
    expect(answer.removeHeaders).toEqual([]);
  });

  it('removes the header of an absent claim, so that a client copy cannot reach the upstream', async () => {
    const answer = allowed((await withClaims({ tier: 'gold' })).answer);

    expect(answer.setHeaders).toContainEqual(['x-auth-tier', 'gold']);
    expect(answer.setHeaders.map(([name]) => name)).not.toContain('x-auth-email');
    expect(answer.removeHeaders).toEqual(['x-auth-email', 'x-auth-verified']);
  });

  it.each([
    ['a whole number', 42, '42'],
    ['zero', 0, '0'],
    ['a negative fraction', -1.5, '-1.5'],
    ['true', true, 'true'],
    ['false', false, 'false'],
  ])('sends %s as text', async (_case, value, text) => {
    const answer = allowed((await withClaims({ tier: value })).answer);

    expect(answer.setHeaders).toContainEqual(['x-auth-tier', text]);
  });

  it('removes every claim header on a public route, where no token is read', async () => {
    const answer = allowed((await withClaims({ email: 'alice@example.com' }, undefined, '/healthz')).answer);

    expect(answer.setHeaders).toEqual([]);
    expect(answer.removeHeaders).toEqual([
      'x-auth-subject',
      'x-auth-scopes',
      'x-auth-email',
      'x-auth-tier',
      'x-auth-verified',
    ]);
  });
});

describe('claim values no header can carry', () => {
  it.each([
    ['an object', { address: 'alice@example.com' }],
    ['an array', ['alice@example.com']],
    ['null', null],
    ['a line break', 'alice@example.com\r\nx-admin: true'],
    ['a tab', 'alice\t@example.com'],
    ['non-ASCII', 'zoë@example.com'],
    ['an empty string', ''],
    ['a leading space', ' alice@example.com'],
  ])(
    'refuse %s on the service that maps it: 401 invalid_token token_claims_invalid in its realm',
    async (_case, value) => {
      const authorization = await withClaims({ email: value });

      expect(authorization.decision).toMatchObject({
        kind: 'deny',
        code: 'token_claims_invalid',
        description: 'the email claim cannot be passed on in a header',
      });
      expect(authorization.answer).toMatchObject({
        kind: 'deny',
        status: 401,
        headers: expect.arrayContaining([
          [
            'www-authenticate',
            'Bearer realm="statements-api", error="invalid_token", error_description="the email claim cannot be passed on in a header"',
          ],
        ]),
      });
    },
  );

  it.each([
    ['an object', { address: 'alice@example.com' }],
    ['a line break', 'alice@example.com\r\nx-admin: true'],
    ['non-ASCII', 'zoë@example.com'],
  ])(
    'are no concern of a service that does not map the claim: %s is allowed on the bank',
    async (_case, value) => {
      const authorization = await withClaims({ email: value }, 'bank.example');
      const answer = allowed(authorization.answer);

      expect(authorization.decision).toMatchObject({ kind: 'allow' });
      expect(answer.setHeaders.map(([name]) => name)).not.toContain('x-auth-email');
    },
  );
});

describe("another service's claim headers", () => {
  it('are removed on every allow of a service that does not set them: a client cannot forge them into its upstream', async () => {
    const answer = allowed((await withClaims({ email: 'alice@example.com' }, 'bank.example')).answer);

    expect(answer.setHeaders).toEqual([
      ['x-auth-subject', 'alice'],
      ['x-auth-scopes', 'view:statements'],
    ]);
    expect(answer.removeHeaders).toEqual(['x-auth-email', 'x-auth-tier', 'x-auth-verified']);
  });

  it('are removed on its public routes too, with its own', async () => {
    const answer = allowed((await withClaims({}, 'bank.example', '/healthz')).answer);

    expect(answer.removeHeaders).toEqual([
      'x-auth-subject',
      'x-auth-scopes',
      'x-auth-email',
      'x-auth-tier',
      'x-auth-verified',
    ]);
  });

  it('are removed on an allow of a report-only rule that would deny, which reaches the upstream', async () => {
    const reportOnly = compilePolicy(
      servicesPolicyText({
        services: [
          {
            name: 'statements',
            hosts: ['statements.example'],
            realm: 'statements-api',
            claimHeaders: { email: 'x-auth-email' },
            routes: ROUTES,
          },
          {
            name: 'bank',
            hosts: ['bank.example'],
            realm: 'bank-api',
            routes: ['{ methods: [GET], path: /statements, scopes: [premium:read], mode: report-only }'],
          },
        ],
      }),
      'policy.yaml',
    );
    const authorization = await authorize(
      reportOnly,
      {
        method: 'GET',
        target: '/statements',
        host: 'bank.example',
        credentials: readAccessTokenCredentials(['Bearer token']),
      },
      claimsVerifier(reportOnly, { token: CLAIMS }),
      NOW,
    );

    expect(authorization.decision).toMatchObject({
      kind: 'allow',
      wouldDeny: { code: 'insufficient_scope' },
    });
    expect(allowed(authorization.answer).removeHeaders).toContain('x-auth-email');
  });

  it('are compiled per service: the headers the other services map, not its own', () => {
    const [statements, bank] = policy.services;
    expect(statements?.foreignClaimHeaders).toEqual([]);
    expect(bank?.foreignClaimHeaders).toEqual(['x-auth-email', 'x-auth-tier', 'x-auth-verified']);
  });
});

describe('claim headers in the CheckResponse', () => {
  it('overwrites each set header and lists each removed one in headers_to_remove', async () => {
    const answer = (await withClaims({ email: 'alice@example.com', verified: undefined })).answer;
    const response = checkResponseForAnswer(answer);

    expect(response.ok_response?.headers).toContainEqual({
      header: { key: 'x-auth-email', value: 'alice@example.com' },
      append_action: OVERWRITE_IF_EXISTS_OR_ADD,
    });
    for (const option of response.ok_response?.headers ?? []) {
      expect(option.append_action).toBe(OVERWRITE_IF_EXISTS_OR_ADD);
    }
    expect(response.ok_response?.headers_to_remove).toEqual(['x-auth-tier', 'x-auth-verified']);
  });
});
