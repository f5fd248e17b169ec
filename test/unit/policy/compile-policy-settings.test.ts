import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { compilePolicy } from '../../../src/policy/compile-policy.js';
import { POLICY_DEFAULTS } from '../../../src/policy/policy-defaults.js';
import { FIXTURES, ISSUER, policyText } from './compile-policy-support.js';
import { implicitService } from '../../kit/inline-policy.js';

const REPO_POLICY = fileURLToPath(new URL('../../../policy.yaml', import.meta.url));

describe('compilePolicy: the repository policy.yaml', () => {
  it('compiles, with its key file resolved next to the policy and not opened', async () => {
    const text = await readFile(REPO_POLICY, 'utf8');
    const policy = compilePolicy(text, REPO_POLICY);

    expect(implicitService(policy).realm).toBe('bank-api');
    expect(policy.source).toBe(REPO_POLICY);
    expect(policy.version).toMatch(/^[0-9a-f]{16}$/);
    expect([...policy.issuers.keys()]).toEqual(['http://127.0.0.1:9000', 'https://idp.example/']);
    expect(policy.issuers.get('https://idp.example/')).toMatchObject({
      audiences: ['https://my-banking-api'],
      algorithms: ['RS256'],
      keys: { kind: 'file', path: resolve(REPO_POLICY, '..', '.authz-dev/jwks.json') },
      requiredTyp: 'at+jwt',
    });
    expect(policy.issuers.get('http://127.0.0.1:9000')?.keys).toEqual({
      kind: 'discovery',
      metadataUrl: new URL('http://127.0.0.1:9000/.well-known/openid-configuration'),
      issuer: 'http://127.0.0.1:9000',
    });
    expect(implicitService(policy).routes.map((route) => route.name)).toEqual([
      'GET /balance',
      'POST /transfer',
      '* /healthz',
      'GET /accounts/{id}/balance',
      'GET,HEAD /app/**',
    ]);
  });

  it('records each route with its 0-based index, 1-based line, methods and access', async () => {
    const policy = compilePolicy(await readFile(REPO_POLICY, 'utf8'), REPO_POLICY);
    const [balance, transfer, healthz, accountBalance] = implicitService(policy).routes;

    expect(balance).toMatchObject({ index: 0, line: 36, pattern: '/balance' });
    expect(balance?.methods).toEqual(new Set(['GET']));
    expect(balance?.access).toEqual({ kind: 'protected', scopes: ['view:balance'] });
    expect(transfer).toMatchObject({ index: 1, line: 40 });
    expect(transfer?.access).toEqual({
      kind: 'protected',
      scopes: ['transfer:funds'],
      authentication: { acrValues: ['urn:bank:mfa'], amr: ['mfa'], maxAgeSeconds: 600 },
    });
    expect(healthz).toMatchObject({ index: 2, line: 50, methods: null, access: { kind: 'public' } });
    expect(accountBalance).toMatchObject({ index: 3, line: 55, pattern: '/accounts/{id}/balance' });
    expect(accountBalance?.matchesPath('/accounts/42/balance')).toBe(true);
  });
});

describe('compilePolicy: defaults and settings', () => {
  it('applies the defaults: 8192-byte tokens, 30 s clock tolerance, 5 min key cache, 30 s cooldown', () => {
    const policy = compilePolicy(policyText(), 'policy.yaml');
    const issuer = policy.issuers.get('https://idp.example/');

    expect(policy.maxTokenBytes).toBe(8192);
    expect(issuer).toMatchObject({
      clockToleranceSeconds: 30,
      jwksCacheTtlSeconds: 300,
      jwksRefreshCooldownSeconds: 30,
      jwksMaxStaleSeconds: 86_400,
      jwksFetchWaitMs: 500,
      maxTokenLifetimeSeconds: 86_400,
    });
    expect(POLICY_DEFAULTS).toMatchObject({
      maxTokenBytes: 8192,
      clockToleranceSeconds: 30,
      jwksCacheTtlSeconds: 300,
      jwksRefreshCooldownSeconds: 30,
      jwksMaxStaleSeconds: 86_400,
      jwksFetchWaitMs: 500,
      maxTokenLifetimeSeconds: 86_400,
    });
  });

  it('takes every optional setting the file gives, durations with or without a unit', async () => {
    const file = join(FIXTURES, 'complete.yaml');
    const policy = compilePolicy(await readFile(file, 'utf8'), file);

    expect(policy.maxTokenBytes).toBe(4096);
    expect(policy.maxRsaKeyBits).toBe(8192);
    expect(policy.issuers.get('https://partner.example/')?.requireSubject).toBe(true); // the default
    expect(policy.issuers.get('https://idp.example/')).toEqual({
      issuer: 'https://idp.example/',
      audiences: ['https://my-banking-api', 'https://my-banking-api/v2'],
      algorithms: ['RS256', 'PS256'],
      keys: { kind: 'file', path: join(FIXTURES, 'complete-jwks.json') },
      clockToleranceSeconds: 60,
      jwksCacheTtlSeconds: 3600,
      jwksRefreshCooldownSeconds: 45,
      jwksMaxStaleSeconds: 43_200,
      jwksFetchWaitMs: 800,
      maxTokenLifetimeSeconds: 7200,
      claims: { scopes: ['scope', 'scp'], acr: 'acr', amr: 'amr', authTime: 'auth_time' },
      requiredTyp: undefined,
      requireSubject: false,
      maxRsaKeyBits: 8192,
      headerClaims: [],
      tokenCache: { maxEntries: 50_000, ttlSeconds: 120 },
      senderConstraint: {},
    });
    const partner = policy.issuers.get('https://partner.example/');
    expect(partner?.keys).toEqual({
      kind: 'uri',
      uri: new URL('https://partner.example/.well-known/jwks.json'),
    });
    expect(partner?.clockToleranceSeconds).toBe(30);
  });

  it('treats an empty scope list as "any valid token", not as public', async () => {
    const file = join(FIXTURES, 'complete.yaml');
    const policy = compilePolicy(await readFile(file, 'utf8'), file);
    const files = implicitService(policy).routes.find((route) => route.pattern === '/files/**');

    expect(files?.access).toEqual({ kind: 'protected', scopes: [] });
    expect(files?.methods).toBeNull();
  });

  it('resolves a relative jwks_file against the folder of the policy file', () => {
    const text = policyText({
      issuers: [ISSUER[0]!, ISSUER[1]!, '    jwks_file: keys/jwks.json', ISSUER[3]!],
    });
    const policy = compilePolicy(text, '/etc/authz/policy.yaml');

    expect(policy.issuers.get('https://idp.example/')?.keys).toEqual({
      kind: 'file',
      path: '/etc/authz/keys/jwks.json',
    });
  });

  it.each([
    ['clock_tolerance', '0', 'clockToleranceSeconds', 0],
    ['clock_tolerance', '5m', 'clockToleranceSeconds', 300],
    ['jwks_cache_ttl', '10s', 'jwksCacheTtlSeconds', 10],
    ['jwks_cache_ttl', '1d', 'jwksCacheTtlSeconds', 86_400],
    ['jwks_refresh_cooldown', '1', 'jwksRefreshCooldownSeconds', 1],
    ['jwks_refresh_cooldown', '1h', 'jwksRefreshCooldownSeconds', 3600],
  ] as const)('accepts %s: %s at the edge of its range', (key, value, property, seconds) => {
    const policy = compilePolicy(policyText({ issuers: [...ISSUER, `    ${key}: ${value}`] }), 'policy.yaml');

    expect(policy.issuers.get('https://idp.example/')?.[property]).toBe(seconds);
  });
});

describe('compilePolicy: the version hash', () => {
  it('is the same for the same text, whatever the file is called', () => {
    const text = policyText();

    expect(compilePolicy(text, 'policy.yaml').version).toBe(compilePolicy(text, 'policy.yaml').version);
    expect(compilePolicy(text, '/elsewhere/other.yaml').version).toBe(
      compilePolicy(text, 'policy.yaml').version,
    );
  });

  it.each([
    ['a comment is added', (text: string) => `# reviewed\n${text}`],
    ['a scope changes', (text: string) => text.replace('public: true', 'scopes: [admin]')],
    ['a route is added', (text: string) => `${text}  - { path: /metrics, public: true }\n`],
  ])('changes when %s', (_change, edit) => {
    const text = policyText();

    expect(compilePolicy(edit(text), 'policy.yaml').version).not.toBe(
      compilePolicy(text, 'policy.yaml').version,
    );
  });
});
