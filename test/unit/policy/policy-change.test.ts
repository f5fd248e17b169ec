import { describe, expect, it } from 'vitest';
import { compilePolicy } from '../../../src/policy/compile-policy.js';
import { describePolicyChange, MAX_CHANGE_ITEMS, policyChange } from '../../../src/policy/policy-change.js';
import { ISSUER, policyText } from './compile-policy-support.js';

type PolicyParts = Parameters<typeof policyText>[0];

const compile = (parts: PolicyParts) => compilePolicy(policyText(parts), 'policy.yaml');

const BALANCE = '  - { methods: [GET], path: /balance, scopes: [view:balance] }';
const TRANSFER = '  - { methods: [POST], path: /transfer, scopes: [transfer:funds] }';
const HEALTH = '  - { path: /healthz, public: true }';
const base = compile({ routes: [BALANCE, TRANSFER, HEALTH] });

const changeTo = (parts: PolicyParts) => describePolicyChange(policyChange(base, compile(parts)));

describe('policyChange and describePolicyChange', () => {
  it.each([
    ['the same policy', { routes: [BALANCE, TRANSFER, HEALTH] }, []],
    [
      'a route only moved down a line (a comment above it)',
      { routes: ['  # balances', BALANCE, TRANSFER, HEALTH] },
      [],
    ],
    [
      'a route added',
      { routes: [BALANCE, TRANSFER, HEALTH, '  - { path: /**, public: true }'] },
      ['route added: * /**'],
    ],
    ['a route removed', { routes: [BALANCE, HEALTH] }, ['route removed: POST /transfer']],
    [
      'a route whose scopes changed',
      { routes: [BALANCE.replace('view:balance', 'view:balance, audit:read'), TRANSFER, HEALTH] },
      ['route changed: GET /balance'],
    ],
    [
      'a route turned report-only',
      { routes: [BALANCE.replace(' }', ', mode: report-only }'), TRANSFER, HEALTH] },
      ['route changed: GET /balance'],
    ],
    ['routes reordered', { routes: [TRANSFER, BALANCE, HEALTH] }, ['routes reordered: default']],
    [
      "an issuer's settings changed",
      { issuers: [...ISSUER, '    jwks_cache_ttl: 60s'], routes: [BALANCE, TRANSFER, HEALTH] },
      ['issuer changed: https://idp.example/'],
    ],
    [
      'the realm changed',
      { head: ['version: 1', 'realm: other'], routes: [BALANCE, TRANSFER, HEALTH] },
      ['service changed: default'],
    ],
    [
      'the reload guard turned off',
      { head: ['version: 1', 'realm: bank-api', 'reload_guard: off'], routes: [BALANCE, TRANSFER, HEALTH] },
      ['setting changed: reload_guard'],
    ],
  ] satisfies [string, PolicyParts, string[]][])('%s', (_name, parts, expected) => {
    expect(changeTo(parts)).toEqual(expected);
  });

  it('names a second route of the same name by its occurrence', () => {
    expect(changeTo({ routes: [BALANCE, TRANSFER, HEALTH, BALANCE] })).toEqual([
      'route added: GET /balance #2',
    ]);
  });

  it(`lists at most ${MAX_CHANGE_ITEMS} items, then how many more`, () => {
    const many = Array.from({ length: 30 }, (_, i) => `  - { methods: [GET], path: /r${i}, public: true }`);
    const lines = changeTo({ routes: [BALANCE, TRANSFER, HEALTH, ...many] });
    expect(lines).toHaveLength(MAX_CHANGE_ITEMS + 1);
    expect(lines[0]).toBe('route added: GET /r0');
    expect(lines.at(-1)).toBe('and 10 more');
  });

  it('prefixes routes with their service when the policy lists services', () => {
    const services = (scopes: string) =>
      compilePolicy(
        [
          'version: 1',
          'issuers:',
          ...ISSUER,
          'services:',
          '  - name: billing',
          '    hosts: [billing.example]',
          '    realm: billing',
          '    routes:',
          `      - { methods: [GET], path: /invoices, scopes: [${scopes}] }`,
          '',
        ].join('\n'),
        'policy.yaml',
      );
    expect(describePolicyChange(policyChange(services('a'), services('b')))).toEqual([
      'route changed: billing: GET /invoices',
    ]);
  });
});
