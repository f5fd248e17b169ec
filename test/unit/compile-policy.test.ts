import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compilePolicy, POLICY_DEFAULTS } from '../../src/policy/compile-policy.js';
import { loadPolicy, MAX_POLICY_BYTES } from '../../src/policy/load-policy.js';
import { PolicyError, type PolicyErrorCode, type PolicyProblem } from '../../src/policy/policy-error.js';

const REPO_POLICY = fileURLToPath(new URL('../../policy.yaml', import.meta.url));
const FIXTURES = fileURLToPath(new URL('../fixtures/policies/', import.meta.url));

// The policy the inline cases start from. Line 1 `version`, 2 `realm`, 3 `issuers:`, the issuer block
// from line 4 (issuer 4, audiences 5, jwks_uri 6, algorithms 7, extra keys 8...), then `routes:` and
// one route per line: with the default issuer block, `routes:` is line 8 and routes[i] is line 9 + i.
const ISSUER = [
  '  - issuer: https://idp.example/',
  '    audiences: [https://my-banking-api]',
  '    jwks_uri: https://idp.example/.well-known/jwks.json',
  '    algorithms: [RS256]',
];
const PUBLIC_ROUTE = '  - { path: /healthz, public: true }';

function policyText(parts: { head?: string[]; issuers?: string[]; routes?: string[] } = {}): string {
  const head = parts.head ?? ['version: 1', 'realm: bank-api'];
  return [...head, 'issuers:', ...(parts.issuers ?? ISSUER), 'routes:', ...(parts.routes ?? [PUBLIC_ROUTE])]
    .join('\n')
    .concat('\n');
}

/** The PolicyError `compile` throws; fails the test if it returns or throws anything else. */
function policyErrorFrom(compile: () => unknown): PolicyError {
  let thrown: unknown;
  try {
    compile();
  } catch (error) {
    thrown = error;
  }
  expect(thrown).toBeInstanceOf(PolicyError);
  return thrown as PolicyError;
}

async function policyErrorFromAsync(load: () => Promise<unknown>): Promise<PolicyError> {
  const thrown: unknown = await load().then(
    () => undefined,
    (error: unknown) => error,
  );
  expect(thrown).toBeInstanceOf(PolicyError);
  return thrown as PolicyError;
}

function expectSingleProblem(
  error: PolicyError,
  code: PolicyErrorCode,
  expected: { line: number; path: string; message: string | RegExp },
): PolicyProblem {
  expect(error.code).toBe(code);
  expect(error.problems).toHaveLength(1);
  const [problem] = error.problems as [PolicyProblem];
  expect(problem.file).toBe('policy.yaml');
  expect(problem.line).toBe(expected.line);
  expect(problem.path).toBe(expected.path);
  if (typeof expected.message === 'string') expect(problem.message).toBe(expected.message);
  else expect(problem.message).toMatch(expected.message);
  return problem;
}

describe('compilePolicy: the repository policy.yaml', () => {
  it('compiles, with its key file resolved next to the policy and not opened', async () => {
    const text = await readFile(REPO_POLICY, 'utf8');
    const policy = compilePolicy(text, REPO_POLICY);

    expect(policy.realm).toBe('bank-api');
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
    expect(policy.routes.map((route) => route.name)).toEqual([
      'GET /balance',
      'POST /transfer',
      '* /healthz',
      'GET /accounts/{id}/balance',
      'GET,HEAD /app/**',
    ]);
  });

  it('records each route with its 0-based index, 1-based line, methods and access', async () => {
    const policy = compilePolicy(await readFile(REPO_POLICY, 'utf8'), REPO_POLICY);
    const [balance, transfer, healthz, accountBalance] = policy.routes;

    expect(balance).toMatchObject({ index: 0, line: 25, pattern: '/balance' });
    expect(balance?.methods).toEqual(new Set(['GET']));
    expect(balance?.access).toEqual({ kind: 'protected', scopes: ['view:balance'] });
    expect(transfer).toMatchObject({ index: 1, line: 29 });
    expect(transfer?.access).toEqual({
      kind: 'protected',
      scopes: ['transfer:funds'],
      authentication: { acrValues: ['urn:bank:mfa'], amr: ['mfa'], maxAgeSeconds: 600 },
    });
    expect(healthz).toMatchObject({ index: 2, line: 36, methods: null, access: { kind: 'public' } });
    expect(accountBalance).toMatchObject({ index: 3, line: 37, pattern: '/accounts/{id}/balance' });
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
    });
    expect(POLICY_DEFAULTS).toMatchObject({
      maxTokenBytes: 8192,
      clockToleranceSeconds: 30,
      jwksCacheTtlSeconds: 300,
      jwksRefreshCooldownSeconds: 30,
    });
  });

  it('takes every optional setting the file gives, durations with or without a unit', async () => {
    const file = join(FIXTURES, 'complete.yaml');
    const policy = compilePolicy(await readFile(file, 'utf8'), file);

    expect(policy.maxTokenBytes).toBe(4096);
    expect(policy.issuers.get('https://idp.example/')).toEqual({
      issuer: 'https://idp.example/',
      audiences: ['https://my-banking-api', 'https://my-banking-api/v2'],
      algorithms: ['RS256', 'PS256'],
      keys: { kind: 'file', path: join(FIXTURES, 'complete-jwks.json') },
      clockToleranceSeconds: 60,
      jwksCacheTtlSeconds: 3600,
      jwksRefreshCooldownSeconds: 45,
      claims: { scopes: ['scope', 'scp'], acr: 'acr', amr: 'amr', authTime: 'auth_time' },
      requiredTyp: undefined,
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
    const files = policy.routes.find((route) => route.pattern === '/files/**');

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

describe('compilePolicy: YAML syntax errors (ERR_POLICY_SYNTAX)', () => {
  it.each([
    ['a nested mapping on one line', 'version: 1\nrealm: a: b\nissuers: []\nroutes: []\n', 2],
    ['a tab used as indentation', 'version: 1\nrealm: a\nissuers:\n\t- x\nroutes: []\n', 4],
    ['two documents in one file', 'version: 1\n---\nversion: 1\n', 2],
  ])('reports %s at its line', (_case, text, line) => {
    const error = policyErrorFrom(() => compilePolicy(text, 'policy.yaml'));

    const problem = expectSingleProblem(error, 'ERR_POLICY_SYNTAX', {
      line,
      path: '',
      message: /^YAML syntax: /,
    });
    expect(problem.column).toBeGreaterThan(0);
  });

  it('refuses a duplicate key at the line of the second occurrence', () => {
    const text = policyText({ head: ['version: 1', 'realm: bank-api', 'realm: other'] });
    const error = policyErrorFrom(() => compilePolicy(text, 'policy.yaml'));

    expectSingleProblem(error, 'ERR_POLICY_SYNTAX', {
      line: 3,
      path: '',
      message: 'YAML syntax: Map keys must be unique',
    });
  });

  it('refuses a duplicate key inside a route', () => {
    const text = policyText({ routes: [PUBLIC_ROUTE, '  - { path: /a, path: /b, public: true }'] });
    const error = policyErrorFrom(() => compilePolicy(text, 'policy.yaml'));

    expect(error.code).toBe('ERR_POLICY_SYNTAX');
    expect(error.problems.map((problem) => problem.line)).toEqual([10]);
  });

  it('formats each problem as file:line:column: path: message, the way compilers do', () => {
    const text = policyText({ head: ['version: 1', 'realm: bank-api', 'realm: other'] });
    const error = policyErrorFrom(() => compilePolicy(text, 'policy.yaml'));

    expect(error.message).toBe('policy.yaml:3:1: YAML syntax: Map keys must be unique');
    expect(error.name).toBe('PolicyError');
  });

  it('refuses a YAML alias bomb with a PolicyError rather than expanding it or crashing', () => {
    const lines = ['a0: &a0 [x, x, x, x, x, x, x, x, x, x]'];
    for (let level = 1; level < 8; level += 1) {
      lines.push(
        `a${level}: &a${level} [${Array(10)
          .fill(`*a${level - 1}`)
          .join(', ')}]`,
      );
    }
    const error = policyErrorFrom(() => compilePolicy(lines.join('\n'), 'policy.yaml'));

    expect(['ERR_POLICY_SYNTAX', 'ERR_POLICY_INVALID']).toContain(error.code);
    expect(error.problems[0]?.file).toBe('policy.yaml');
  });
});

describe('compilePolicy: schema errors (ERR_POLICY_INVALID)', () => {
  it.each([
    ['version: 2', 'version: 2'],
    ['version as a string', "version: '1'"],
  ])('refuses %s: only version 1 exists', (_case, versionLine) => {
    const text = policyText({ head: [versionLine, 'realm: bank-api'] });
    const error = policyErrorFrom(() => compilePolicy(text, 'policy.yaml'));

    expectSingleProblem(error, 'ERR_POLICY_INVALID', { line: 1, path: 'version', message: 'must be 1' });
  });

  it.each([
    {
      where: 'at the top level',
      text: policyText({ head: ['version: 1', 'realm: bank-api', 'owner: payments'] }),
      line: 3,
      path: 'owner',
      key: 'owner',
      allowed: 'version, realm, mode, max_token_bytes, known_scopes, issuers, routes',
    },
    {
      where: 'in an issuer',
      text: policyText({ issuers: [...ISSUER, '    leeway: 30'] }),
      line: 8,
      path: 'issuers[0].leeway',
      key: 'leeway',
      allowed:
        'issuer, audiences, jwks_uri, jwks_file, discovery, openid_configuration, algorithms, clock_tolerance, ' +
        'jwks_cache_ttl, jwks_refresh_cooldown, claims, require_typ',
    },
    {
      where: 'in a route',
      text: policyText({ routes: [PUBLIC_ROUTE, '  - { path: /a, scope: [x] }'] }),
      line: 10,
      path: 'routes[1].scope',
      key: 'scope',
      allowed: 'methods, path, scopes, public, authentication, mode',
    },
  ])(
    'refuses an unknown key $where, naming the keys that are allowed',
    ({ text, line, path, key, allowed }) => {
      const error = policyErrorFrom(() => compilePolicy(text, 'policy.yaml'));

      expect(error.code).toBe('ERR_POLICY_INVALID');
      expect(error.problems).toContainEqual(
        expect.objectContaining({
          file: 'policy.yaml',
          line,
          path,
          message: `unknown key "${key}" (allowed: ${allowed})`,
        }),
      );
    },
  );

  it('tells about a misspelt key as well as the key it leaves missing', () => {
    // `jwks_url` instead of `jwks_uri`: the useful message is the unknown key, not only the missing one.
    const text = policyText({
      issuers: [ISSUER[0]!, ISSUER[1]!, '    jwks_url: https://idp.example/jwks.json', ISSUER[3]!],
    });
    const error = policyErrorFrom(() => compilePolicy(text, 'policy.yaml'));

    expect(error.code).toBe('ERR_POLICY_INVALID');
    expect(error.problems).toContainEqual(
      expect.objectContaining({
        line: 6,
        path: 'issuers[0].jwks_url',
        message: expect.stringMatching(/^unknown key "jwks_url"/),
      }),
    );
  });

  it.each([
    {
      missing: 'realm',
      text: policyText({ head: ['version: 1'] }),
      line: 1,
      path: '',
    },
    {
      missing: 'routes',
      text: 'version: 1\nrealm: bank-api\nissuers:\n' + ISSUER.join('\n') + '\n',
      line: 1,
      path: '',
    },
    {
      missing: 'audiences',
      text: policyText({ issuers: [ISSUER[0]!, ISSUER[2]!, ISSUER[3]!] }),
      line: 4,
      path: 'issuers[0]',
    },
    {
      missing: 'algorithms',
      text: policyText({ issuers: ISSUER.slice(0, 3) }),
      line: 4,
      path: 'issuers[0]',
    },
    {
      missing: 'path',
      text: policyText({ routes: [PUBLIC_ROUTE, PUBLIC_ROUTE, '  - { methods: [GET], public: true }'] }),
      line: 11,
      path: 'routes[2]',
    },
  ])('refuses a policy missing the required key "$missing"', ({ missing, text, line, path }) => {
    const error = policyErrorFrom(() => compilePolicy(text, 'policy.yaml'));

    expectSingleProblem(error, 'ERR_POLICY_INVALID', {
      line,
      path,
      message: `missing required key "${missing}"`,
    });
  });

  it.each([
    ['both jwks_uri and jwks_file', [...ISSUER, '    jwks_file: jwks.json']],
    ['neither jwks_uri nor jwks_file', [ISSUER[0]!, ISSUER[1]!, ISSUER[3]!]],
    ['both discovery and jwks_uri', [...ISSUER, '    discovery: true']],
  ])('refuses an issuer with %s', (_case, issuers) => {
    const error = policyErrorFrom(() => compilePolicy(policyText({ issuers }), 'policy.yaml'));

    expectSingleProblem(error, 'ERR_POLICY_INVALID', {
      line: 4,
      path: 'issuers[0]',
      message: 'give exactly one of "jwks_uri", "jwks_file", "discovery: true" or "openid_configuration"',
    });
  });

  it.each(['HS256', 'none', 'rs256'])('refuses the algorithm %s: asymmetric JWS algorithms only', (alg) => {
    const text = policyText({ issuers: [...ISSUER.slice(0, 3), `    algorithms: [RS256, ${alg}]`] });
    const error = policyErrorFrom(() => compilePolicy(text, 'policy.yaml'));

    expectSingleProblem(error, 'ERR_POLICY_INVALID', {
      line: 7,
      path: 'issuers[0].algorithms[1]',
      message: /^must be one of: RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, ES512, EdDSA/,
    });
  });

  it.each([
    ['a fraction', '1.5'],
    ['a negative number', '-1'],
    ['a word', 'soon'],
    ['an unknown unit', '5w'],
  ])('refuses a duration that is %s', (_case, value) => {
    const text = policyText({ issuers: [...ISSUER, `    clock_tolerance: ${value}`] });
    const error = policyErrorFrom(() => compilePolicy(text, 'policy.yaml'));

    expectSingleProblem(error, 'ERR_POLICY_INVALID', {
      line: 8,
      path: 'issuers[0].clock_tolerance',
      message: 'must be a duration: whole seconds (30) or a number with a unit (30s, 5m, 1h)',
    });
  });

  it('refuses a method that is not an HTTP method name at all', () => {
    const text = policyText({ routes: ['  - { methods: ["GET /x"], path: /a, scopes: [] }'] });
    const error = policyErrorFrom(() => compilePolicy(text, 'policy.yaml'));

    expectSingleProblem(error, 'ERR_POLICY_INVALID', {
      line: 9,
      path: 'routes[0].methods[0]',
      message: 'is not an HTTP method name',
    });
  });

  it('reports several schema problems at once', () => {
    const text = policyText({
      head: ['version: 1', 'realm: \'bank "api"\'', 'max_token_bytes: 10'],
      routes: ['  - { path: /a, scopes: [view:balance, view:balance] }'],
    });
    const error = policyErrorFrom(() => compilePolicy(text, 'policy.yaml'));

    expect(error.code).toBe('ERR_POLICY_INVALID');
    expect(error.problems.map(({ line, path }) => ({ line, path }))).toEqual(
      expect.arrayContaining([
        { line: 2, path: 'realm' },
        { line: 3, path: 'max_token_bytes' },
        { line: 10, path: 'routes[0].scopes' },
      ]),
    );
    expect(error.problems).toHaveLength(3);
  });
});

describe('compilePolicy: semantic errors (ERR_POLICY_INVALID)', () => {
  function routeProblem(route: string): PolicyError {
    return policyErrorFrom(() => compilePolicy(policyText({ routes: [PUBLIC_ROUTE, route] }), 'policy.yaml'));
  }

  it('refuses a lower-case method and says how to write it', () => {
    const error = routeProblem('  - { methods: [get], path: /balance, scopes: [view:balance] }');

    const problem = expectSingleProblem(error, 'ERR_POLICY_INVALID', {
      line: 10,
      path: 'routes[1].methods[0]',
      message: 'HTTP methods are case-sensitive: write "GET"',
    });
    expect(problem.column).toBe(17);
  });

  it('locates a method in a block sequence on its own line', () => {
    const text = policyText({
      routes: ['  - path: /a', '    methods:', '      - GET', '      - post', '    scopes: [x]'],
    });
    const error = policyErrorFrom(() => compilePolicy(text, 'policy.yaml'));

    expectSingleProblem(error, 'ERR_POLICY_INVALID', {
      line: 12,
      path: 'routes[0].methods[1]',
      message: 'HTTP methods are case-sensitive: write "POST"',
    });
  });

  it.each([
    ['/a/**/b', '"**" may only be the last segment'],
    ['/a//b', 'has an empty segment ("//")'],
    ['/a/../b', 'has a dot segment ("." or "..")'],
    ['/a/./b', 'has a dot segment ("." or "..")'],
    ['/a/{id', 'segment "{id": a parameter is "{name}" and fills a whole segment'],
    ['/a/b*', 'segment "b*": "*" is only allowed as a whole "**" last segment'],
    ['/a/%2F', 'segment "%2F" has characters not allowed in a path (no "?", "#", "%", spaces or quotes)'],
    ['relative', 'must start with "/"'],
  ])('refuses the path pattern %s', (pattern, reason) => {
    const error = routeProblem(`  - { path: '${pattern}', scopes: [] }`);

    expectSingleProblem(error, 'ERR_POLICY_INVALID', {
      line: 10,
      path: 'routes[1].path',
      message: `path pattern "${pattern}": ${reason}`,
    });
  });

  it('refuses a public route that also lists scopes', () => {
    const error = routeProblem('  - { path: /status, public: true, scopes: [] }');

    expectSingleProblem(error, 'ERR_POLICY_INVALID', {
      line: 10,
      path: 'routes[1].scopes',
      message: 'a public route takes no scopes: remove "scopes" or "public: true"',
    });
  });

  it.each([
    ['neither public nor scopes', '  - { methods: [GET], path: /status }'],
    ['public: false and no scopes', '  - { path: /status, public: false }'],
  ])('refuses a route with %s: it must say what it requires', (_case, route) => {
    const error = routeProblem(route);

    expectSingleProblem(error, 'ERR_POLICY_INVALID', {
      line: 10,
      path: 'routes[1]',
      message: /^say what the route requires: "scopes: \[\.\.\.\]" .* or "public: true"$/,
    });
  });

  it.each([
    ['http to a remote host', 'http://idp.example/.well-known/jwks.json', /^must be an https URL/],
    ['http to a private address', 'http://10.0.0.1/jwks.json', /^must be an https URL/],
    ['http to a look-alike of 127.0.0.1', 'http://127.0.0.1.evil.example/jwks.json', /^must be an https URL/],
    ['http to a look-alike of localhost', 'http://localhost.evil.example/jwks.json', /^must be an https URL/],
    ['another scheme', 'ftp://idp.example/jwks.json', /^must be an https URL/],
    ['a relative reference', '/jwks.json', /is not an absolute URL$/],
    ['credentials', 'https://user:secret@idp.example/jwks.json', /^must not carry credentials$/],
    ['a fragment', 'https://idp.example/jwks.json#keys', /^must not have a fragment$/],
  ])('refuses a jwks_uri with %s', (_case, uri, message) => {
    const text = policyText({ issuers: [ISSUER[0]!, ISSUER[1]!, `    jwks_uri: '${uri}'`, ISSUER[3]!] });
    const error = policyErrorFrom(() => compilePolicy(text, 'policy.yaml'));

    expectSingleProblem(error, 'ERR_POLICY_INVALID', { line: 6, path: 'issuers[0].jwks_uri', message });
  });

  it.each([
    'http://127.0.0.1:8080/.well-known/jwks.json',
    'http://127.10.20.30/jwks.json',
    'http://localhost:8080/jwks.json',
    'http://[::1]:8080/jwks.json',
    'https://idp.example/.well-known/jwks.json',
    'https://10.0.0.1/jwks.json',
  ])('accepts the jwks_uri %s (https, or http on loopback)', (uri) => {
    const text = policyText({ issuers: [ISSUER[0]!, ISSUER[1]!, `    jwks_uri: '${uri}'`, ISSUER[3]!] });
    const policy = compilePolicy(text, 'policy.yaml');

    expect(policy.issuers.get('https://idp.example/')?.keys).toEqual({ kind: 'uri', uri: new URL(uri) });
  });

  it.each([
    ['clock_tolerance', '301', 'from 0s to 300s'],
    ['clock_tolerance', '6m', 'from 0s to 300s'],
    ['jwks_cache_ttl', '9', 'from 10s to 86400s'],
    ['jwks_cache_ttl', '2d', 'from 10s to 86400s'],
    ['jwks_refresh_cooldown', '0', 'from 1s to 3600s'],
    ['jwks_refresh_cooldown', '2h', 'from 1s to 3600s'],
  ])('refuses %s: %s, out of range', (key, value, range) => {
    const text = policyText({ issuers: [...ISSUER, `    ${key}: ${value}`] });
    const error = policyErrorFrom(() => compilePolicy(text, 'policy.yaml'));

    expectSingleProblem(error, 'ERR_POLICY_INVALID', {
      line: 8,
      path: `issuers[0].${key}`,
      message: `must be a duration ${range} (whole seconds, or 30s / 5m / 1h)`,
    });
  });

  it('refuses an issuer listed twice, at the second listing', () => {
    const text = policyText({ issuers: [...ISSUER, ...ISSUER] });
    const error = policyErrorFrom(() => compilePolicy(text, 'policy.yaml'));

    expectSingleProblem(error, 'ERR_POLICY_INVALID', {
      line: 8,
      path: 'issuers[1].issuer',
      message: 'issuer "https://idp.example/" is listed twice',
    });
  });

  it('reports every problem of a file at once, each at its own line', async () => {
    const file = join(FIXTURES, 'several-problems.yaml');
    const text = await readFile(file, 'utf8');
    const error = policyErrorFrom(() => compilePolicy(text, file));

    expect(error.code).toBe('ERR_POLICY_INVALID');
    expect(error.problems.every((problem) => problem.file === file)).toBe(true);
    expect(error.problems.map(({ line, path }) => `${line} ${path}`).sort()).toEqual([
      '11 issuers[1].jwks_uri',
      '13 issuers[2].issuer',
      '17 issuers[2].clock_tolerance',
      '19 routes[0].methods[0]',
      '20 routes[1].path',
      '21 routes[2].scopes',
      '22 routes[3]',
    ]);
  });

  it('reports a missing key and a missing key source of the same issuer together', () => {
    const text = policyText({ issuers: [ISSUER[0]!, ISSUER[3]!] });
    const error = policyErrorFrom(() => compilePolicy(text, 'policy.yaml'));

    expect(error.code).toBe('ERR_POLICY_INVALID');
    expect(error.problems.map((problem) => problem.message)).toEqual(
      expect.arrayContaining([
        'missing required key "audiences"',
        'give exactly one of "jwks_uri", "jwks_file", "discovery: true" or "openid_configuration"',
      ]),
    );
  });
});

describe('loadPolicy', () => {
  let dir: string;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'authz-policy-'));
  });

  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('reads, compiles and checks a policy whose key file exists', async () => {
    const file = join(FIXTURES, 'complete.yaml');
    const policy = await loadPolicy(file);

    expect(policy.source).toBe(file);
    expect(policy.routes).toHaveLength(5);
    expect(policy.version).toBe(compilePolicy(await readFile(file, 'utf8'), file).version);
  });

  it('refuses a policy whose jwks_file does not exist, naming the issuer and the resolved path', async () => {
    const file = join(FIXTURES, 'missing-jwks-file.yaml');
    const error = await policyErrorFromAsync(() => loadPolicy(file));

    expect(error.code).toBe('ERR_POLICY_INVALID');
    expect(error.problems).toEqual([
      expect.objectContaining({
        file,
        path: 'issuers',
        message: `jwks_file of issuer "https://idp.example/" does not exist: ${join(FIXTURES, 'no-such-folder/jwks.json')}`,
      }),
    ]);
  });

  it('refuses a jwks_file that is a folder', async () => {
    const file = join(dir, 'folder-as-keys.yaml');
    await mkdir(join(dir, 'keys-folder'));
    await writeFile(
      file,
      policyText({ issuers: [ISSUER[0]!, ISSUER[1]!, '    jwks_file: keys-folder', ISSUER[3]!] }),
    );
    const error = await policyErrorFromAsync(() => loadPolicy(file));

    expect(error.code).toBe('ERR_POLICY_INVALID');
    expect(error.problems[0]?.message).toMatch(/does not exist: .*keys-folder$/);
  });

  it('refuses a missing file with ERR_POLICY_READ', async () => {
    const file = join(dir, 'absent.yaml');
    const error = await policyErrorFromAsync(() => loadPolicy(file));

    expect(error.code).toBe('ERR_POLICY_READ');
    expect(error.problems).toEqual([
      { file, line: 0, column: 0, path: '', message: 'cannot be read (ENOENT)' },
    ]);
    expect(error.message).toBe(`${file}: cannot be read (ENOENT)`);
  });

  it('refuses a folder given as the policy file', async () => {
    const error = await policyErrorFromAsync(() => loadPolicy(dir));

    expect(error.code).toBe('ERR_POLICY_READ');
    expect(error.problems[0]?.message).toBe('is not a regular file');
  });

  it('refuses a file that is not UTF-8', async () => {
    const file = join(dir, 'latin1.yaml');
    await writeFile(file, Buffer.from('version: 1\nrealm: caf\xe9\n', 'latin1'));
    const error = await policyErrorFromAsync(() => loadPolicy(file));

    expect(error.code).toBe('ERR_POLICY_READ');
    expect(error.problems).toEqual([{ file, line: 0, column: 0, path: '', message: 'is not valid UTF-8' }]);
  });

  it('refuses a file larger than 1 MiB before reading it', async () => {
    const file = join(dir, 'huge.yaml');
    const text = policyText();
    await writeFile(file, text + '#'.repeat(MAX_POLICY_BYTES - Buffer.byteLength(text)) + '\n');
    const error = await policyErrorFromAsync(() => loadPolicy(file));

    expect(MAX_POLICY_BYTES).toBe(1024 * 1024);
    expect(error.code).toBe('ERR_POLICY_READ');
    expect(error.problems[0]?.message).toBe('is larger than 1048576 bytes');
  });

  it('accepts a file of exactly 1 MiB', async () => {
    const file = join(dir, 'just-fits.yaml');
    const text = policyText();
    await writeFile(file, text + '#'.repeat(MAX_POLICY_BYTES - Buffer.byteLength(text)));

    await expect(loadPolicy(file)).resolves.toMatchObject({ realm: 'bank-api' });
  });

  it('passes syntax and validity errors through with the file name', async () => {
    const file = join(dir, 'broken.yaml');
    await writeFile(file, 'version: 1\nrealm: a: b\n');
    const error = await policyErrorFromAsync(() => loadPolicy(file));

    expect(error.code).toBe('ERR_POLICY_SYNTAX');
    expect(error.problems[0]).toMatchObject({ file, line: 2 });
  });
});

describe('compilePolicy: what a route requires of the login (authentication, RFC 9470)', () => {
  /** The one route of the policy, `POST /transfer` with `scopes` and `authentication` as given. */
  function transferAccess(authentication: string, scopes = '[transfer:funds]') {
    const route = `  - { methods: [POST], path: /transfer, scopes: ${scopes}, authentication: ${authentication} }`;
    return compilePolicy(policyText({ routes: [route] }), 'policy.yaml').routes[0]?.access;
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

    expect(compilePolicy(text, 'policy.yaml').routes[0]?.access).toStrictEqual({
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
    const access = compilePolicy(
      policyText({ routes: ['  - { path: /balance, scopes: [view:balance] }'] }),
      'policy.yaml',
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

describe('compilePolicy: claim names per issuer (claims)', () => {
  /** The compiled issuer with `extra` lines after its algorithms (line 8 on). */
  function issuerWith(...extra: string[]) {
    return compilePolicy(policyText({ issuers: [...ISSUER, ...extra] }), 'policy.yaml').issuers.get(
      'https://idp.example/',
    );
  }

  it('reads scopes from scope and scp, and acr, amr and auth_time by those names, by default', () => {
    expect(issuerWith()?.claims).toStrictEqual({
      scopes: ['scope', 'scp'],
      acr: 'acr',
      amr: 'amr',
      authTime: 'auth_time',
    });
    expect(POLICY_DEFAULTS.claims).toStrictEqual(issuerWith()?.claims);
  });

  it.each([
    [
      'Auth0: scope and permissions',
      '    claims: { scopes: [scope, permissions] }',
      { scopes: ['scope', 'permissions'], acr: 'acr', amr: 'amr', authTime: 'auth_time' },
    ],
    [
      'Okta and Entra: scp alone',
      '    claims: { scopes: [scp] }',
      { scopes: ['scp'], acr: 'acr', amr: 'amr', authTime: 'auth_time' },
    ],
    [
      'namespaced login claims',
      "    claims: { acr: 'https://bank.example/acr', amr: 'https://bank.example/amr', auth_time: login_time }",
      {
        scopes: ['scope', 'scp'],
        acr: 'https://bank.example/acr',
        amr: 'https://bank.example/amr',
        authTime: 'login_time',
      },
    ],
    [
      'every claim',
      '    claims: { scopes: [roles], acr: loa, amr: methods, auth_time: at }',
      { scopes: ['roles'], acr: 'loa', amr: 'methods', authTime: 'at' },
    ],
  ])('takes the names the file gives (%s), the others keeping their defaults', (_case, line, expected) => {
    expect(issuerWith(line)?.claims).toStrictEqual(expected);
  });

  it('refuses an unknown key in claims, naming the keys that are allowed', () => {
    const text = policyText({ issuers: [...ISSUER, '    claims:', '      roles: groups'] });
    const error = policyErrorFrom(() => compilePolicy(text, 'policy.yaml'));

    expectSingleProblem(error, 'ERR_POLICY_INVALID', {
      line: 9,
      path: 'issuers[0].claims.roles',
      message: 'unknown key "roles" (allowed: scopes, acr, amr, auth_time)',
    });
  });

  it.each([
    ['an acr name with a space', "acr: 'my acr'", 'issuers[0].claims.acr', 'has an unexpected form'],
    ['an empty amr name', "amr: ''", 'issuers[0].claims.amr', 'has an unexpected form'],
    [
      'an auth_time name of 65 characters',
      `auth_time: ${'a'.repeat(65)}`,
      'issuers[0].claims.auth_time',
      'has an unexpected form',
    ],
    ['a non-ASCII acr name', 'acr: niveau_sécurité', 'issuers[0].claims.acr', 'has an unexpected form'],
    ['an acr name that is not a string', 'acr: [acr]', 'issuers[0].claims.acr', 'must be string'],
    ['an empty scopes list', 'scopes: []', 'issuers[0].claims.scopes', /fewer than 1 items/],
    [
      'a scopes list naming a claim twice',
      'scopes: [scp, scp]',
      'issuers[0].claims.scopes',
      'lists the same value twice',
    ],
    [
      'a scopes list of 9 claims',
      `scopes: [${'abcdefghi'.split('').join(', ')}]`,
      'issuers[0].claims.scopes',
      /more than 8 items/,
    ],
  ])('refuses %s', (_case, entry, path, message) => {
    const text = policyText({ issuers: [...ISSUER, '    claims:', `      ${entry}`] });
    const error = policyErrorFrom(() => compilePolicy(text, 'policy.yaml'));

    expectSingleProblem(error, 'ERR_POLICY_INVALID', { line: 9, path, message });
  });

  // A claim name is not a scope token: quotes and backslashes are allowed in it, and the message about a
  // bad one must be the same wherever the name is written.
  it('refuses a bad claim name in claims.scopes with the claim-name message, not the scope-token one', () => {
    const bad = (entry: string) =>
      policyErrorFrom(() =>
        compilePolicy(policyText({ issuers: [...ISSUER, '    claims:', `      ${entry}`] }), 'policy.yaml'),
      ).problems;
    const [inScopes] = bad("scopes: ['my scopes']");
    const [inAcr] = bad("acr: 'my scopes'");

    expect(inScopes).toMatchObject({ line: 9, path: 'issuers[0].claims.scopes[0]' });
    expect(inScopes?.message).toBe(inAcr?.message);
  });

  it('accepts claim names holding quotes or backslashes', () => {
    expect(issuerWith(`    claims: { scopes: ['a"b'], acr: 'c\\d' }`)?.claims).toMatchObject({
      scopes: ['a"b'],
      acr: 'c\\d',
    });
  });
});

describe('compilePolicy: require_typ', () => {
  it.each(['at+jwt', 'application/at+jwt'])('keeps require_typ: %s as written', (typ) => {
    const text = policyText({ issuers: [...ISSUER, `    require_typ: ${typ}`] });

    expect(compilePolicy(text, 'policy.yaml').issuers.get('https://idp.example/')?.requiredTyp).toBe(typ);
  });

  it('checks no typ when require_typ is not given', () => {
    const issuer = compilePolicy(policyText(), 'policy.yaml').issuers.get('https://idp.example/');

    expect(issuer).toHaveProperty('requiredTyp', undefined);
  });

  it.each([
    ['a space', "'at jwt'"],
    ['nothing', "''"],
    ['more than 64 characters', 'a'.repeat(65)],
  ])('refuses a require_typ holding %s', (_case, value) => {
    const error = policyErrorFrom(() =>
      compilePolicy(policyText({ issuers: [...ISSUER, `    require_typ: ${value}`] }), 'policy.yaml'),
    );

    expectSingleProblem(error, 'ERR_POLICY_INVALID', {
      line: 8,
      path: 'issuers[0].require_typ',
      message: 'has an unexpected form',
    });
  });
});

describe('compilePolicy: keys found through discovery', () => {
  /** An issuer block whose key source (line 6) is `source`. */
  const issuerBlock = (issuer: string, source: string) => [
    `  - issuer: '${issuer}'`,
    ISSUER[1]!,
    `    ${source}`,
    ISSUER[3]!,
  ];

  it.each([
    ['https://idp.example/', 'https://idp.example/.well-known/openid-configuration'],
    ['https://idp.example', 'https://idp.example/.well-known/openid-configuration'],
    [
      'https://login.example/tenant-a/v2.0',
      'https://login.example/tenant-a/v2.0/.well-known/openid-configuration',
    ],
    ['https://login.example/tenant-a/', 'https://login.example/tenant-a/.well-known/openid-configuration'],
    ['http://127.0.0.1:9000', 'http://127.0.0.1:9000/.well-known/openid-configuration'],
    ['http://localhost:9000/', 'http://localhost:9000/.well-known/openid-configuration'],
  ])('discovery: true for the issuer %s reads %s (OIDC Discovery 1.0 section 4)', (issuer, metadataUrl) => {
    const policy = compilePolicy(
      policyText({ issuers: issuerBlock(issuer, 'discovery: true') }),
      'policy.yaml',
    );

    expect(policy.issuers.get(issuer)?.keys).toStrictEqual({
      kind: 'discovery',
      metadataUrl: new URL(metadataUrl),
      issuer,
    });
  });

  it.each([
    ['not a URL', 'bank-idp', /is not an absolute URL$/],
    ['a URN', 'urn:bank:idp', /must be an https URL/],
    ['http to a remote host', 'http://idp.example/', /must be an https URL/],
    ['http to a private address', 'http://10.0.0.1', /must be an https URL/],
    ['an URL with credentials', 'https://user:secret@idp.example/', /must not carry credentials$/],
    ['an URL with a fragment', 'https://idp.example/#tenant', /an issuer has no query or fragment$/],
  ])('refuses discovery: true for an issuer that is %s', (_case, issuer, reason) => {
    const error = policyErrorFrom(() =>
      compilePolicy(policyText({ issuers: issuerBlock(issuer, 'discovery: true') }), 'policy.yaml'),
    );

    const problem = expectSingleProblem(error, 'ERR_POLICY_INVALID', {
      line: 6,
      path: 'issuers[0].discovery',
      message: /^discovery needs the issuer to be a URL that can be fetched: /,
    });
    expect(problem.message).toMatch(reason);
  });

  // OpenID Connect Discovery 1.0 section 2 and RFC 8414 section 2: an issuer has no query component.
  // Appending the well-known path to one would fetch the issuer's root with a mangled query instead.
  it('refuses discovery: true for an issuer with a query', () => {
    const error = policyErrorFrom(() =>
      compilePolicy(
        policyText({ issuers: issuerBlock('https://idp.example/?tenant=a', 'discovery: true') }),
        'policy.yaml',
      ),
    );

    expectSingleProblem(error, 'ERR_POLICY_INVALID', {
      line: 6,
      path: 'issuers[0].discovery',
      message: /^discovery needs the issuer to be a URL that can be fetched: /,
    });
  });

  it.each([
    'https://login.example/tenant-a/v2.0/.well-known/openid-configuration',
    'https://idp.example/.well-known/oauth-authorization-server',
    'http://127.0.0.1:9000/.well-known/openid-configuration',
    'http://localhost:9000/.well-known/openid-configuration',
    'http://[::1]:9000/.well-known/openid-configuration',
  ])('accepts openid_configuration: %s (https, or http on loopback)', (url) => {
    const text = policyText({
      issuers: issuerBlock('https://idp.example/', `openid_configuration: '${url}'`),
    });

    expect(compilePolicy(text, 'policy.yaml').issuers.get('https://idp.example/')?.keys).toStrictEqual({
      kind: 'discovery',
      metadataUrl: new URL(url),
      issuer: 'https://idp.example/',
    });
  });

  it.each([
    ['http to a remote host', 'http://idp.example/.well-known/openid-configuration', /^must be an https URL/],
    [
      'http to a private address',
      'http://192.168.1.10/.well-known/openid-configuration',
      /^must be an https URL/,
    ],
    ['another scheme', 'ftp://idp.example/.well-known/openid-configuration', /^must be an https URL/],
    ['a relative reference', '/.well-known/openid-configuration', /is not an absolute URL$/],
    [
      'credentials',
      'https://user:secret@idp.example/.well-known/openid-configuration',
      /^must not carry credentials$/,
    ],
  ])('refuses an openid_configuration with %s', (_case, url, message) => {
    const text = policyText({
      issuers: issuerBlock('https://idp.example/', `openid_configuration: '${url}'`),
    });
    const error = policyErrorFrom(() => compilePolicy(text, 'policy.yaml'));

    expectSingleProblem(error, 'ERR_POLICY_INVALID', {
      line: 6,
      path: 'issuers[0].openid_configuration',
      message,
    });
  });

  it('refuses discovery: false: the key is written only to turn discovery on', () => {
    const error = policyErrorFrom(() =>
      compilePolicy(
        policyText({ issuers: issuerBlock('https://idp.example/', 'discovery: false') }),
        'policy.yaml',
      ),
    );

    expectSingleProblem(error, 'ERR_POLICY_INVALID', {
      line: 6,
      path: 'issuers[0].discovery',
      message: 'must be true',
    });
  });

  const SOURCES = {
    jwks_uri: 'jwks_uri: https://idp.example/.well-known/jwks.json',
    jwks_file: 'jwks_file: jwks.json',
    discovery: 'discovery: true',
    openid_configuration: 'openid_configuration: https://idp.example/.well-known/openid-configuration',
  };

  // The pairs the schema tests above do not cover, and more than two at once.
  it.each(
    (
      [
        ['jwks_uri', 'openid_configuration'],
        ['jwks_file', 'discovery'],
        ['jwks_file', 'openid_configuration'],
        ['discovery', 'openid_configuration'],
        ['jwks_uri', 'jwks_file', 'discovery'],
        ['jwks_uri', 'jwks_file', 'discovery', 'openid_configuration'],
      ] as (keyof typeof SOURCES)[][]
    ).map((sources) => ({ sources, listed: sources.length === 4 ? 'all four' : sources.join(' + ') })),
  )('refuses an issuer with $listed: exactly one key source', ({ sources }) => {
    const issuers = [
      ISSUER[0]!,
      ISSUER[1]!,
      ...sources.map((source) => `    ${SOURCES[source]}`),
      ISSUER[3]!,
    ];
    const error = policyErrorFrom(() => compilePolicy(policyText({ issuers }), 'policy.yaml'));

    expectSingleProblem(error, 'ERR_POLICY_INVALID', {
      line: 4,
      path: 'issuers[0]',
      message: 'give exactly one of "jwks_uri", "jwks_file", "discovery: true" or "openid_configuration"',
    });
  });
});
