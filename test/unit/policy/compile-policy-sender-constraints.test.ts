import { describe, expect, it } from 'vitest';
import { compilePolicy } from '../../../src/policy/compile-policy.js';
import { POLICY_DEFAULTS } from '../../../src/policy/policy-defaults.js';
import type { CompiledPolicy, CompiledService } from '../../../src/policy/compiled-policy.js';
import { normalisedOrigin } from '../../../src/policy/public-origin.js';
import { expectSingleProblem, policyErrorFrom, policyText } from './compile-policy-support.js';

// docs/sender-constraints.md: public_origin, sender_constraint and dpop, at every level they are taken.

const IDP = 'https://idp.example/';
const PARTNER = 'https://partner.example/';

// Two issuers (lines 4-7 and 8-11): idp.example sets nothing, partner.example requires DPoP.
const TWO_ISSUERS = [
  '  - issuer: https://idp.example/', //                          4
  '    audiences: [https://my-banking-api]',
  '    jwks_uri: https://idp.example/.well-known/jwks.json',
  '    algorithms: [RS256]',
  '  - issuer: https://partner.example/', //                      8
  '    audiences: [https://partner-api]',
  '    jwks_uri: https://partner.example/.well-known/jwks.json',
  '    algorithms: [RS256]',
  '    sender_constraint: { dpop: required }', //                 12
];

function compile(text: string): CompiledPolicy {
  return compilePolicy(text, 'policy.yaml');
}

function only(policy: CompiledPolicy): CompiledService {
  expect(policy.services).toHaveLength(1);
  return policy.services[0]!;
}

function service(policy: CompiledPolicy, name: string): CompiledService {
  const found = policy.services.find((s) => s.name === name);
  expect(found).toBeDefined();
  return found!;
}

describe('compilePolicy: sender_constraint, resolved per route and issuer', () => {
  it('is off for every issuer when nothing sets it: Bearer only, no public_origin needed', () => {
    const policy = compile(policyText({ routes: ['  - { path: /balance, scopes: [view:balance] }'] }));
    const [route] = only(policy).routes;

    expect(route?.senderConstraint).toEqual({});
    expect(route?.senderConstraints).toEqual(new Map([[IDP, { dpop: 'off', mtls: 'off' }]]));
    expect(route?.schemes).toEqual({ bearer: true, dpop: false });
    expect(only(policy).publicOrigins).toEqual([]);
    expect(policy.issuers.get(IDP)?.senderConstraint).toEqual({});
  });

  it('takes each member from the route, else the service (top level), else the issuer, else off', () => {
    const policy = compile(
      policyText({
        head: [
          'version: 1',
          'realm: bank-api',
          'public_origin: https://bank.example',
          'sender_constraint: { mtls: allowed }',
        ],
        issuers: TWO_ISSUERS,
        routes: [
          '  - { path: /balance, scopes: [view:balance] }',
          '  - { path: /transfer, scopes: [transfer:funds], sender_constraint: { dpop: required } }',
          '  - { path: /legacy, scopes: [], sender_constraint: { dpop: off, mtls: off } }',
        ],
      }),
    );
    const [balance, transfer, legacy] = only(policy).routes;

    expect(only(policy).senderConstraint).toEqual({ mtls: 'allowed' });
    expect(balance?.senderConstraints).toEqual(
      new Map([
        [IDP, { dpop: 'off', mtls: 'allowed' }],
        [PARTNER, { dpop: 'required', mtls: 'allowed' }],
      ]),
    );
    expect(balance?.schemes).toEqual({ bearer: true, dpop: true });
    expect(transfer?.senderConstraint).toEqual({ dpop: 'required' });
    expect(transfer?.senderConstraints).toEqual(
      new Map([
        [IDP, { dpop: 'required', mtls: 'allowed' }],
        [PARTNER, { dpop: 'required', mtls: 'allowed' }],
      ]),
    );
    // RFC 9449 section 7.1: no Bearer challenge where every issuer's tokens must be DPoP-bound.
    expect(transfer?.schemes).toEqual({ bearer: false, dpop: true });
    expect(legacy?.senderConstraints).toEqual(
      new Map([
        [IDP, { dpop: 'off', mtls: 'off' }],
        [PARTNER, { dpop: 'off', mtls: 'off' }],
      ]),
    );
    expect(legacy?.schemes).toEqual({ bearer: true, dpop: false });
  });

  it('keeps Bearer where both bindings are required: a certificate-bound token goes as Bearer (RFC 8705)', () => {
    const policy = compile(
      policyText({
        head: ['version: 1', 'realm: bank-api', 'public_origin: https://bank.example'],
        routes: ['  - { path: /pay, scopes: [pay], sender_constraint: { dpop: required, mtls: required } }'],
      }),
    );

    expect(only(policy).routes[0]?.schemes).toEqual({ bearer: true, dpop: true });
  });

  it('gives a public route no constraint and no scheme', () => {
    const policy = compile(
      policyText({
        head: ['version: 1', 'realm: bank-api', 'sender_constraint: { dpop: required }'],
        routes: ['  - { methods: [GET], path: /healthz, public: true }'],
      }),
    );
    const [healthz] = only(policy).routes;

    expect(healthz?.senderConstraints.size).toBe(0);
    expect(healthz?.schemes).toEqual({ bearer: false, dpop: false });
  });

  it("lets a service's members override the top level's one by one, over the issuers it trusts only", () => {
    const policy = compile(
      [
        'version: 1',
        'realm: bank-api',
        'public_origin: https://api.example',
        'sender_constraint: { dpop: allowed, mtls: allowed }',
        'issuers:',
        ...TWO_ISSUERS,
        'services:',
        '  - name: bank',
        '    issuers: [{ issuer: https://idp.example/ }]',
        '    sender_constraint: { dpop: required }',
        '    routes:',
        '      - { path: /balance, scopes: [view:balance] }',
        '  - name: partner',
        '    issuers: [{ issuer: https://partner.example/ }]',
        '    routes:',
        '      - { path: /balance, scopes: [view:balance] }',
        '',
      ].join('\n'),
    );

    const bank = service(policy, 'bank');
    expect(bank.senderConstraint).toEqual({ dpop: 'required', mtls: 'allowed' });
    expect(bank.routes[0]?.senderConstraints).toEqual(
      new Map([[IDP, { dpop: 'required', mtls: 'allowed' }]]),
    );
    expect(bank.routes[0]?.schemes).toEqual({ bearer: false, dpop: true });
    const partner = service(policy, 'partner');
    expect(partner.senderConstraint).toEqual({ dpop: 'allowed', mtls: 'allowed' });
    expect(partner.routes[0]?.senderConstraints).toEqual(
      new Map([[PARTNER, { dpop: 'allowed', mtls: 'allowed' }]]),
    );
    expect(partner.publicOrigins).toEqual(['https://api.example']);
  });

  it('shares one map between routes with the same constraints, so 10,000 routes hold a handful', () => {
    const routes = Array.from({ length: 10_000 }, (_, i) =>
      i % 3 === 0
        ? `  - { path: /r${i}, scopes: [a], sender_constraint: { dpop: required } }`
        : `  - { path: /r${i}, scopes: [a] }`,
    );
    const policy = compile(
      policyText({
        head: ['version: 1', 'realm: bank-api', 'public_origin: https://bank.example'],
        issuers: TWO_ISSUERS,
        routes,
      }),
    );
    const compiled = only(policy).routes;

    expect(compiled).toHaveLength(10_000);
    expect(new Set(compiled.map((route) => route.senderConstraints)).size).toBe(2);
    expect(new Set(compiled.map((route) => route.schemes)).size).toBe(2);
    expect(compiled[0]?.senderConstraints.get(IDP)).toBe(compiled[0]?.senderConstraints.get(PARTNER));
  });

  it('shares maps across services that resolve alike', () => {
    const policy = compile(
      [
        'version: 1',
        'realm: bank-api',
        'public_origin: https://api.example',
        'issuers:',
        ...TWO_ISSUERS,
        'services:',
        '  - { name: a, routes: [{ path: /x, scopes: [] }] }',
        '  - { name: b, routes: [{ path: /y, scopes: [] }] }',
        '',
      ].join('\n'),
    );

    expect(service(policy, 'a').routes[0]?.senderConstraints).toBe(
      service(policy, 'b').routes[0]?.senderConstraints,
    );
  });

  it('refuses sender_constraint on a public route: no token is read there', () => {
    const error = policyErrorFrom(() =>
      compile(
        policyText({
          routes: ['  - { path: /healthz, public: true, sender_constraint: { dpop: required } }'],
        }),
      ),
    );

    expectSingleProblem(error, 'ERR_POLICY_INVALID', {
      line: 9,
      path: 'routes[0].sender_constraint',
      message: /^a public route takes no sender_constraint/,
    });
  });

  it.each([
    {
      written: '{ dpop: sometimes }',
      path: 'routes[0].sender_constraint.dpop',
      message: /must be one of: off, allowed, required/,
    },
    {
      written: '{ tls: required }',
      path: 'routes[0].sender_constraint.tls',
      message: 'unknown key "tls" (allowed: dpop, mtls)',
    },
  ])('refuses sender_constraint $written', ({ written, path, message }) => {
    const error = policyErrorFrom(() =>
      compile(policyText({ routes: [`  - { path: /a, scopes: [], sender_constraint: ${written} }`] })),
    );

    expectSingleProblem(error, 'ERR_POLICY_INVALID', { line: 9, path, message });
  });
});

describe('compilePolicy: a service that accepts DPoP needs public_origin', () => {
  it('refuses the implicit service, at the first route that accepts DPoP', () => {
    const error = policyErrorFrom(() =>
      compile(
        policyText({
          routes: [
            '  - { path: /balance, scopes: [view:balance] }',
            '  - { path: /transfer, scopes: [transfer:funds], sender_constraint: { dpop: allowed } }',
          ],
        }),
      ),
    );

    expectSingleProblem(error, 'ERR_POLICY_INVALID', {
      line: 10,
      path: 'routes[1]',
      message:
        'service "default" accepts DPoP proofs (sender_constraint) on route * /transfer but has no public_origin: ' +
        "a proof's htu cannot be checked (set public_origin at the top level)",
    });
  });

  it('refuses a service that trusts an issuer requiring DPoP, naming the service', () => {
    const error = policyErrorFrom(() =>
      compile(
        [
          'version: 1',
          'realm: bank-api',
          'issuers:',
          ...TWO_ISSUERS,
          'services:', //                                            13
          '  - name: bank', //                                       14
          '    routes:',
          '      - { methods: [POST], path: /transfer, scopes: [transfer:funds] }', // 16
          '',
        ].join('\n'),
      ),
    );

    expectSingleProblem(error, 'ERR_POLICY_INVALID', {
      line: 16,
      path: 'services[0].routes[0]',
      message:
        /^service "bank" accepts DPoP proofs \(sender_constraint\) on route POST \/transfer but has no public_origin: a proof's htu cannot be checked/,
    });
  });

  it("accepts a service's own public_origin, and a service that accepts no DPoP without one", () => {
    const policy = compile(
      [
        'version: 1',
        'realm: bank-api',
        'issuers:',
        ...TWO_ISSUERS,
        'services:',
        '  - name: bank',
        '    public_origin: [HTTPS://Bank.Example:443/, https://bank.example:8443]',
        '    routes: [{ path: /transfer, scopes: [transfer:funds] }]',
        '  - name: plain',
        '    issuers: [{ issuer: https://idp.example/ }]',
        '    routes: [{ path: /x, scopes: [] }]',
        '',
      ].join('\n'),
    );

    expect(service(policy, 'bank').publicOrigins).toEqual([
      'https://bank.example',
      'https://bank.example:8443',
    ]);
    expect(service(policy, 'plain').publicOrigins).toEqual([]);
  });

  it('accepts dpop settings where no route accepts DPoP: harmless', () => {
    const policy = compile(
      policyText({
        head: ['version: 1', 'realm: bank-api', 'dpop: { nonce: required }'],
        routes: ['  - { path: /a, scopes: [] }'],
      }),
    );

    expect(only(policy).dpop.nonce).toBe('required');
  });
});

describe('compilePolicy: public_origin', () => {
  it.each([
    ['https://bank.example', 'https://bank.example'],
    ['https://bank.example/', 'https://bank.example'],
    ['HTTPS://BANK.Example', 'https://bank.example'],
    ['https://bank.example:443', 'https://bank.example'],
    ['http://127.0.0.1:80', 'http://127.0.0.1'],
    ['http://127.0.0.1:8000', 'http://127.0.0.1:8000'],
    ['https://bank.example:8443', 'https://bank.example:8443'],
    ['http://[::1]:8000', 'http://[::1]:8000'],
  ])('normalises %s to %s', (written, origin) => {
    expect(normalisedOrigin(written)).toEqual({ origin });
  });

  it.each([
    ['bank.example', /is not an origin such as/],
    ['ftp://bank.example', /is not an http or https origin/],
    ['https://user:pw@bank.example', /carries credentials/],
    ['https://@bank.example', /carries credentials/],
    ['https://bank.example/?a=1', /has a query or fragment/],
    ['https://bank.example#top', /has a query or fragment/],
    ['https://bank.example/api', /has a path/],
    ['https://bank.example//', /has a path/],
    ['https://bank.example/.', /has a path/],
    ['https://bank.example\\', /has a path/],
    [' https://bank.example', /contains white space/],
    ['https://bank .example', /contains white space/],
  ])('refuses %s', (written, problem) => {
    const result = normalisedOrigin(written);
    expect('problem' in result && result.problem).toMatch(problem);
  });

  it('takes one origin or a list, at the top level', () => {
    const one = compile(policyText({ head: ['version: 1', 'realm: r', 'public_origin: https://a.example'] }));
    const list = compile(
      policyText({
        head: ['version: 1', 'realm: r', 'public_origin: [https://a.example, http://localhost:8000]'],
      }),
    );

    expect(only(one).publicOrigins).toEqual(['https://a.example']);
    expect(only(list).publicOrigins).toEqual(['https://a.example', 'http://localhost:8000']);
  });

  it('reports an entry that is not an origin where it is written', () => {
    const error = policyErrorFrom(() =>
      compile(
        policyText({
          head: ['version: 1', 'realm: r', 'public_origin: [https://a.example, https://a.example/api]'],
        }),
      ),
    );

    expectSingleProblem(error, 'ERR_POLICY_INVALID', {
      line: 3,
      path: 'public_origin[1]',
      message:
        '"https://a.example/api" has a path: an origin is scheme, host and port only (e.g. https://bank.example)',
    });
  });

  it('refuses the same origin twice, once normalised', () => {
    const error = policyErrorFrom(() =>
      compile(
        policyText({
          head: ['version: 1', 'realm: r', 'public_origin: [https://a.example, HTTPS://A.example:443]'],
        }),
      ),
    );

    expectSingleProblem(error, 'ERR_POLICY_INVALID', {
      line: 3,
      path: 'public_origin[1]',
      message:
        '"HTTPS://A.example:443" is the same origin as "https://a.example" (https://a.example): list it once',
    });
  });

  it.each([
    ['[]', 'must be an origin (https://bank.example) or a non-empty list of origins'],
    ['42', 'must be an origin (https://bank.example) or a non-empty list of origins'],
    [
      '[https://a.example, https://a.example]',
      'must be an origin (https://bank.example) or a non-empty list of origins',
    ],
  ])('refuses public_origin: %s', (written, message) => {
    const error = policyErrorFrom(() =>
      compile(policyText({ head: ['version: 1', 'realm: r', `public_origin: ${written}`] })),
    );

    expect(error.problems).toContainEqual(
      expect.objectContaining({ line: 3, path: 'public_origin', message }),
    );
  });
});

describe('compilePolicy: dpop', () => {
  it('applies the defaults of docs/sender-constraints.md', () => {
    const policy = compile(policyText());

    expect(only(policy).dpop).toEqual({
      algorithms: [
        'ES256',
        'ES384',
        'ES512',
        'PS256',
        'PS384',
        'PS512',
        'RS256',
        'RS384',
        'RS512',
        'EdDSA',
        'Ed25519',
      ],
      maxAgeSeconds: 60,
      clockToleranceSeconds: 10,
      nonce: 'off',
      nonceLifetimeSeconds: 60,
    });
    // The replay store: 100,000 entries, of which one key may hold 2% and one user's keys 5%.
    expect(policy.dpopReplayLimits).toEqual({ total: 100_000, perKey: 2000, perSubject: 5000 });
    expect(POLICY_DEFAULTS).toMatchObject({
      dpopMaxAgeSeconds: 60,
      dpopClockToleranceSeconds: 10,
      dpopNonceLifetimeSeconds: 60,
      dpopReplayCacheSize: 100_000,
    });
  });

  it('takes every key at the top level', () => {
    const policy = compile(
      policyText({
        head: [
          'version: 1',
          'realm: r',
          'dpop:',
          '  algorithms: [ES256, EdDSA, Ed25519]',
          '  max_age: 2m',
          '  clock_tolerance: 0',
          '  nonce: required',
          '  nonce_lifetime: 10m',
          '  replay_cache_size: 1000',
        ],
      }),
    );

    expect(only(policy).dpop).toEqual({
      algorithms: ['ES256', 'EdDSA', 'Ed25519'],
      maxAgeSeconds: 120,
      clockToleranceSeconds: 0,
      nonce: 'required',
      nonceLifetimeSeconds: 600,
    });
    expect(policy.dpopReplayLimits).toEqual({ total: 1000, perKey: 20, perSubject: 50 });
  });

  it('takes the shares of the replay store one key and one user may hold, each at most its size', () => {
    const head = (...lines: string[]) => ['version: 1', 'realm: r', 'dpop:', ...lines.map((l) => `  ${l}`)];
    const shares = compile(
      policyText({
        head: head('replay_cache_size: 5000', 'replay_cache_per_key: 10', 'replay_cache_per_subject: 40'),
      }),
    );
    expect(shares.dpopReplayLimits).toEqual({ total: 5000, perKey: 10, perSubject: 40 });

    expect(() =>
      compile(policyText({ head: head('replay_cache_size: 1000', 'replay_cache_per_key: 1001') })),
    ).toThrow(/dpop\.replay_cache_per_key: must be at most dpop\.replay_cache_size \(1000\)/);
    expect(() => compile(policyText({ head: head('replay_cache_per_subject: 0') }))).toThrow(
      /dpop\.replay_cache_per_subject/,
    );
  });

  it('keeps proofs in memory unless dpop.replay_store names Redis, with its defaults', () => {
    const head = (...lines: string[]) => ['version: 1', 'realm: r', 'dpop:', ...lines.map((l) => `  ${l}`)];
    expect(compile(policyText({ head: head('replay_cache_size: 5000') })).dpopReplayStore).toEqual({
      type: 'memory',
    });
    expect(compile(policyText({ head: head('replay_store: { type: memory }') })).dpopReplayStore).toEqual({
      type: 'memory',
    });
    expect(
      compile(policyText({ head: head('replay_store: { type: redis, url: "redis://redis.authz:6379/2" }') }))
        .dpopReplayStore,
    ).toEqual({
      type: 'redis',
      url: { given: 'redis://redis.authz:6379/2' },
      caFile: undefined,
      keyPrefix: 'authz:dpop:',
      timeoutMs: 200,
      fallback: 'none',
    });
  });

  it('resolves url_file and ca_file against the policy file, and takes every key redis has', () => {
    const policy = compilePolicy(
      policyText({
        head: [
          'version: 1',
          'realm: r',
          'dpop:',
          '  replay_store:',
          '    type: redis',
          '    url_file: secrets/redis-url',
          '    ca_file: /etc/redis-ca.pem',
          '    key_prefix: "team-a:"',
          '    timeout: 50ms',
          '    fallback: local',
        ],
      }),
      '/etc/authz/policy.yaml',
    );
    expect(policy.dpopReplayStore).toEqual({
      type: 'redis',
      url: { file: '/etc/authz/secrets/redis-url' },
      caFile: '/etc/redis-ca.pem',
      keyPrefix: 'team-a:',
      timeoutMs: 50,
      fallback: 'local',
    });
  });

  it.each([
    ['type: redis', 'dpop.replay_store', /exactly one of url and url_file/],
    ['type: redis, url: "redis://h", url_file: f', 'dpop.replay_store', /exactly one of url and url_file/],
    [
      'type: redis, url: "redis://user:pw@h:6379"',
      'dpop.replay_store.url',
      /must not carry credentials: .*url_file/,
    ],
    ['type: redis, url: "https://h"', 'dpop.replay_store.url', /redis:\/\/ or rediss:\/\//],
    ['type: redis, url: "redis://h/16"', 'dpop.replay_store.url', /database number from 0 to 15/],
    ['type: redis, url: "redis://h?family=6"', 'dpop.replay_store.url', /query or fragment/],
    ['type: redis, url: "redis://h", timeout: 5ms', 'dpop.replay_store.timeout', /from 10ms to 900ms/],
    ['type: redis, url: "redis://h", timeout: 1s', 'dpop.replay_store.timeout', /from 10ms to 900ms/],
    ['type: redis, url: "redis://h", key_prefix: "a b"', 'dpop.replay_store.key_prefix', /printable ASCII/],
    ['type: redis, url: "redis://h", fallback: memory', 'dpop.replay_store.fallback', /none, local/],
    ['type: memory, url: "redis://h"', 'dpop.replay_store.url', /only for type: redis/],
    ['type: redis, url: "redis://h", ca_file: ca.pem', 'dpop.replay_store.ca_file', /only for a rediss:\/\//],
    ['type: valkey', 'dpop.replay_store.type', /memory, redis/],
    ['url: "redis://h"', 'dpop.replay_store', /missing required key "type"/],
  ])('refuses dpop.replay_store { %s }', (written, where, message) => {
    const error = policyErrorFrom(() =>
      compile(policyText({ head: ['version: 1', 'realm: r', `dpop: { replay_store: { ${written} } }`] })),
    );
    expect(error.problems).toContainEqual(
      expect.objectContaining({ line: 3, path: where, message: expect.stringMatching(message) }),
    );
  });

  it("lets a service's keys override the top level's one by one", () => {
    const policy = compile(
      [
        'version: 1',
        'realm: r',
        'dpop: { algorithms: [ES256], max_age: 30s }',
        'issuers:',
        ...TWO_ISSUERS.slice(0, 4),
        'services:',
        '  - { name: a, dpop: { max_age: 10s, nonce: required }, routes: [] }',
        '  - { name: b, routes: [] }',
        '',
      ].join('\n'),
    );

    expect(service(policy, 'a').dpop).toEqual({
      algorithms: ['ES256'],
      maxAgeSeconds: 10,
      clockToleranceSeconds: 10,
      nonce: 'required',
      nonceLifetimeSeconds: 60,
    });
    expect(service(policy, 'b').dpop).toMatchObject({
      algorithms: ['ES256'],
      maxAgeSeconds: 30,
      nonce: 'off',
    });
  });

  it.each([
    { key: 'max_age', value: '0', message: 'must be a duration from 1s to 10m (whole seconds, or 30s / 5m)' },
    {
      key: 'max_age',
      value: '11m',
      message: 'must be a duration from 1s to 10m (whole seconds, or 30s / 5m)',
    },
    {
      key: 'clock_tolerance',
      value: '61',
      message: 'must be a duration from 0s to 1m (whole seconds, or 30s / 5m)',
    },
    {
      key: 'nonce_lifetime',
      value: '9s',
      message: 'must be a duration from 10s to 10m (whole seconds, or 30s / 5m)',
    },
    { key: 'nonce', value: 'sometimes', message: 'must be one of: off, required' },
  ])('refuses dpop.$key: $value', ({ key, value, message }) => {
    const error = policyErrorFrom(() =>
      compile(policyText({ head: ['version: 1', 'realm: r', 'dpop:', `  ${key}: ${value}`] })),
    );

    expectSingleProblem(error, 'ERR_POLICY_INVALID', { line: 4, path: `dpop.${key}`, message });
  });

  it.each([['[none]'], ['[HS256]'], ['[ES256, ES256]'], ['[]']])(
    'refuses dpop.algorithms %s: asymmetric algorithms only, each once',
    (written) => {
      const error = policyErrorFrom(() =>
        compile(policyText({ head: ['version: 1', 'realm: r', `dpop: { algorithms: ${written} }`] })),
      );

      expect(error.code).toBe('ERR_POLICY_INVALID');
      expect(error.problems.every((p) => p.line === 3 && p.path.startsWith('dpop.algorithms'))).toBe(true);
    },
  );

  it.each([['999'], ['10000001'], ['1.5']])('refuses dpop.replay_cache_size %s', (written) => {
    const error = policyErrorFrom(() =>
      compile(policyText({ head: ['version: 1', 'realm: r', `dpop: { replay_cache_size: ${written} }`] })),
    );

    expect(error.problems).toContainEqual(
      expect.objectContaining({ line: 3, path: 'dpop.replay_cache_size' }),
    );
  });

  it.each([
    ['replay_cache_size', '5000'],
    ['replay_store', '{ type: memory }'],
  ])('refuses %s on a service: the replay store is per process', (key, value) => {
    const error = policyErrorFrom(() =>
      compile(
        [
          'version: 1',
          'realm: r',
          'issuers:',
          ...TWO_ISSUERS.slice(0, 4),
          'services:',
          `  - { name: a, dpop: { ${key}: ${value} }, routes: [] }`, // 9
          '',
        ].join('\n'),
      ),
    );

    expectSingleProblem(error, 'ERR_POLICY_INVALID', {
      line: 9,
      path: `services[0].dpop.${key}`,
      message: `${key} is per process, for every service: set it in the top-level dpop`,
    });
  });
});
