import { describe, expect, it } from 'vitest';
import { readAccessTokenCredentials } from '../../../src/authn/access-token-credentials.js';
import type { Answer } from '../../../src/authz/answer-for-decision.js';
import { authorize, type Authorization } from '../../../src/authz/authorize.js';
import type { RequestFacts } from '../../../src/authz/request-facts.js';
import { compilePolicy } from '../../../src/policy/compile-policy.js';
import { claimsVerifier } from '../../kit/claims-verifier.js';
import {
  compileRoutes,
  DEMO_AUDIENCE,
  DEMO_ISSUER,
  implicitService,
  servicesPolicyText,
} from '../../kit/inline-policy.js';

const PARTNER = 'https://partner.example/';
const STATEMENTS_AUDIENCE = 'https://statements-api';
const BALANCE = '{ methods: [GET], path: /balance, scopes: [view:balance] }';

/**
 * Four services: the bank (its host and every host one label under it, the demo issuer only), statements
 * (its own audience and scope for the same GET /balance), trial (report-only, the default trust: both
 * issuers) and internal (no hosts: reached only when the proxy names it).
 */
const policy = compilePolicy(
  servicesPolicyText({
    realm: 'gateway',
    issuers: [
      { issuer: DEMO_ISSUER, audiences: [DEMO_AUDIENCE] },
      { issuer: PARTNER, audiences: ['https://partner-api'] },
    ],
    services: [
      {
        name: 'bank',
        hosts: ['bank.example', '*.bank.example'],
        realm: 'bank-api',
        issuers: [{ issuer: DEMO_ISSUER }],
        routes: [BALANCE, '{ path: /healthz, public: true }'],
      },
      {
        name: 'statements',
        hosts: ['statements.example', '*.reports.example'],
        realm: 'statements-api',
        issuers: [{ issuer: DEMO_ISSUER, audiences: [STATEMENTS_AUDIENCE] }],
        routes: ['{ methods: [GET], path: /balance, scopes: [view:statements] }'],
      },
      { name: 'trial', hosts: ['trial.example'], mode: 'report-only', routes: [BALANCE] },
      { name: 'internal', hosts: [], realm: 'internal-api', routes: [BALANCE] },
    ],
  }),
  'policy.yaml',
);

/** Tokens by name: their claims are taken as signed (see claimsVerifier). */
const TOKENS = {
  bank: { iss: DEMO_ISSUER, aud: DEMO_AUDIENCE, sub: 'alice', scope: 'view:balance' },
  statements: { iss: DEMO_ISSUER, aud: STATEMENTS_AUDIENCE, sub: 'alice', scope: 'view:statements' },
  statementsWithBalanceScope: {
    iss: DEMO_ISSUER,
    aud: STATEMENTS_AUDIENCE,
    sub: 'bob',
    scope: 'view:balance',
  },
  partner: { iss: PARTNER, aud: 'https://partner-api', sub: 'carol', scope: 'view:balance' },
};
const verifier = claimsVerifier(policy, TOKENS);
const NOW = () => Date.UTC(2026, 10, 29);

interface RequestInit {
  readonly host?: string;
  readonly service?: string;
  readonly token?: keyof typeof TOKENS;
  readonly method?: string;
  readonly target?: string;
}

function request(init: RequestInit): RequestFacts<string> {
  return {
    method: init.method ?? 'GET',
    target: init.target ?? '/balance',
    host: init.host,
    serviceName: init.service,
    credentials: readAccessTokenCredentials(init.token === undefined ? [] : [`Bearer ${init.token}`]),
  };
}

function check(init: RequestInit, against = policy): Promise<Authorization> {
  return authorize(against, request(init), verifier, NOW);
}

/** The denial answer, or a failure naming what was answered instead. */
function denial(answer: Answer): Extract<Answer, { kind: 'deny' }> {
  if (answer.kind !== 'deny') throw new Error(`expected a denial, got ${JSON.stringify(answer)}`);
  return answer;
}

function challenges(answer: Answer): string[] {
  return denial(answer)
    .headers.filter(([name]) => name === 'www-authenticate')
    .map(([, value]) => value);
}

describe('choosing the service by host', () => {
  it.each([
    ['its exact host', 'bank.example', 'bank'],
    ['one label under a wildcard', 'eu.bank.example', 'bank'],
    ['the other service’s exact host', 'statements.example', 'statements'],
    ['one label under the other wildcard', 'q3.reports.example', 'statements'],
    ['upper case', 'BANK.Example', 'bank'],
    ['upper case under a wildcard', 'EU.BANK.EXAMPLE', 'bank'],
    ['a port', 'bank.example:8443', 'bank'],
    ['a trailing dot', 'bank.example.', 'bank'],
    ['a trailing dot and a port', 'Statements.Example.:443', 'statements'],
    ['a port under a wildcard', 'eu.bank.example:8443', 'bank'],
  ])('finds the service of %s (%s)', async (_case, host, expected) => {
    expect((await check({ host, token: 'bank' })).service?.name).toBe(expected);
  });

  it.each([
    ['two labels under a wildcard, which matches exactly one', 'a.b.bank.example'],
    ['the bare suffix of a wildcard', 'reports.example'],
    ['a host no service lists', 'shop.example'],
    ['a look-alike suffix', 'evilbank.example'],
    ['a host that is not a host name', 'bank..example'],
    ['a non-numeric port', 'bank.example:https'],
  ])('denies %s (%s): 403 no_service, with no challenge', async (_case, host) => {
    const authorization = await check({ host, token: 'bank' });

    expect(authorization.service).toBeUndefined();
    expect(authorization.route).toBeUndefined();
    expect(authorization.verification).toBeUndefined();
    expect(authorization.decision).toEqual({
      kind: 'deny',
      code: 'no_service',
      description: 'no service answers for this host',
    });
    expect(denial(authorization.answer).status).toBe(403);
    expect(challenges(authorization.answer)).toEqual([]);
    expect(JSON.parse(denial(authorization.answer).body)).toEqual({
      error: 'access_denied',
      error_description: 'no service answers for this host',
    });
  });

  it('denies a request with no host at all under a policy that lists services: no_service', async () => {
    const authorization = await check({ token: 'bank' });

    expect(authorization.decision).toMatchObject({ kind: 'deny', code: 'no_service' });
    expect(challenges(authorization.answer)).toEqual([]);
  });

  it('never reaches a service without hosts by host, even one that looks like its name', async () => {
    expect((await check({ host: 'internal', token: 'bank' })).decision).toMatchObject({
      code: 'no_service',
    });
  });
});

describe('choosing the service by the name the proxy gives (context_extensions)', () => {
  it('takes the named service over the one the host would give', async () => {
    const authorization = await check({ host: 'bank.example', service: 'statements', token: 'statements' });

    expect(authorization.service?.name).toBe('statements');
    expect(authorization.decision).toMatchObject({ kind: 'allow', route: { name: 'GET /balance' } });
  });

  it('reaches a service without hosts, and with no host at all', async () => {
    expect((await check({ service: 'internal', token: 'bank' })).service?.name).toBe('internal');
    expect((await check({ host: 'bank.example', service: 'internal' })).answer).toMatchObject({
      status: 401,
      headers: expect.arrayContaining([['www-authenticate', 'Bearer realm="internal-api"']]),
    });
  });

  it.each([
    ['a name the policy does not have', 'nope'],
    ['a name in another case', 'Bank'],
  ])('denies %s: 403 service_unknown, no challenge, whatever the host and token', async (_case, service) => {
    const authorization = await check({ host: 'bank.example', service, token: 'bank' });

    expect(authorization.service).toBeUndefined();
    expect(authorization.decision).toEqual({
      kind: 'deny',
      code: 'service_unknown',
      description: 'the proxy named a service this policy does not have',
    });
    expect(denial(authorization.answer).status).toBe(403);
    expect(challenges(authorization.answer)).toEqual([]);
    expect(JSON.parse(denial(authorization.answer).body)).toEqual({
      error: 'access_denied',
      error_description: 'the proxy named a service this policy does not have',
    });
  });
});

describe('a policy without services: the implicit service answers every host', () => {
  const single = compileRoutes(BALANCE, '{ path: /healthz, public: true }');
  const service = implicitService(single);

  it.each([
    ['its usual host', 'bank.example'],
    ['another host', 'shop.example'],
    ['an invalid host', 'not a host'],
    ['no host at all', undefined],
  ])('decides for %s exactly as without a host', async (_case, host) => {
    // Prepared outcomes (no token) are the very same object; verified ones are equal.
    const noToken = await check({ host }, single);
    expect(noToken).toBe(await check({}, single));
    expect(noToken.service).toBe(service);
    expect(noToken.answer).toMatchObject({
      status: 401,
      headers: expect.arrayContaining([['www-authenticate', 'Bearer realm="bank-api"']]),
    });

    expect(await check({ host, token: 'bank' }, single)).toStrictEqual(
      await check({ token: 'bank' }, single),
    );
  });

  it('accepts the name default from the proxy, and no other', async () => {
    expect((await check({ service: 'default' }, single)).service).toBe(service);
    expect((await check({ service: 'bank' }, single)).decision).toMatchObject({
      code: 'service_unknown',
    });
  });
});

describe('each service decides by its own rules', () => {
  it('gives the same path on two services different decisions', async () => {
    const onBank = await check({ host: 'bank.example', token: 'statementsWithBalanceScope' });
    const onStatements = await check({ host: 'statements.example', token: 'statementsWithBalanceScope' });

    // Meant for statements, not the bank: refused by the bank whatever its scopes...
    expect(onBank.decision).toMatchObject({ kind: 'deny', code: 'token_audience_mismatch' });
    // ...and, on statements, view:balance is not the scope its GET /balance asks for.
    expect(onStatements.decision).toMatchObject({
      kind: 'deny',
      code: 'insufficient_scope',
      requiredScopes: ['view:statements'],
    });
    expect(challenges(onStatements.answer)).toEqual([
      'Bearer realm="statements-api", error="insufficient_scope", scope="view:statements"',
    ]);
    expect((await check({ host: 'bank.example', token: 'bank' })).decision.kind).toBe('allow');
    expect((await check({ host: 'statements.example', token: 'statements' })).decision.kind).toBe('allow');
  });

  it.each([
    ['bank.example', 'Bearer realm="bank-api"'],
    ['statements.example', 'Bearer realm="statements-api"'],
    ['trial.example', undefined], // report-only: allowed, the challenge kept for the would-deny answer
  ])('challenges a request to %s without a token in its own realm', async (host, expected) => {
    const authorization = await check({ host });

    if (expected === undefined) {
      expect(authorization.answer.kind).toBe('allow');
      expect(challenges(authorization.wouldDenyAnswer!)).toEqual(['Bearer realm="gateway"']);
    } else {
      expect(challenges(authorization.answer)).toEqual([expected]);
    }
  });

  it("refuses a token for the bank's audience on statements: 401 token_audience_mismatch in statements' realm", async () => {
    const authorization = await check({ host: 'statements.example', token: 'bank' });

    expect(authorization.decision).toEqual({
      kind: 'deny',
      code: 'token_audience_mismatch',
      description: 'the token is not meant for this API',
      route: authorization.service?.routes[0],
      scheme: 'Bearer',
    });
    expect(authorization.verification).toMatchObject({ kind: 'invalid', reason: 'token_audience_mismatch' });
    expect(denial(authorization.answer).status).toBe(401);
    expect(challenges(authorization.answer)).toEqual([
      'Bearer realm="statements-api", error="invalid_token", error_description="the token is not meant for this API"',
    ]);
  });

  it('refuses a token of an issuer the service does not trust (token_issuer_unknown), which another accepts', async () => {
    const onBank = await check({ host: 'bank.example', token: 'partner' });

    expect(onBank.decision).toMatchObject({
      kind: 'deny',
      code: 'token_issuer_unknown',
      description: 'the token was not issued by a trusted issuer',
    });
    expect(challenges(onBank.answer)).toEqual([
      'Bearer realm="bank-api", error="invalid_token", error_description="the token was not issued by a trusted issuer"',
    ]);
    // trial lists no issuers: it trusts every top-level one, with its audiences.
    const onTrial = await check({ host: 'trial.example', token: 'partner' });
    expect(onTrial.decision).toMatchObject({ kind: 'allow', identity: { subject: 'carol' } });
    expect(onTrial.decision.kind === 'allow' && onTrial.decision.wouldDeny).toBeUndefined();
  });

  it('trials rules on the report-only service only: the same denial is enforced on the bank', async () => {
    const onTrial = await check({ host: 'trial.example', token: 'statements' });
    const onBank = await check({ host: 'bank.example', token: 'statements' });

    expect(onTrial.decision).toMatchObject({
      kind: 'allow',
      wouldDeny: { code: 'token_audience_mismatch' },
    });
    expect(onTrial.answer.kind).toBe('allow');
    expect(onBank.decision).toMatchObject({ kind: 'deny', code: 'token_audience_mismatch' });
    // A request no route of the trial matches is a would-deny too: the service's mode applies.
    expect((await check({ host: 'trial.example', target: '/nowhere' })).decision).toMatchObject({
      kind: 'allow',
      wouldDeny: { code: 'no_route' },
    });
    expect((await check({ host: 'bank.example', target: '/nowhere' })).decision).toMatchObject({
      kind: 'deny',
      code: 'no_route',
    });
  });
});
