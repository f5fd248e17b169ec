import { describe, expect, it } from 'vitest';
import { compilePolicy } from '../../../src/policy/compile-policy.js';
import { expectSingleProblem, policyErrorFrom, policyText } from './compile-policy-support.js';
import { implicitService } from '../../kit/inline-policy.js';

describe('compilePolicy: what a route requires of the login (authentication, RFC 9470)', () => {
  /** The one route of the policy, `POST /transfer` with `scopes` and `authentication` as given. */
  function transferAccess(authentication: string, scopes = '[transfer:funds]') {
    const route = `  - { methods: [POST], path: /transfer, scopes: ${scopes}, authentication: ${authentication} }`;
    return implicitService(compilePolicy(policyText({ routes: [route] }), 'policy.yaml')).routes[0]?.access;
  }

  it.each([
    [
      'acr_values only',
      '{ acr_values: [urn:bank:mfa, urn:bank:hwk] }',
      { acrValues: ['urn:bank:mfa', 'urn:bank:hwk'] },
    ],
    ['amr only', '{ amr: [mfa, hwk] }', { amr: ['mfa', 'hwk'] }],
    ['max_age in whole seconds', '{ max_age: 300 }', { maxAgeSeconds: 300 }],
    ['max_age with a unit', '{ max_age: 5m }', { maxAgeSeconds: 300 }],
    ['max_age of 0: a login in this very second', '{ max_age: 0 }', { maxAgeSeconds: 0 }],
    ['max_age of exactly a year, the most allowed', '{ max_age: 365d }', { maxAgeSeconds: 31_536_000 }],
    [
      'all three',
      '{ acr_values: [urn:bank:mfa], amr: [mfa], max_age: 10m }',
      { acrValues: ['urn:bank:mfa'], amr: ['mfa'], maxAgeSeconds: 600 },
    ],
  ])('compiles %s, and nothing else', (_case, authentication, expected) => {
    expect(transferAccess(authentication)).toStrictEqual({
      kind: 'protected',
      scopes: ['transfer:funds'],
      authentication: expected,
    });
  });

  it('compiles the block form policy.yaml uses', () => {
    const text = policyText({
      routes: [
        '  - methods: [POST]',
        '    path: /transfer',
        '    scopes: [transfer:funds]',
        '    authentication:',
        '      acr_values: [urn:bank:mfa]',
        '      amr: [mfa]',
        '      max_age: 10m',
      ],
    });

    expect(implicitService(compilePolicy(text, 'policy.yaml')).routes[0]?.access).toStrictEqual({
      kind: 'protected',
      scopes: ['transfer:funds'],
      authentication: { acrValues: ['urn:bank:mfa'], amr: ['mfa'], maxAgeSeconds: 600 },
    });
  });

  it('takes authentication with an empty scope list: any token from a login strong enough', () => {
    expect(transferAccess('{ amr: [mfa] }', '[]')).toStrictEqual({
      kind: 'protected',
      scopes: [],
      authentication: { amr: ['mfa'] },
    });
  });

  it('leaves authentication out of a route that gives none', () => {
    const access = implicitService(
      compilePolicy(
        policyText({ routes: ['  - { path: /balance, scopes: [view:balance] }'] }),
        'policy.yaml',
      ),
    ).routes[0]?.access;

    expect(access).toStrictEqual({ kind: 'protected', scopes: ['view:balance'] });
  });
});

describe('compilePolicy: authentication errors (ERR_POLICY_INVALID)', () => {
  // routes[0] in block form from line 9: path 9, scopes 10, `authentication:` 11, its entries from 12.
  function authenticationError(
    entries: string[],
    route = ['  - path: /transfer', '    scopes: [transfer:funds]'],
  ) {
    const text = policyText({
      routes: [...route, '    authentication:', ...entries.map((e) => `      ${e}`)],
    });
    return policyErrorFrom(() => compilePolicy(text, 'policy.yaml'));
  }

  it('refuses an empty authentication mapping: it would require nothing', () => {
    const text = policyText({
      routes: ['  - { path: /transfer, scopes: [transfer:funds], authentication: {} }'],
    });
    const error = policyErrorFrom(() => compilePolicy(text, 'policy.yaml'));

    expectSingleProblem(error, 'ERR_POLICY_INVALID', {
      line: 9,
      path: 'routes[0].authentication',
      message: 'must NOT have fewer than 1 properties',
    });
  });

  it('refuses an unknown key, naming the keys that are allowed', () => {
    const error = authenticationError(['acr_values: [urn:bank:mfa]', 'acr: urn:bank:mfa']);

    expectSingleProblem(error, 'ERR_POLICY_INVALID', {
      line: 13,
      path: 'routes[0].authentication.acr',
      message: 'unknown key "acr" (allowed: acr_values, amr, max_age)',
    });
  });

  it.each([
    ['a fraction', '1.5'],
    ['a negative number', '-1'],
    ['a word', 'soon'],
    ['an unknown unit', '1y'],
    ['a space before the unit', "'5 m'"],
  ])('refuses a max_age that is %s', (_case, value) => {
    const error = authenticationError([`max_age: ${value}`]);

    expectSingleProblem(error, 'ERR_POLICY_INVALID', {
      line: 12,
      path: 'routes[0].authentication.max_age',
      message: 'must be a duration: whole seconds (30) or a number with a unit (30s, 5m, 1h)',
    });
  });

  it.each(['31536001', '366d', '8761h', '525601m', '999999999d'])(
    'refuses a max_age of %s: more than a year',
    (value) => {
      const error = authenticationError(['amr: [mfa]', `max_age: ${value}`]);

      expectSingleProblem(error, 'ERR_POLICY_INVALID', {
        line: 13,
        path: 'routes[0].authentication.max_age',
        message: 'must be a duration of at most a year (whole seconds, or 30s / 5m / 1h)',
      });
    },
  );

  it('refuses authentication on a public route: there is no login to check', () => {
    const error = authenticationError(['max_age: 5m'], ['  - path: /healthz', '    public: true']);

    expectSingleProblem(error, 'ERR_POLICY_INVALID', {
      line: 11,
      path: 'routes[0].authentication',
      message: 'a public route takes no authentication requirements',
    });
  });

  it('refuses authentication without scopes: the route must still say what it requires', () => {
    const error = authenticationError(['amr: [mfa]'], ['  - path: /transfer']);

    expectSingleProblem(error, 'ERR_POLICY_INVALID', {
      line: 9,
      path: 'routes[0]',
      message: /^say what the route requires: /,
    });
  });

  // acr_values are sent back in the WWW-Authenticate challenge, where quotes, backslashes and spaces
  // (the list separator) cannot appear inside one value.
  it.each([
    ['a double quote', `'urn:bank:"mfa"'`],
    ['a space', `'urn:bank mfa'`],
    ['a backslash', `'urn:bank\\mfa'`],
    ['nothing', `''`],
  ])('refuses an acr_values entry holding %s', (_case, value) => {
    const error = authenticationError([`acr_values: [urn:bank:pwd, ${value}]`]);

    expectSingleProblem(error, 'ERR_POLICY_INVALID', {
      line: 12,
      path: 'routes[0].authentication.acr_values[1]',
      message: 'has an unexpected form',
    });
  });

  it.each([
    [
      'an empty acr_values list',
      'acr_values: []',
      'routes[0].authentication.acr_values',
      /fewer than 1 items/,
    ],
    ['an empty amr list', 'amr: []', 'routes[0].authentication.amr', /fewer than 1 items/],
    [
      'an amr method holding a space',
      "amr: ['mfa otp']",
      'routes[0].authentication.amr[0]',
      'has an unexpected form',
    ],
    [
      'an acr value listed twice',
      'acr_values: [a, a]',
      'routes[0].authentication.acr_values',
      'lists the same value twice',
    ],
  ])('refuses %s', (_case, entry, path, message) => {
    expectSingleProblem(authenticationError([entry]), 'ERR_POLICY_INVALID', { line: 12, path, message });
  });
});
