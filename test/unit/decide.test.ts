import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import type { InvalidTokenReason, VerifiedToken } from '../../src/authn/token-verification.js';
import { decideAccess, routeRequest, type RequestFacts, type RouteStep } from '../../src/authz/decide.js';
import { compilePolicy } from '../../src/policy/compile-policy.js';
import type { CompiledPolicy, CompiledRoute } from '../../src/policy/compiled-policy.js';
import { matchRoute } from '../../src/policy/match-route.js';

type ProtectedRoute = CompiledRoute & { access: { kind: 'protected' } };

const POLICY_FILE = fileURLToPath(new URL('../../policy.yaml', import.meta.url));
/** The demo policy: GET /balance, POST /transfer, public /healthz, GET /accounts/{id}/balance. */
const demo = compilePolicy(readFileSync(POLICY_FILE, 'utf8'), POLICY_FILE);
const [balance, transfer, healthz, accountBalance] = demo.routes as [
  CompiledRoute,
  CompiledRoute,
  CompiledRoute,
  CompiledRoute,
];

const extra = compilePolicy(
  [
    'version: 1',
    'realm: bank-api',
    'issuers:',
    '  - issuer: https://idp.example/',
    '    audiences: [https://my-banking-api]',
    '    jwks_uri: https://idp.example/.well-known/jwks.json',
    '    algorithms: [RS256]',
    'routes:',
    '  - { methods: [POST], path: /transfer/international, scopes: [transfer:funds, transfer:abroad, view:balance] }',
    '  - { methods: [GET], path: /me, scopes: [] }',
  ].join('\n'),
  'extra.yaml',
);

function protectedRoute(policy: CompiledPolicy, method: string, path: string): ProtectedRoute {
  const route = matchRoute(policy, method, path);
  if (route?.access.kind !== 'protected') throw new Error(`${method} ${path} is not a protected route`);
  return route as ProtectedRoute;
}

function request(method: string, target: string, authorization: string[] = []): RequestFacts {
  return { method, target, authorization };
}

/** A verification that succeeded; the subject is `alice` unless `{}` (no sub) or another is given. */
function verified(scopes: string[], identity: { subject?: string } = { subject: 'alice' }) {
  const token: VerifiedToken = {
    issuer: 'https://idp.example/',
    subject: identity.subject,
    scopes: new Set(scopes),
  };
  return { kind: 'verified' as const, token };
}

describe('routeRequest over the demo policy', () => {
  it.each([
    ['an unknown path', request('GET', '/admin')],
    ['an unknown path, even with a bad token', request('GET', '/admin', ['Bearer not"a token'])],
    ['an unknown path, even with two headers', request('GET', '/admin', ['Bearer a', 'Bearer b'])],
    ['a method no route lists', request('DELETE', '/balance', ['Bearer abc'])],
    ['HEAD on a GET route', request('HEAD', '/balance')],
    ['a trailing slash', request('GET', '/balance/')],
    ['another case', request('GET', '/Balance')],
  ])('denies %s with no_route, before any credentials are read', (_case, facts) => {
    expect(routeRequest(demo, facts)).toEqual({
      kind: 'decided',
      decision: { kind: 'deny', code: 'no_route', description: 'no route allows this request' },
    });
  });

  it.each([
    ['without credentials', []],
    ['with a garbage token', ['Bearer !!garbage!!']],
    ['with two Authorization headers', ['Bearer a', 'Bearer b']],
    ['with Basic credentials', ['Basic YWxpY2U6c2VjcmV0']],
    ['with "Bearer" and no token', ['Bearer']],
  ])('allows the public route %s, and carries no identity', (_case, authorization) => {
    for (const method of ['GET', 'POST', 'HEAD']) {
      expect(routeRequest(demo, request(method, '/healthz?probe=1', authorization))).toEqual({
        kind: 'decided',
        decision: { kind: 'allow', route: healthz },
      });
    }
  });

  it.each([
    ['no Authorization header', []],
    ['Basic credentials', ['Basic YWxpY2U6c2VjcmV0']],
    ['an empty header', ['']],
  ])('denies a protected route with %s: credentials_missing', (_case, authorization) => {
    expect(routeRequest(demo, request('GET', '/balance', authorization))).toEqual({
      kind: 'decided',
      decision: {
        kind: 'deny',
        code: 'credentials_missing',
        description: 'a bearer token is required',
        route: balance,
      },
    });
  });

  it.each([
    ['"Bearer" alone', ['Bearer'], 'the Bearer scheme needs a token'],
    ['a token with a space', ['Bearer a b'], 'the bearer token contains white space'],
    ['two headers', ['Bearer a', 'Bearer b'], 'more than one Authorization header'],
    ['joined headers', ['Basic x, Bearer y'], 'more than one Authorization header'],
    ['a quote in the token', ['Bearer a"b'], 'the bearer token has characters RFC 6750 does not allow'],
  ])('denies a protected route with %s: credentials_malformed', (_case, authorization, description) => {
    expect(routeRequest(demo, request('POST', '/transfer', authorization))).toEqual({
      kind: 'decided',
      decision: { kind: 'deny', code: 'credentials_malformed', description, route: transfer },
    });
  });

  it.each([
    ['GET', '/balance', balance],
    ['GET', '/balance?currency=EUR', balance],
    ['POST', '/transfer', transfer],
    ['GET', '/accounts/acc-42/balance', accountBalance],
  ])('hands the token of %s %s to verification, with its route', (method, target, route) => {
    const step: RouteStep = routeRequest(demo, request(method, target, ['Bearer abc.def.ghi']));

    expect(step).toEqual({ kind: 'verify_token', route, token: 'abc.def.ghi' });
  });

  it.each([
    ['/a/../balance', 'dot_segment'],
    ['/%2e%2e/balance', 'dot_segment'],
    ['//balance', 'empty_segment'],
    ['/balance%2F', 'encoded_separator'],
    ['/bal ance', 'bad_character'],
    ['http://bank.example/balance', 'not_origin_form'],
  ])('denies the unsafe path %j: 400 path_invalid (%s), whatever the credentials', (target, problem) => {
    expect(routeRequest(demo, request('GET', target, ['Bearer abc']))).toEqual({
      kind: 'decided',
      decision: {
        kind: 'deny',
        code: 'path_invalid',
        description: `the request path is not acceptable (${problem})`,
      },
    });
  });
});

describe('decideAccess', () => {
  const balanceRoute = protectedRoute(demo, 'GET', '/balance');
  const transferRoute = protectedRoute(demo, 'POST', '/transfer');

  it('denies with keys_unavailable when the issuer keys cannot be obtained', () => {
    expect(decideAccess(balanceRoute, { kind: 'keys_unavailable', issuer: 'https://idp.example/' })).toEqual({
      kind: 'deny',
      code: 'keys_unavailable',
      description: 'the token issuer keys are temporarily unavailable',
      route: balanceRoute,
      issuer: 'https://idp.example/',
    });
  });

  const reasons: Record<InvalidTokenReason, string> = {
    token_too_large: 'the token is too large',
    token_malformed: 'the token is not a well-formed JWT',
    token_issuer_unknown: 'the token was not issued by a trusted issuer',
    token_algorithm_not_allowed: 'the token is signed with an algorithm that is not allowed',
    token_key_unknown: 'the token is signed with an unknown key',
    token_signature_invalid: 'the token signature is invalid',
    token_expired: 'the token has expired',
    token_not_yet_valid: 'the token is not valid yet',
    token_audience_mismatch: 'the token is not meant for this API',
    token_claims_invalid: 'the scope claim is malformed',
  };

  it.each(Object.entries(reasons) as [InvalidTokenReason, string][])(
    'passes the refusal %s through as the denial code, with its description',
    (reason, description) => {
      expect(decideAccess(transferRoute, { kind: 'invalid', reason, description })).toEqual({
        kind: 'deny',
        code: reason,
        description,
        route: transferRoute,
      });
    },
  );

  it('denies a valid token without transfer:funds: 403 insufficient_scope naming what is required and missing', () => {
    expect(decideAccess(transferRoute, verified(['view:balance']))).toEqual({
      kind: 'deny',
      code: 'insufficient_scope',
      description: 'the token lacks a required scope: transfer:funds',
      route: transferRoute,
      requiredScopes: ['transfer:funds'],
      missingScopes: ['transfer:funds'],
      issuer: 'https://idp.example/',
      subject: 'alice',
    });
  });

  it('lists every required scope, and only the missing ones as missing, in route order', () => {
    const route = protectedRoute(extra, 'POST', '/transfer/international');
    const decision = decideAccess(route, verified(['transfer:funds']));

    expect(decision).toMatchObject({
      kind: 'deny',
      code: 'insufficient_scope',
      description: 'the token lacks a required scope: transfer:abroad view:balance',
      requiredScopes: ['transfer:funds', 'transfer:abroad', 'view:balance'],
      missingScopes: ['transfer:abroad', 'view:balance'],
    });
  });

  it('leaves the subject out of an insufficient_scope denial when the token has none', () => {
    const decision = decideAccess(transferRoute, verified([], {}));

    expect(decision).toMatchObject({
      kind: 'deny',
      code: 'insufficient_scope',
      issuer: 'https://idp.example/',
    });
    expect(decision).not.toHaveProperty('subject');
  });

  it('allows a token with every required scope and carries the verified identity', () => {
    const verification = verified(['view:balance', 'transfer:funds']);

    expect(decideAccess(transferRoute, verification)).toEqual({
      kind: 'allow',
      route: transferRoute,
      identity: verification.token,
    });
  });

  it('allows any valid token on a route with an empty scope list, even one granting nothing', () => {
    const route = protectedRoute(extra, 'GET', '/me');

    expect(decideAccess(route, verified([]))).toMatchObject({ kind: 'allow', route });
  });

  it.each([
    [['view:balance:extra'], false],
    [['view'], false],
    [['view:'], false],
    [['VIEW:BALANCE'], false],
    [['view:balance transfer:funds'], false],
    [['xview:balance'], false],
    [['view:balance'], true],
    [['transfer:funds', 'view:balance'], true],
  ])('compares scopes exactly: %j satisfies view:balance is %s', (scopes, allowed) => {
    expect(decideAccess(balanceRoute, verified(scopes)).kind).toBe(allowed ? 'allow' : 'deny');
  });
});
