import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { compilePolicy } from '../../../src/policy/compile-policy.js';
import type { PolicyError } from '../../../src/policy/policy-error.js';
import {
  expectSingleProblem,
  FIXTURES,
  ISSUER,
  policyErrorFrom,
  policyText,
  PUBLIC_ROUTE,
} from './compile-policy-support.js';

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
      allowed:
        'version, realm, mode, reload_guard, max_rsa_key_bits, max_token_bytes, known_scopes, public_origin, ' +
        'sender_constraint, dpop, issuers, routes, services',
    },
    {
      where: 'in an issuer',
      text: policyText({ issuers: [...ISSUER, '    leeway: 30'] }),
      line: 8,
      path: 'issuers[0].leeway',
      key: 'leeway',
      allowed:
        'issuer, audiences, jwks_uri, jwks_file, discovery, openid_configuration, algorithms, clock_tolerance, ' +
        'jwks_cache_ttl, jwks_refresh_cooldown, jwks_max_stale, jwks_fetch_wait, max_token_lifetime, claims, ' +
        'require_sub, require_typ, token_cache, sender_constraint',
    },
    {
      where: 'in a route',
      text: policyText({ routes: [PUBLIC_ROUTE, '  - { path: /a, scope: [x] }'] }),
      line: 10,
      path: 'routes[1].scope',
      key: 'scope',
      allowed: 'methods, path, scopes, public, authentication, accept_risks, mode, sender_constraint',
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
    ['clock_tolerance', '301', 'from 0s to 5m'],
    ['clock_tolerance', '6m', 'from 0s to 5m'],
    ['jwks_cache_ttl', '9', 'from 10s to 1d'],
    ['jwks_cache_ttl', '2d', 'from 10s to 1d'],
    ['jwks_refresh_cooldown', '0', 'from 1s to 1h'],
    ['jwks_refresh_cooldown', '2h', 'from 1s to 1h'],
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
