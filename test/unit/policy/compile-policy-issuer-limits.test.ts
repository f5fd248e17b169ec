import { describe, expect, it } from 'vitest';
import { compilePolicy } from '../../../src/policy/compile-policy.js';
import { POLICY_DEFAULTS } from '../../../src/policy/policy-defaults.js';
import type { IssuerPolicy } from '../../../src/policy/compiled-policy.js';
import { expectSingleProblem, ISSUER, policyErrorFrom, policyText } from './compile-policy-support.js';

// max_token_lifetime, jwks_max_stale and jwks_fetch_wait: each issuer's limits on how long a token may
// live, how long its keys may be used stale, and how long a request waits for them (docs/policy.md, "Token
// validation"). In the inline policies the issuer's extra settings start at line 8.

/** The issuer of a policy whose issuer block has these extra lines. */
function issuerWith(...settings: string[]): IssuerPolicy {
  const policy = compilePolicy(policyText({ issuers: [...ISSUER, ...settings] }), 'policy.yaml');
  return policy.issuers.get('https://idp.example/')!;
}

/** The single problem of a policy whose issuer block has these extra lines. */
function refusal(...settings: string[]) {
  return policyErrorFrom(() =>
    compilePolicy(policyText({ issuers: [...ISSUER, ...settings] }), 'policy.yaml'),
  );
}

describe('compilePolicy: issuer limits, defaults', () => {
  it('lives 24 hours at most, keeps stale keys 24 hours, waits 500 ms for keys, when the file says nothing', () => {
    expect(issuerWith()).toMatchObject({
      maxTokenLifetimeSeconds: 86_400,
      jwksMaxStaleSeconds: 86_400,
      jwksFetchWaitMs: 500,
    });
    expect(POLICY_DEFAULTS).toMatchObject({
      maxTokenLifetimeSeconds: 86_400,
      minMaxTokenLifetimeSeconds: 60,
      maxMaxTokenLifetimeSeconds: 31_536_000,
      jwksMaxStaleSeconds: 86_400,
      maxJwksMaxStaleSeconds: 2_592_000,
      jwksFetchWaitMs: 500,
      maxJwksFetchWaitMs: 10_000,
    });
  });

  it('keeps the default jwks_max_stale valid with the longest jwks_cache_ttl', () => {
    expect(issuerWith('    jwks_cache_ttl: 1d')).toMatchObject({
      jwksCacheTtlSeconds: 86_400,
      jwksMaxStaleSeconds: 86_400,
    });
  });
});

describe('compilePolicy: max_token_lifetime', () => {
  it.each([
    ['60', 60],
    ['1m', 60],
    ['1h', 3600],
    ['7d', 604_800],
    ['365d', 31_536_000],
    ['31536000', 31_536_000],
  ])('accepts %s, 1m to 365d', (value, seconds) => {
    expect(issuerWith(`    max_token_lifetime: ${value}`).maxTokenLifetimeSeconds).toBe(seconds);
  });

  it.each(['59', '0', '366d', '8761h'])('refuses %s, out of range, at its line', (value) => {
    expectSingleProblem(refusal(`    max_token_lifetime: ${value}`), 'ERR_POLICY_INVALID', {
      line: 8,
      path: 'issuers[0].max_token_lifetime',
      message: 'must be a duration from 1m to 365d (whole seconds, or 30s / 5m / 1h)',
    });
  });
});

describe('compilePolicy: jwks_max_stale', () => {
  it.each([
    ['5m', 300], // the default jwks_cache_ttl exactly
    ['12h', 43_200],
    ['30d', 2_592_000],
  ])('accepts %s, from jwks_cache_ttl to 30d', (value, seconds) => {
    expect(issuerWith(`    jwks_max_stale: ${value}`).jwksMaxStaleSeconds).toBe(seconds);
  });

  it('accepts exactly the jwks_cache_ttl the issuer gives', () => {
    expect(issuerWith('    jwks_cache_ttl: 1h', '    jwks_max_stale: 3600')).toMatchObject({
      jwksCacheTtlSeconds: 3600,
      jwksMaxStaleSeconds: 3600,
    });
  });

  it.each([
    [
      'a shorter jwks_cache_ttl it is given',
      ['    jwks_cache_ttl: 1h', '    jwks_max_stale: 30m'],
      9,
      '30m',
      '1h',
    ],
    ['the default jwks_cache_ttl', ['    jwks_max_stale: 299'], 8, '299s', '5m'],
    ['any jwks_cache_ttl, at 0', ['    jwks_max_stale: 0'], 8, '0s', '5m'],
  ])('refuses a jwks_max_stale below %s, naming both', (_, settings, line, stale, ttl) => {
    expectSingleProblem(refusal(...settings), 'ERR_POLICY_INVALID', {
      line,
      path: 'issuers[0].jwks_max_stale',
      message: `jwks_max_stale (${stale}) must be at least jwks_cache_ttl (${ttl})`,
    });
  });

  it('refuses more than 30 days, at its line', () => {
    expectSingleProblem(refusal('    jwks_max_stale: 31d'), 'ERR_POLICY_INVALID', {
      line: 8,
      path: 'issuers[0].jwks_max_stale',
      message:
        'must be a duration of at most 30d, and at least jwks_cache_ttl (whole seconds, or 30s / 5m / 1h)',
    });
  });

  it('reports a refused jwks_cache_ttl once, not again as a jwks_max_stale problem', () => {
    expectSingleProblem(refusal('    jwks_cache_ttl: 2d', '    jwks_max_stale: 1m'), 'ERR_POLICY_INVALID', {
      line: 8,
      path: 'issuers[0].jwks_cache_ttl',
      message: 'must be a duration from 10s to 1d (whole seconds, or 30s / 5m / 1h)',
    });
  });
});

describe('compilePolicy: jwks_fetch_wait', () => {
  it.each([
    ['0', 0],
    ['0ms', 0],
    ['800ms', 800],
    ['1', 1000], // whole seconds, as every duration
    ['1s', 1000],
    ['10s', 10_000],
    ['10000ms', 10_000],
  ])('accepts %s, 0ms to 10s, in milliseconds', (value, ms) => {
    expect(issuerWith(`    jwks_fetch_wait: ${value}`).jwksFetchWaitMs).toBe(ms);
  });

  it.each(['10001ms', '11s', '1m'])('refuses %s, longer than 10s, at its line', (value) => {
    expectSingleProblem(refusal(`    jwks_fetch_wait: ${value}`), 'ERR_POLICY_INVALID', {
      line: 8,
      path: 'issuers[0].jwks_fetch_wait',
      message: 'must be a duration from 0ms to 10s (800ms, whole seconds, or 1s)',
    });
  });

  it.each(['-1', '1.5s', '500 us', 'half a second'])(
    'refuses %s, not a duration, saying ms is allowed',
    (value) => {
      expectSingleProblem(refusal(`    jwks_fetch_wait: ${value}`), 'ERR_POLICY_INVALID', {
        line: 8,
        path: 'issuers[0].jwks_fetch_wait',
        message: 'must be a duration: milliseconds (800ms), whole seconds (1) or a number with a unit (1s)',
      });
    },
  );
});

describe('compilePolicy: ms is for jwks_fetch_wait only', () => {
  const MS_REFUSED =
    'takes whole seconds at the finest (30, 30s, 5m, 1h): "ms" is accepted by jwks_fetch_wait only';

  it.each([
    ['clock_tolerance', '    clock_tolerance: 500ms', 8],
    ['jwks_cache_ttl', '    jwks_cache_ttl: 60000ms', 8],
    ['jwks_refresh_cooldown', '    jwks_refresh_cooldown: 1000ms', 8],
    ['jwks_max_stale', '    jwks_max_stale: 3600000ms', 8],
    ['max_token_lifetime', '    max_token_lifetime: 60000ms', 8],
  ])('refuses ms for %s, with a message that says where ms belongs', (key, line, lineNumber) => {
    expectSingleProblem(refusal(line), 'ERR_POLICY_INVALID', {
      line: lineNumber,
      path: `issuers[0].${key}`,
      message: MS_REFUSED,
    });
  });

  it('refuses ms for token_cache.ttl', () => {
    expectSingleProblem(refusal('    token_cache: { ttl: 500ms }'), 'ERR_POLICY_INVALID', {
      line: 8,
      path: 'issuers[0].token_cache.ttl',
      message: MS_REFUSED,
    });
  });

  it("refuses ms for a route's max_age", () => {
    const text = policyText({
      routes: ['  - { path: /a, scopes: [x], authentication: { max_age: 500ms } }'],
    });
    expectSingleProblem(
      policyErrorFrom(() => compilePolicy(text, 'policy.yaml')),
      'ERR_POLICY_INVALID',
      { line: 9, path: 'routes[0].authentication.max_age', message: MS_REFUSED },
    );
  });
});
