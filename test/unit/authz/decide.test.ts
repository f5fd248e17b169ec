import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import type { InvalidTokenReason, VerifiedToken } from '../../../src/authz/token-verification.js';
import { readAccessTokenCredentials } from '../../../src/authn/access-token-credentials.js';
import type { RequestFacts } from '../../../src/authz/request-facts.js';
import { decideAccess, routePreparedRequest, type RouteStep } from '../../../src/authz/decide.js';
import { preparedOutcomes } from '../../../src/authz/prepared-outcomes.js';
import { compilePolicy } from '../../../src/policy/compile-policy.js';
import type { CompiledRoute, CompiledService } from '../../../src/policy/compiled-policy.js';
import { matchRoute } from '../../../src/policy/match-route.js';
import { compileService, implicitService } from '../../kit/inline-policy.js';

type ProtectedRoute = CompiledRoute & { access: { kind: 'protected' } };

const POLICY_FILE = fileURLToPath(new URL('../../../policy.yaml', import.meta.url));
/** The demo policy's one service: GET /balance, POST /transfer, public /healthz, GET /accounts/{id}/balance. */
const demo = implicitService(compilePolicy(readFileSync(POLICY_FILE, 'utf8'), POLICY_FILE));
const [balance, transfer, healthz, accountBalance] = demo.routes as [
  CompiledRoute,
  CompiledRoute,
  CompiledRoute,
  CompiledRoute,
];
/** The demo service's prepared outcomes, as `authorize` holds them. */
const prepared = preparedOutcomes(demo);

const extra = compileService(
  '{ methods: [POST], path: /transfer/international, scopes: [transfer:funds, transfer:abroad, view:balance] }',
  '{ methods: [GET], path: /me, scopes: [] }',
);

function protectedRoute(service: CompiledService, method: string, path: string): ProtectedRoute {
  const route = matchRoute(service, method, path);
  if (route?.access.kind !== 'protected') throw new Error(`${method} ${path} is not a protected route`);
  return route as ProtectedRoute;
}

/** A request as the Envoy adapter presents it: credentials read from its Authorization header values. */
function request(method: string, target: string, authorization: string[] = []): RequestFacts<string> {
  return { method, target, credentials: readAccessTokenCredentials(authorization) };
}

/** Now, for max_age: 2026-11-27T12:00:00Z in milliseconds. */
const NOW = Date.UTC(2026, 10, 27, 12);
const NOW_SECONDS = NOW / 1000;

/** The login claims a token carries (none by default). */
interface Login {
  acr?: string;
  amr?: string[];
  authTime?: number;
}

/** A login with multi-factor authentication a minute ago, as the demo /transfer route requires. */
const MFA_LOGIN: Login = { acr: 'urn:bank:mfa', amr: ['pwd', 'mfa'], authTime: NOW_SECONDS - 60 };

/** A verification that succeeded; the subject is `alice` unless `{}` (no sub) or another is given. */
function verified(
  scopes: string[],
  identity: { subject?: string } = { subject: 'alice' },
  login: Login = {},
) {
  const token: VerifiedToken = {
    issuer: 'https://idp.example/',
    subject: identity.subject,
    scopes: new Set(scopes),
    confirmation: {},
    acr: login.acr,
    amr: new Set(login.amr ?? []),
    authTime: login.authTime,
    audiences: new Set(['https://my-banking-api']),
    headerClaims: new Map(),
  };
  return { kind: 'verified' as const, token };
}

describe('routePreparedRequest over the demo policy', () => {
  it.each([
    ['an unknown path', request('GET', '/admin')],
    ['an unknown path, even with a bad token', request('GET', '/admin', ['Bearer not"a token'])],
    ['an unknown path, even with two headers', request('GET', '/admin', ['Bearer a', 'Bearer b'])],
    ['a method no route lists', request('DELETE', '/balance', ['Bearer abc'])],
    ['HEAD on a GET route', request('HEAD', '/balance')],
    ['a trailing slash', request('GET', '/balance/')],
    ['another case', request('GET', '/Balance')],
  ])('denies %s with no_route, before any credentials are read', (_case, facts) => {
    expect(routePreparedRequest(prepared, facts)).toEqual({
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
      expect(routePreparedRequest(prepared, request(method, '/healthz?probe=1', authorization))).toEqual({
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
    expect(routePreparedRequest(prepared, request('GET', '/balance', authorization))).toEqual({
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
    const step = routePreparedRequest(prepared, request('POST', '/transfer', authorization));
    expect(step).toMatchObject({
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
    const step: RouteStep<string> = routePreparedRequest(
      prepared,
      request(method, target, ['Bearer abc.def.ghi']),
    );

    expect(step).toEqual({
      kind: 'verify',
      route,
      presented: 'abc.def.ghi',
      scheme: 'Bearer',
      path: target.split('?')[0],
    });
  });

  it.each([
    ['/a/../balance', 'dot_segment'],
    ['/%2e%2e/balance', 'dot_segment'],
    ['//balance', 'empty_segment'],
    ['/balance%2F', 'encoded_separator'],
    ['/bal ance', 'bad_character'],
    ['http://bank.example/balance', 'not_origin_form'],
  ])('denies the unsafe path %j: 400 path_invalid (%s), whatever the credentials', (target, problem) => {
    expect(routePreparedRequest(prepared, request('GET', target, ['Bearer abc']))).toEqual({
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
    expect(
      decideAccess(balanceRoute, { kind: 'keys_unavailable', issuer: 'https://idp.example/' }, NOW),
    ).toEqual({
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
    token_type_invalid: 'the token is not an access token of the required type',
    token_claims_invalid: 'the scope claim is malformed',
    token_lifetime_exceeded: "the token's lifetime is longer than this API accepts",
    token_issued_in_future: 'the token was issued in the future',
  };

  it.each(Object.entries(reasons) as [InvalidTokenReason, string][])(
    'passes the refusal %s through as the denial code, with its description',
    (reason, description) => {
      expect(decideAccess(transferRoute, { kind: 'invalid', reason, description }, NOW)).toEqual({
        kind: 'deny',
        code: reason,
        description,
        route: transferRoute,
      });
    },
  );

  it('denies a valid token without transfer:funds: 403 insufficient_scope naming what is required and missing', () => {
    expect(decideAccess(transferRoute, verified(['view:balance']), NOW)).toEqual({
      kind: 'deny',
      code: 'insufficient_scope',
      description: 'the token lacks a required scope: transfer:funds',
      route: transferRoute,
      requiredScopes: ['transfer:funds'],
      missingScopes: ['transfer:funds'],
      issuer: 'https://idp.example/',
      subject: 'alice',
      identity: expect.objectContaining({ subject: 'alice' }),
    });
  });

  it('lists every required scope, and only the missing ones as missing, in route order', () => {
    const route = protectedRoute(extra, 'POST', '/transfer/international');
    const decision = decideAccess(route, verified(['transfer:funds']), NOW);

    expect(decision).toMatchObject({
      kind: 'deny',
      code: 'insufficient_scope',
      description: 'the token lacks a required scope: transfer:abroad view:balance',
      requiredScopes: ['transfer:funds', 'transfer:abroad', 'view:balance'],
      missingScopes: ['transfer:abroad', 'view:balance'],
    });
  });

  it('leaves the subject out of an insufficient_scope denial when the token has none', () => {
    const decision = decideAccess(transferRoute, verified([], {}), NOW);

    expect(decision).toMatchObject({
      kind: 'deny',
      code: 'insufficient_scope',
      issuer: 'https://idp.example/',
    });
    expect(decision).not.toHaveProperty('subject');
  });

  it('allows a token with every required scope and carries the verified identity', () => {
    const verification = verified(['view:balance', 'transfer:funds'], { subject: 'alice' }, MFA_LOGIN);

    expect(decideAccess(transferRoute, verification, NOW)).toEqual({
      kind: 'allow',
      route: transferRoute,
      identity: verification.token,
    });
  });

  it('allows any valid token on a route with an empty scope list, even one granting nothing', () => {
    const route = protectedRoute(extra, 'GET', '/me');

    expect(decideAccess(route, verified([]), NOW)).toMatchObject({ kind: 'allow', route });
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
    expect(decideAccess(balanceRoute, verified(scopes), NOW).kind).toBe(allowed ? 'allow' : 'deny');
  });
});

describe('decideAccess: the login behind the token (RFC 9470 step-up)', () => {
  // The demo /transfer route: scopes [transfer:funds]; acr_values [urn:bank:mfa], amr [mfa], max_age 10m.
  const transferRoute = protectedRoute(demo, 'POST', '/transfer');
  const SCOPES = ['view:balance', 'transfer:funds'];

  it('checks the scopes first: a weak login without the scope is 403 insufficient_scope, not 401', () => {
    expect(decideAccess(transferRoute, verified(['view:balance']), NOW)).toMatchObject({
      code: 'insufficient_scope',
    });
  });

  it.each<[string, Login]>([
    ['no acr, amr or auth_time', {}],
    ['a password-only login', { acr: 'urn:bank:pwd', amr: ['pwd'], authTime: NOW_SECONDS - 60 }],
    ['the right acr but no mfa in amr', { acr: 'urn:bank:mfa', amr: ['pwd'], authTime: NOW_SECONDS - 60 }],
    ['mfa in amr but another acr', { acr: 'urn:bank:pwd', amr: ['pwd', 'mfa'], authTime: NOW_SECONDS - 60 }],
  ])('answers insufficient_user_authentication with acr_values for %s', (_case, login) => {
    const decision = decideAccess(transferRoute, verified(SCOPES, { subject: 'alice' }, login), NOW);
    expect(decision).toMatchObject({
      kind: 'deny',
      code: 'insufficient_user_authentication',
      stepUp: { acrValues: ['urn:bank:mfa'] },
      subject: 'alice',
    });
  });

  it('asks for max_age when the login is older than the route allows, and only for that', () => {
    const stale = { ...MFA_LOGIN, authTime: NOW_SECONDS - 601 };
    expect(decideAccess(transferRoute, verified(SCOPES, { subject: 'alice' }, stale), NOW)).toEqual({
      kind: 'deny',
      code: 'insufficient_user_authentication',
      description: 'the authentication must be at most 600 seconds old',
      route: transferRoute,
      stepUp: { maxAgeSeconds: 600 },
      issuer: 'https://idp.example/',
      subject: 'alice',
      identity: expect.objectContaining({ subject: 'alice' }),
    });
  });

  it('accepts a login exactly max_age old', () => {
    const edge = { ...MFA_LOGIN, authTime: NOW_SECONDS - 600 };
    expect(decideAccess(transferRoute, verified(SCOPES, {}, edge), NOW).kind).toBe('allow');
  });

  it('counts a missing auth_time as too old', () => {
    const noAuthTime = { acr: 'urn:bank:mfa', amr: ['mfa'] };
    expect(decideAccess(transferRoute, verified(SCOPES, {}, noAuthTime), NOW)).toMatchObject({
      code: 'insufficient_user_authentication',
      stepUp: { maxAgeSeconds: 600 },
    });
  });

  it('asks for both when the login is weak and old', () => {
    const decision = decideAccess(transferRoute, verified(SCOPES, {}, { acr: 'urn:bank:pwd' }), NOW);
    expect(decision).toMatchObject({
      code: 'insufficient_user_authentication',
      description:
        'a stronger authentication is required; the authentication must be at most 600 seconds old',
      stepUp: { acrValues: ['urn:bank:mfa'], maxAgeSeconds: 600 },
    });
  });

  it('allows a recent multi-factor login with the scope', () => {
    expect(decideAccess(transferRoute, verified(SCOPES, {}, MFA_LOGIN), NOW).kind).toBe('allow');
  });

  it('leaves routes without authentication requirements alone', () => {
    const balanceRoute = protectedRoute(demo, 'GET', '/balance');
    expect(decideAccess(balanceRoute, verified(['view:balance']), NOW).kind).toBe('allow');
  });
});
