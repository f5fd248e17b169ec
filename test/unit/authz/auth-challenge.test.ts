import { describe, expect, it } from 'vitest';
import { bearerChallenge } from '../../../src/authz/auth-challenge.js';

describe('bearerChallenge', () => {
  it('formats the RFC 6750 section 3 example of a request without credentials', () => {
    expect(bearerChallenge({ realm: 'example' })).toBe('Bearer realm="example"');
  });

  it('formats the RFC 6750 section 3 example of an expired token', () => {
    expect(
      bearerChallenge({
        realm: 'example',
        error: 'invalid_token',
        error_description: 'The access token expired',
      }),
    ).toBe('Bearer realm="example", error="invalid_token", error_description="The access token expired"');
  });

  it('formats an insufficient_scope challenge with the scopes to step up to', () => {
    expect(
      bearerChallenge({
        realm: 'bank-api',
        error: 'insufficient_scope',
        scope: 'transfer:funds view:balance',
      }),
    ).toBe('Bearer realm="bank-api", error="insufficient_scope", scope="transfer:funds view:balance"');
  });

  it('emits realm, error, error_description, scope in that order, whatever the order given', () => {
    expect(
      bearerChallenge({
        scope: 's',
        error_description: 'd',
        error: 'invalid_request',
        realm: 'r',
      }),
    ).toBe('Bearer realm="r", error="invalid_request", error_description="d", scope="s"');
  });

  it('leaves out the parameters not given', () => {
    expect(bearerChallenge({ realm: 'r', scope: 'a' })).toBe('Bearer realm="r", scope="a"');
    expect(bearerChallenge({ realm: 'r', error_description: 'd' })).toBe(
      'Bearer realm="r", error_description="d"',
    );
  });

  it.each([
    ['realm', { realm: 'bank "api"' }],
    ['realm', { realm: 'bank\\api' }],
    ['error_description', { realm: 'r', error_description: 'say "hi"' }],
    ['error_description', { realm: 'r', error_description: 'back\\slash' }],
    ['error_description', { realm: 'r', error_description: 'line\r\nx-injected: 1' }],
    ['error_description', { realm: 'r', error_description: 'caf\u00e9' }],
    ['scope', { realm: 'r', scope: 'a"b' }],
    ['scope', { realm: 'r', scope: 'a\\b' }],
  ])('refuses a %s holding a quote, backslash or other character RFC 6750 forbids', (name, params) => {
    expect(() => bearerChallenge(params)).toThrow(
      new TypeError(`${name} has characters RFC 6750 does not allow`),
    );
  });
});

describe('bearerChallenge: RFC 9470 step-up parameters', () => {
  // RFC 9470 section 3, figures 2 and 3, on one line. The RFC's examples name no realm; this service always
  // does, and puts it first.
  const FIGURE_2 =
    'Bearer error="insufficient_user_authentication", ' +
    'error_description="A different authentication level is required", acr_values="myACR"';
  const FIGURE_3 =
    'Bearer error="insufficient_user_authentication", ' +
    'error_description="More recent authentication is required", max_age="5"';
  const withRealm = (challenge: string) => challenge.replace('Bearer ', 'Bearer realm="example", ');

  it('formats the RFC 9470 section 3 example asking for another authentication level', () => {
    expect(
      bearerChallenge({
        realm: 'example',
        error: 'insufficient_user_authentication',
        error_description: 'A different authentication level is required',
        acr_values: 'myACR',
      }),
    ).toBe(withRealm(FIGURE_2));
  });

  it('formats the RFC 9470 section 3 example asking for a more recent authentication', () => {
    expect(
      bearerChallenge({
        realm: 'example',
        error: 'insufficient_user_authentication',
        error_description: 'More recent authentication is required',
        max_age: '5',
      }),
    ).toBe(withRealm(FIGURE_3));
  });

  it('emits acr_values then max_age after scope, whatever the order given', () => {
    expect(
      bearerChallenge({
        max_age: '600',
        acr_values: 'urn:bank:mfa urn:bank:hwk',
        scope: 'transfer:funds',
        error_description: 'd',
        error: 'insufficient_user_authentication',
        realm: 'bank-api',
      }),
    ).toBe(
      'Bearer realm="bank-api", error="insufficient_user_authentication", error_description="d", ' +
        'scope="transfer:funds", acr_values="urn:bank:mfa urn:bank:hwk", max_age="600"',
    );
  });

  it('leaves out acr_values or max_age when not given', () => {
    expect(bearerChallenge({ realm: 'r', acr_values: 'a b' })).toBe('Bearer realm="r", acr_values="a b"');
    expect(bearerChallenge({ realm: 'r', max_age: '0' })).toBe('Bearer realm="r", max_age="0"');
  });

  it.each([
    ['acr_values', { realm: 'r', acr_values: 'urn:"mfa"' }],
    ['acr_values', { realm: 'r', acr_values: 'urn:bank\\mfa' }],
    ['max_age', { realm: 'r', max_age: '5"' }],
    ['max_age', { realm: 'r', max_age: '5\r\nx-injected: 1' }],
  ])('refuses a %s holding a quote, backslash or control character', (name, params) => {
    expect(() => bearerChallenge(params)).toThrow(
      new TypeError(`${name} has characters RFC 6750 does not allow`),
    );
  });
});
