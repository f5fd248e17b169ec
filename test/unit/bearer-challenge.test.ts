import { describe, expect, it } from 'vitest';
import { bearerChallenge } from '../../src/authz/bearer-challenge.js';

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
