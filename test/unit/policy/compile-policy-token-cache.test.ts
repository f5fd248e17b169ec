import { describe, expect, it } from 'vitest';
import { compilePolicy } from '../../../src/policy/compile-policy.js';
import { POLICY_DEFAULTS } from '../../../src/policy/policy-defaults.js';
import { expectSingleProblem, ISSUER, policyErrorFrom, policyText } from './compile-policy-support.js';

/** The compiled demo issuer with `extra` lines after its algorithms (line 8 on). */
function issuerWith(...extra: string[]) {
  return compilePolicy(policyText({ issuers: [...ISSUER, ...extra] }), 'policy.yaml').issuers.get(
    'https://idp.example/',
  );
}

describe('compilePolicy: the verified-token cache per issuer (token_cache)', () => {
  it('is on by default: 10000 tokens, each verification reused for at most 5 minutes', () => {
    expect(issuerWith()?.tokenCache).toStrictEqual({ maxEntries: 10_000, ttlSeconds: 300 });
    expect(POLICY_DEFAULTS).toMatchObject({ tokenCacheMaxEntries: 10_000, tokenCacheTtlSeconds: 300 });
  });

  it.each([
    ['both keys', '    token_cache: { max_entries: 500, ttl: 90s }', { maxEntries: 500, ttlSeconds: 90 }],
    ['max_entries alone', '    token_cache: { max_entries: 1 }', { maxEntries: 1, ttlSeconds: 300 }],
    ['ttl alone, in whole seconds', '    token_cache: { ttl: 1 }', { maxEntries: 10_000, ttlSeconds: 1 }],
    [
      'the largest values',
      '    token_cache: { max_entries: 1000000, ttl: 1h }',
      { maxEntries: 1e6, ttlSeconds: 3600 },
    ],
    ['an empty mapping (the defaults)', '    token_cache: {}', { maxEntries: 10_000, ttlSeconds: 300 }],
  ])('takes %s', (_case, line, expected) => {
    expect(issuerWith(line)?.tokenCache).toStrictEqual(expected);
  });

  it('is turned off by max_entries: 0', () => {
    expect(issuerWith('    token_cache: { max_entries: 0 }')?.tokenCache).toBeUndefined();
  });

  it.each(['0', '61m', '2h'])('refuses ttl: %s, naming file, line and path', (value) => {
    const text = policyText({ issuers: [...ISSUER, '    token_cache:', `      ttl: ${value}`] });
    const error = policyErrorFrom(() => compilePolicy(text, 'policy.yaml'));

    expectSingleProblem(error, 'ERR_POLICY_INVALID', {
      line: 9,
      path: 'issuers[0].token_cache.ttl',
      message: 'must be a duration from 1s to 1h (whole seconds, or 30s / 5m / 1h)',
    });
  });

  it('checks ttl even when the cache is turned off', () => {
    const text = policyText({ issuers: [...ISSUER, '    token_cache: { max_entries: 0, ttl: 0 }'] });
    const error = policyErrorFrom(() => compilePolicy(text, 'policy.yaml'));

    expectSingleProblem(error, 'ERR_POLICY_INVALID', {
      line: 8,
      path: 'issuers[0].token_cache.ttl',
      message: /^must be a duration from 1s to 1h/,
    });
  });

  it.each([
    ['1000001', 'must be <= 1000000'],
    ['-1', 'must be >= 0'],
    ['1.5', 'must be integer'],
    ['lots', 'must be integer'],
  ])('refuses max_entries: %s', (value, message) => {
    const text = policyText({ issuers: [...ISSUER, '    token_cache:', `      max_entries: ${value}`] });
    const error = policyErrorFrom(() => compilePolicy(text, 'policy.yaml'));

    expectSingleProblem(error, 'ERR_POLICY_INVALID', {
      line: 9,
      path: 'issuers[0].token_cache.max_entries',
      message,
    });
  });

  it.each([
    ['false', 'must be object'],
    ['{ size: 10 }', 'unknown key "size" (allowed: max_entries, ttl)'],
  ])('refuses token_cache: %s', (value, message) => {
    const text = policyText({ issuers: [...ISSUER, `    token_cache: ${value}`] });
    const error = policyErrorFrom(() => compilePolicy(text, 'policy.yaml'));

    expect(error.code).toBe('ERR_POLICY_INVALID');
    expect(error.problems).toContainEqual(expect.objectContaining({ file: 'policy.yaml', line: 8, message }));
  });
});
