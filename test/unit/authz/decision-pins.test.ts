import { describe, expect, it } from 'vitest';
import { readAccessTokenCredentials } from '../../../src/authn/access-token-credentials.js';
import { authorize, type Authorization } from '../../../src/authz/authorize.js';
import { compilePolicy } from '../../../src/policy/compile-policy.js';
import type { CompiledPolicy } from '../../../src/policy/compiled-policy.js';
import { claimsVerifier } from '../../kit/claims-verifier.js';
import {
  DEMO_AUDIENCE,
  DEMO_ISSUER,
  DEMO_REALM,
  demoPolicyText,
  servicesPolicyText,
} from '../../kit/inline-policy.js';

/*
 * Two documented rules of the decision pipeline, pinned through authorize() (docs/policy.md, "Routes":
 * `mode`; src/authz/enforcement-mode.ts):
 * - a policy-wide `mode: report-only` applies to every route and to requests no route matches;
 * - a path that cannot be matched safely is refused 400 in every mode: report-only never lets it through.
 */

const ROUTES = [
  '{ methods: [GET], path: /balance, scopes: [view:balance] }',
  '{ methods: [POST], path: /transfer, scopes: [transfer:funds] }',
  '{ methods: [GET], path: "/accounts/{id}", scopes: [view:balance] }',
];
const TRIAL_ROUTE = '{ methods: [GET], path: /trial, scopes: [view:trial], mode: report-only }';

/** The demo policy text with a top-level `mode` (after `realm`, line 2). */
function withPolicyMode(text: string, mode: 'enforce' | 'report-only'): string {
  return text.replace(`realm: ${DEMO_REALM}\n`, `realm: ${DEMO_REALM}\nmode: ${mode}\n`);
}

const reportOnly = compilePolicy(withPolicyMode(demoPolicyText(ROUTES), 'report-only'), 'policy.yaml');
const enforced = compilePolicy(
  withPolicyMode(demoPolicyText([...ROUTES, TRIAL_ROUTE]), 'enforce'),
  'policy.yaml',
);
const reportOnlyServices = compilePolicy(
  servicesPolicyText({
    realm: 'gateway',
    mode: 'report-only',
    services: [{ name: 'bank', hosts: ['bank.example'], routes: ROUTES }],
  }),
  'policy.yaml',
);

const TOKENS = { viewer: { iss: DEMO_ISSUER, aud: DEMO_AUDIENCE, sub: 'alice', scope: 'view:balance' } };
const NOW = () => Date.UTC(2026, 10, 29);

function check(policy: CompiledPolicy, method: string, target: string, token?: 'viewer', host?: string) {
  return authorize(
    policy,
    {
      method,
      target,
      host,
      credentials: readAccessTokenCredentials(token === undefined ? [] : [`Bearer ${token}`]),
    },
    claimsVerifier(policy, TOKENS),
    NOW,
  );
}

/** The decision code a report-only rule would have answered with, or undefined when it was not one. */
function wouldDenyCode(authorization: Authorization): string | undefined {
  const { decision } = authorization;
  return decision.kind === 'allow' ? decision.wouldDeny?.code : undefined;
}

describe('a policy-wide mode: report-only', () => {
  it.each([
    ['GET /balance without a token', 'GET', '/balance', undefined, 'credentials_missing'],
    ['POST /transfer without the scope', 'POST', '/transfer', 'viewer', 'insufficient_scope'],
    ['GET /accounts/{id} without a token', 'GET', '/accounts/42', undefined, 'credentials_missing'],
    ['a path no route matches', 'GET', '/admin', 'viewer', 'no_route'],
    ['a method no route allows', 'DELETE', '/balance', undefined, 'no_route'],
  ] as const)(
    'lets %s through, logging the denial as would_deny (%s)',
    async (_case, method, target, token, code) => {
      const authorization = await check(reportOnly, method, target, token);
      expect(authorization.answer.kind).toBe('allow');
      expect(wouldDenyCode(authorization)).toBe(code);
      expect(authorization.wouldDenyAnswer?.kind).toBe('deny');
    },
  );

  it('covers unmatched requests of every service of a policy with services too', async () => {
    const authorization = await check(reportOnlyServices, 'GET', '/admin', 'viewer', 'bank.example');
    expect(authorization.answer.kind).toBe('allow');
    expect(wouldDenyCode(authorization)).toBe('no_route');
    expect(
      wouldDenyCode(await check(reportOnlyServices, 'POST', '/transfer', 'viewer', 'bank.example')),
    ).toBe('insufficient_scope');
  });

  it('still allows what the rules allow, with nothing logged as would_deny', async () => {
    const authorization = await check(reportOnly, 'GET', '/balance', 'viewer');
    expect(authorization.decision).toMatchObject({ kind: 'allow' });
    expect(wouldDenyCode(authorization)).toBeUndefined();
    expect(authorization.wouldDenyAnswer).toBeUndefined();
  });

  it('is not the default: an enforcing policy denies an unmatched request 403', async () => {
    const authorization = await check(enforced, 'GET', '/admin', 'viewer');
    expect(authorization.decision).toMatchObject({ kind: 'deny', code: 'no_route' });
    expect(authorization.answer).toMatchObject({ kind: 'deny', status: 403 });
  });
});

describe('a path that cannot be matched safely', () => {
  const UNSAFE = [
    ['a dot-dot segment', '/a/../balance'],
    ['a dot segment', '/./balance'],
    ['an encoded dot-dot segment', '/a/%2e%2e/balance'],
    ['an empty segment', '//balance'],
    ['an encoded slash', '/accounts%2F42'],
    ['an encoded backslash', '/accounts%5c42'],
    ['a backslash', '/accounts\\42'],
    ['a space', '/bal ance'],
    ['no leading slash', 'balance'],
  ] as const;
  const MODES = [
    ['an enforcing policy', enforced, undefined],
    ['a report-only policy', reportOnly, undefined],
    ['a report-only policy with services', reportOnlyServices, 'bank.example'],
  ] as const;

  for (const [mode, policy, host] of MODES) {
    it.each(UNSAFE)(`is refused 400 invalid_request under ${mode}: %s (%s)`, async (_case, target) => {
      const authorization = await check(policy, 'GET', target, 'viewer', host);
      expect(authorization.decision).toMatchObject({ kind: 'deny', code: 'path_invalid' });
      expect(authorization.answer).toMatchObject({ kind: 'deny', status: 400 });
      expect(authorization.wouldDenyAnswer).toBeUndefined();
    });
  }

  it.each([
    ['a dot-dot segment', '/a/../trial'],
    ['an empty segment', '//trial'],
    ['an encoded slash', '/trial%2Fx'],
  ])('is refused 400 even where it would reach a report-only route: %s (%s)', async (_case, target) => {
    // The route is report-only: its own denials are let through.
    expect(wouldDenyCode(await check(enforced, 'GET', '/trial'))).toBe('credentials_missing');
    const authorization = await check(enforced, 'GET', target);
    expect(authorization.decision).toMatchObject({ kind: 'deny', code: 'path_invalid' });
    expect(authorization.answer).toMatchObject({ kind: 'deny', status: 400 });
  });
});
