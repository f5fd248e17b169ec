import type { JWTPayload } from 'jose';
import { describe, expect, it } from 'vitest';
import { grantedScopes } from '../../../src/authn/granted-scopes.js';

const scopeTokens = (count: number) => Array.from({ length: count }, (_, i) => `scope:${i}`);

describe('grantedScopes', () => {
  it.each<[string, JWTPayload, string[]]>([
    [
      'a space-separated scope string',
      { scope: 'view:balance transfer:funds' },
      ['view:balance', 'transfer:funds'],
    ],
    ['a single scope', { scope: 'view:balance' }, ['view:balance']],
    ['an scp array', { scp: ['view:balance', 'transfer:funds'] }, ['view:balance', 'transfer:funds']],
    ['an scp string', { scp: 'view:balance transfer:funds' }, ['view:balance', 'transfer:funds']],
    ['no scope claim at all', { sub: 'alice' }, []],
    ['an empty scope string', { scope: '' }, []],
    ['an empty scp array', { scp: [] }, []],
    [
      'repeated and leading, trailing spaces',
      { scope: '  view:balance   transfer:funds  ' },
      ['view:balance', 'transfer:funds'],
    ],
    ['a scope listed twice', { scope: 'view:balance view:balance' }, ['view:balance']],
    [
      'the union of scope and scp when both are present',
      { scope: 'view:balance', scp: ['transfer:funds'] },
      ['view:balance', 'transfer:funds'],
    ],
    [
      'URL-shaped scopes',
      { scope: 'https://api.example/read openid' },
      ['https://api.example/read', 'openid'],
    ],
    ['every character RFC 6749 allows', { scope: '!#[]~' }, ['!#[]~']],
  ])('reads %s', (_case, payload, expected) => {
    expect(grantedScopes(payload)).toEqual(new Set(expected));
  });

  it.each<[string, JWTPayload]>([
    ['a number', { scope: 42 }],
    ['an object', { scope: { read: true } }],
    ['a boolean', { scope: true }],
    ['null', { scope: null }],
    [
      'a null scope beside an scp array (scope is present, so scp must not be read)',
      { scope: null, scp: ['transfer:funds'] },
    ],
    ['an scp number', { scp: 1 }],
    ['an scp array holding a number', { scp: ['view:balance', 7] }],
    ['an scp array holding an array', { scp: [['view:balance']] }],
    ['a quote in a scope', { scope: 'view:"balance"' }],
    ['a backslash in a scope', { scope: 'view\\balance' }],
    ['a tab between scopes', { scope: 'view:balance\ttransfer:funds' }],
    ['a newline between scopes', { scope: 'view:balance\ntransfer:funds' }],
    ['a non-ASCII scope', { scope: 'vüe:balance' }],
    ['a space inside an scp element', { scp: ['view:balance transfer:funds'] }],
    ['an empty scp element', { scp: [''] }],
  ])('refuses a malformed claim: %s', (_case, payload) => {
    expect(grantedScopes(payload)).toBeUndefined();
  });

  it('accepts 256 scopes and refuses 257', () => {
    expect(grantedScopes({ scope: scopeTokens(256).join(' ') })?.size).toBe(256);
    expect(grantedScopes({ scope: scopeTokens(257).join(' ') })).toBeUndefined();
    expect(grantedScopes({ scp: scopeTokens(257) })).toBeUndefined();
  });
});

describe('grantedScopes with configured claims (claims.scopes)', () => {
  it('reads only the configured claims, e.g. Auth0 scope + permissions', () => {
    const payload = { scope: 'openid view:balance', permissions: ['transfer:funds'], scp: ['admin'] };
    expect(grantedScopes(payload, ['scope', 'permissions'])).toEqual(
      new Set(['openid', 'view:balance', 'transfer:funds']),
    );
  });

  it('refuses the token when any configured claim is malformed', () => {
    expect(
      grantedScopes({ scope: 'view:balance', permissions: 'a "b"' }, ['scope', 'permissions']),
    ).toBeUndefined();
  });

  it('ignores claims that are not configured, even malformed ones', () => {
    expect(grantedScopes({ scp: ['transfer:funds'], scope: 42 }, ['scp'])).toEqual(
      new Set(['transfer:funds']),
    );
  });
});
