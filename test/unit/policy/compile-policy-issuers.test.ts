import { describe, expect, it } from 'vitest';
import { compilePolicy } from '../../../src/policy/compile-policy.js';
import { POLICY_DEFAULTS } from '../../../src/policy/policy-defaults.js';
import { expectSingleProblem, ISSUER, policyErrorFrom, policyText } from './compile-policy-support.js';

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
