import { describe, expect, it } from 'vitest';
import { compilePolicy } from '../../../src/policy/compile-policy.js';
import { describePolicyChange, policyChange } from '../../../src/policy/policy-change.js';
import { ISSUER, policyText } from './compile-policy-support.js';

// A reload's change summary names the sender-constraint settings too (docs/sender-constraints.md).

type PolicyParts = Parameters<typeof policyText>[0];

const HEAD = ['version: 1', 'realm: bank-api', 'public_origin: https://bank.example'];
const TRANSFER = '  - { methods: [POST], path: /transfer, scopes: [transfer:funds] }';
const compile = (parts: PolicyParts) => compilePolicy(policyText({ head: HEAD, ...parts }), 'policy.yaml');
const base = compile({ routes: [TRANSFER] });
const changeTo = (parts: PolicyParts) => describePolicyChange(policyChange(base, compile(parts)));

describe('policyChange: sender constraints', () => {
  it.each([
    [
      "a route's sender_constraint",
      { routes: [TRANSFER.replace(' }', ', sender_constraint: { dpop: required } }')] },
      ['route changed: POST /transfer'],
    ],
    [
      'the top-level sender_constraint (the implicit service)',
      { head: [...HEAD, 'sender_constraint: { dpop: allowed }'], routes: [TRANSFER] },
      ['service changed: default'],
    ],
    [
      'the public origin',
      {
        head: ['version: 1', 'realm: bank-api', 'public_origin: https://bank.example:8443'],
        routes: [TRANSFER],
      },
      ['service changed: default'],
    ],
    [
      'a dpop setting',
      { head: [...HEAD, 'dpop: { nonce: required }'], routes: [TRANSFER] },
      ['service changed: default'],
    ],
    [
      'the replay cache size',
      { head: [...HEAD, 'dpop: { replay_cache_size: 5000 }'], routes: [TRANSFER] },
      // The shares one key and one user may hold are a part of it unless set: they change with it.
      [
        'setting changed: dpop.replay_cache_size',
        'setting changed: dpop.replay_cache_per_key',
        'setting changed: dpop.replay_cache_per_subject',
      ],
    ],
    [
      "a key's share of the replay store",
      { head: [...HEAD, 'dpop: { replay_cache_per_key: 10 }'], routes: [TRANSFER] },
      ['setting changed: dpop.replay_cache_per_key'],
    ],
    [
      'the replay store',
      {
        head: [...HEAD, 'dpop: { replay_store: { type: redis, url: "redis://redis:6379" } }'],
        routes: [TRANSFER],
      },
      ['setting changed: dpop.replay_store'],
    ],
    [
      'the largest RSA key accepted',
      { head: [...HEAD, 'max_rsa_key_bits: 8192'], routes: [TRANSFER] },
      // Its key set is judged anew by the new bound.
      ['issuer changed: https://idp.example/', 'setting changed: max_rsa_key_bits'],
    ],
    [
      "an issuer's sender_constraint",
      { issuers: [...ISSUER, '    sender_constraint: { mtls: allowed }'], routes: [TRANSFER] },
      ['issuer changed: https://idp.example/'],
    ],
  ])('names %s', (_what, parts, expected) => {
    expect(changeTo(parts)).toEqual(expected);
  });
});
