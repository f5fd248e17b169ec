import { describe, expect, it } from 'vitest';
import { readAccessTokenCredentials } from '../../../src/authn/access-token-credentials.js';
import { answerForDecision, type Answer } from '../../../src/authz/answer-for-decision.js';
import { authorize, type Authorization } from '../../../src/authz/authorize.js';
import type { CredentialVerifier } from '../../../src/authz/credentials.js';
import type { Decision } from '../../../src/authz/decision.js';
import { applyEnforcementMode } from '../../../src/authz/enforcement-mode.js';
import { preparedOutcomes } from '../../../src/authz/prepared-outcomes.js';
import type { RequestFacts } from '../../../src/authz/request-facts.js';
import type { TokenVerification } from '../../../src/authz/token-verification.js';
import { createCheckHandler } from '../../../src/envoy/check-handler.js';
import type { CheckRequestMessage } from '../../../src/envoy/check-messages.js';
import { checkResponseForAnswer } from '../../../src/envoy/check-response-for-answer.js';
import { compilePolicy } from '../../../src/policy/compile-policy.js';
import type { CompiledService } from '../../../src/policy/compiled-policy.js';
import { memoryLogger } from '../../kit/memory-logger.js';
import { compileRoutes, compileService, demoPolicyText, implicitService } from '../../kit/inline-policy.js';

const ROUTES = [
  '{ methods: [GET], path: /balance, scopes: [view:balance] }',
  '{ methods: [POST], path: /transfer, scopes: [transfer:funds, view:balance] }',
  '{ path: /healthz, public: true }',
  "{ methods: [GET], path: '/accounts/{id}/balance', scopes: [view:balance], mode: report-only }",
  "{ methods: [GET], path: '/statements/**', scopes: [view:balance] }",
];

/** The routes above, enforced; and the same under a report-only policy (unmatched requests included). */
const enforced = compileRoutes(...ROUTES);
const reportOnly = compilePolicy(
  demoPolicyText(ROUTES).replace('realm: ', 'mode: report-only\nrealm: '),
  'p.yaml',
);
/** The one (implicit) service of the enforced policy. */
const enforcedService = implicitService(enforced);

/** Token verifications by token text, as a real verifier would return them. */
const VERIFICATIONS: Record<string, TokenVerification> = {
  viewer: {
    kind: 'verified',
    token: {
      issuer: 'https://idp.example/',
      subject: 'alice',
      scopes: new Set(['view:balance']),
      acr: undefined,
      amr: new Set(),
      authTime: undefined,
      audiences: new Set(['https://my-banking-api']),
      headerClaims: new Map(),
      confirmation: {},
    },
  },
  expired: { kind: 'invalid', reason: 'token_expired', description: 'the token has expired' },
  offline: { kind: 'keys_unavailable', issuer: 'https://idp.example/' },
};
const verifier: CredentialVerifier<string> = {
  verify: (token) => VERIFICATIONS[token]!,
  prove: () => {
    throw new Error('no token here is bound: nothing to prove');
  },
};
const NOW = () => Date.UTC(2026, 10, 29);

function request(method: string, target: string, authorization: string[] = []): RequestFacts<string> {
  return { method, target, credentials: readAccessTokenCredentials(authorization) };
}

/** Requests reaching every kind of outcome: prepared ones and those decided per request. */
const REQUESTS: [string, RequestFacts<string>][] = [
  ['no route', request('DELETE', '/balance')],
  ['an unsafe path', request('GET', '/a/../balance')],
  ['an encoded slash', request('GET', '/balance%2f')],
  ['not origin-form', request('GET', 'https://bank/balance')],
  ['a bad character', request('GET', '/bal\\ance')],
  ['an empty segment', request('GET', '//balance')],
  ['no token', request('GET', '/balance')],
  ['Basic credentials', request('POST', '/transfer', ['Basic YWxpY2U6c2VjcmV0'])],
  ['no token on a report-only route', request('GET', '/accounts/1/balance')],
  ['no token on a rest route', request('GET', '/statements/2026/11')],
  ['a public route', request('HEAD', '/healthz?probe=1', ['Bearer expired'])],
  ['malformed credentials', request('GET', '/balance', ['Bearer a b'])],
  ['a valid token', request('GET', '/balance', ['Bearer viewer'])],
  ['a missing scope', request('POST', '/transfer', ['Bearer viewer'])],
  ['an expired token', request('GET', '/balance', ['Bearer expired'])],
  ['keys unavailable', request('GET', '/balance', ['Bearer offline'])],
  ['an expired token on a report-only route', request('GET', '/accounts/1/balance', ['Bearer expired'])],
];

/** The authorization of a decision computed afresh, without anything prepared. */
function afresh(service: CompiledService, decision: Decision, verification: TokenVerification | undefined) {
  const outcome = applyEnforcementMode(service, decision);
  const wouldDeny = outcome.kind === 'allow' ? outcome.wouldDeny : undefined;
  const { realm, claimHeaders } = service;
  return {
    service,
    route: outcome.route,
    verification,
    decision: outcome,
    answer: answerForDecision(outcome, realm, claimHeaders),
    wouldDenyAnswer: wouldDeny === undefined ? undefined : answerForDecision(wouldDeny, realm, claimHeaders),
  };
}

function denial(answer: Answer): Extract<Answer, { kind: 'deny' }> {
  if (answer.kind !== 'deny') throw new Error(`expected a denial, got ${JSON.stringify(answer)}`);
  return answer;
}

/** The decision before the enforcement mode: what `authorize` started from. */
function decisionBeforeMode(authorization: Authorization): Decision {
  const { decision } = authorization;
  return decision.kind === 'allow' && decision.wouldDeny !== undefined ? decision.wouldDeny : decision;
}

describe('authorize with prepared outcomes', () => {
  describe.each([
    ['an enforced policy', enforced],
    ['a report-only policy', reportOnly],
  ])('under %s', (_policyCase, policy) => {
    it.each(REQUESTS)('answers %s exactly as the answer table does afresh', async (_case, facts) => {
      const authorization = await authorize(policy, facts, verifier, NOW);

      expect(authorization).toStrictEqual(
        afresh(implicitService(policy), decisionBeforeMode(authorization), authorization.verification),
      );
    });
  });

  it('prepares every decision made before a token is verified, with its whole authorization', () => {
    for (const service of [enforced, reportOnly].map(implicitService)) {
      const prepared = preparedOutcomes(service);
      const decisions: Decision[] = [
        prepared.noRoute,
        ...Object.values(prepared.pathInvalid),
        ...service.routes.map((route) =>
          route.access.kind === 'public' ? prepared.publicAllow(route) : prepared.credentialsMissing(route),
        ),
      ];

      for (const decision of decisions) {
        expect(prepared.authorizationOf(decision)).toStrictEqual(afresh(service, decision, undefined));
        expect(Object.isFrozen(prepared.authorizationOf(decision)?.answer)).toBe(true);
      }
    }
  });

  it('builds them once per policy and shares them between requests', async () => {
    const first = await authorize(enforced, request('GET', '/balance'), verifier, NOW);
    const second = await authorize(enforced, request('GET', '/balance?x=1'), verifier, NOW);
    const otherRoute = await authorize(enforced, request('POST', '/transfer'), verifier, NOW);

    expect(second).toBe(first);
    expect(preparedOutcomes(enforcedService)).toBe(preparedOutcomes(enforcedService));
    // The answer to a missing token names no route: one answer serves every route.
    expect(otherRoute.answer).toBe(first.answer);
    expect(otherRoute.decision.route).not.toBe(first.decision.route);
  });

  it('answers insufficient_scope with the route challenge built once; only the body is per request', async () => {
    const facts = request('POST', '/transfer', ['Bearer viewer']);
    const first = await authorize(enforced, facts, verifier, NOW);
    const second = await authorize(enforced, facts, verifier, NOW);

    expect(first.answer).toStrictEqual(answerForDecision(first.decision, enforcedService.realm));
    expect(denial(first.answer).headers).toContainEqual([
      'www-authenticate',
      'Bearer realm="bank-api", error="insufficient_scope", scope="transfer:funds view:balance"',
    ]);
    expect(denial(second.answer).headers).toBe(denial(first.answer).headers);
  });

  it('gives a reloaded policy its own answers: a new realm is in every challenge at once', async () => {
    const renamed = compilePolicy(
      demoPolicyText(ROUTES).replace('realm: bank-api', 'realm: other-realm'),
      'p.yaml',
    );

    const before = await authorize(enforced, request('GET', '/balance'), verifier, NOW);
    const after = await authorize(renamed, request('GET', '/balance'), verifier, NOW);

    expect(before.answer).toMatchObject({
      headers: expect.arrayContaining([['www-authenticate', 'Bearer realm="bank-api"']]),
    });
    expect(after.answer).toMatchObject({
      headers: expect.arrayContaining([['www-authenticate', 'Bearer realm="other-realm"']]),
    });
  });

  it('refuses a route of another policy rather than answer with the wrong route', () => {
    const other = compileService(...ROUTES);

    expect(() => preparedOutcomes(enforcedService).credentialsMissing(other.routes[0]!)).toThrow(
      /no prepared decision/,
    );
  });
});

describe('the check handler with prepared responses', () => {
  const checkRequest = (method: string, path: string, authorization?: string): CheckRequestMessage => ({
    attributes: {
      request: {
        http: { id: 'r-1', method, path, headers: authorization === undefined ? {} : { authorization } },
      },
    },
  });

  it('sends, for every request, the CheckResponse its answer encodes to afresh, and logs it once', async () => {
    const { logger, lines } = memoryLogger();
    let policy = enforced;
    const check = createCheckHandler({ active: () => ({ policy, verifier }), logger, now: NOW });
    const cases: [string, string, string | undefined][] = [
      ['GET', '/balance', undefined],
      ['GET', '/balance', undefined],
      ['GET', '/nowhere', undefined],
      ['GET', '/a/./b', undefined],
      ['GET', '/healthz', 'Bearer expired'],
      ['GET', '/balance', 'Bearer viewer'],
      ['POST', '/transfer', 'Bearer viewer'],
      ['GET', '/balance', 'Bearer expired'],
      ['GET', '/accounts/7/balance', undefined],
    ];

    for (const current of [enforced, reportOnly]) {
      policy = current;
      for (const [method, path, authorization] of cases) {
        const facts = request(method, path, authorization === undefined ? [] : [authorization]);
        const { answer } = await authorize(current, facts, verifier, NOW);

        expect(await check(checkRequest(method, path, authorization))).toStrictEqual(
          checkResponseForAnswer(answer),
        );
      }
    }
    expect(lines).toHaveLength(2 * cases.length);
  });

  it('encodes a prepared answer once per policy and sends that response again', async () => {
    const check = createCheckHandler({
      active: () => ({ policy: enforced, verifier }),
      logger: memoryLogger().logger,
      now: NOW,
    });

    const first = await check(checkRequest('GET', '/balance'));

    expect(await check(checkRequest('POST', '/transfer'))).toBe(first);
    expect(first.denied_response?.status.code).toBe(401);
  });
});
