import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { compilePolicy } from '../../../src/policy/compile-policy.js';
import { PolicyError } from '../../../src/policy/policy-error.js';
import {
  FINDING_CODES,
  findingFails,
  policyFindings,
  reloadBlockingFindings,
  ROUTE_FINDING_CODES,
  type PolicyFinding,
} from '../../../src/policy/policy-findings.js';
import policySchema from '../../../src/policy/policy.schema.json' with { type: 'json' };
import { YamlLocations } from '../../../src/policy/yaml-locations.js';
import { demoPolicyText } from '../../kit/inline-policy.js';
import { repoFile } from '../../kit/capture-io.js';

function findingsOf(text: string): PolicyFinding[] {
  return policyFindings(compilePolicy(text, 'policy.yaml'), new YamlLocations(text));
}

/** `path code level` of each finding of a policy with the demo issuer (require_typ set) and these routes. */
function routeFindings(...routes: string[]): string[] {
  const text = demoPolicyText(routes, { issuerSettings: { require_typ: 'at+jwt' } });
  return findingsOf(text).map((f) => `${f.path} ${f.code} ${f.level}`);
}

const SERVICES = (mode: string, serviceMode: string) =>
  [
    'version: 1',
    'realm: bank-api',
    mode,
    'issuers:',
    '  - { issuer: https://idp.example/, audiences: [api], jwks_uri: https://idp.example/jwks, algorithms: [RS256], require_typ: at+jwt }',
    'services:',
    '  - name: bank',
    '    hosts: [bank.example]',
    serviceMode,
    '    routes:',
    '      - { methods: [GET], path: /balance, scopes: [view:balance] }',
    '  - name: shop',
    '    hosts: [shop.example]',
    '    routes:',
    "      - { methods: [GET], path: '/{any}/**', public: true }",
    '',
  ]
    .filter((line) => line !== '')
    .join('\n') + '\n';

describe('policyFindings: risks', () => {
  it.each([
    // [route, expected findings]
    [
      "{ path: '/**', public: true }",
      ['routes[0] public_catch_all error', 'routes[0] public_any_method warning'],
    ],
    ["{ methods: [GET], path: '/{tenant}/**', public: true }", ['routes[0] public_catch_all error']],
    ["{ methods: [GET], path: '/{a}/{b}/**', public: true }", ['routes[0] public_catch_all error']],
    ['{ path: /healthz, public: true }', ['routes[0] public_any_method warning']],
    ['{ methods: [GET, POST], path: /signup, public: true }', ['routes[0] public_write_method warning']],
    ['{ methods: [DELETE], path: /files, scopes: [] }', ['routes[0] scopes_empty_on_write warning']],
    ['{ path: /files, scopes: [] }', ['routes[0] scopes_empty_on_write warning']],
    [
      '{ methods: [POST], path: /transfer, scopes: [transfer:funds], mode: report-only }',
      ['routes[0] report_only_write_route warning'],
    ],
  ])('%s', (route, expected) => {
    expect(routeFindings(route)).toEqual(expected);
  });

  it.each([
    ["{ methods: [GET, HEAD], path: '/app/**', public: true }"], // a public subtree, read only
    ["{ methods: [GET], path: '/{id}', public: true }"], // one segment only: not every path
    ['{ methods: [GET], path: /files, scopes: [] }'], // any token, but only to read
    ['{ methods: [GET], path: /statements, scopes: [view:statements], mode: report-only }'],
    ['{ methods: [POST], path: /transfer, scopes: [transfer:funds] }'],
  ])('no finding for %s', (route) => {
    expect(routeFindings(route)).toEqual([]);
  });

  it('a route that never matches lets nothing through: only its shadowing is reported', () => {
    expect(
      routeFindings('{ path: /files/**, scopes: [view:files] }', "{ path: '/files/{name}', public: true }"),
    ).toEqual(['routes[1] route_shadowed warning']);
  });

  it('says what a public catch-all lets through, and how to fix it', () => {
    const [catchAll] = findingsOf(
      demoPolicyText(["{ methods: [GET], path: '/**', public: true }"], {
        issuerSettings: { require_typ: 'at+jwt' },
      }),
    );
    expect(catchAll).toEqual({
      code: 'public_catch_all',
      level: 'error',
      line: 10,
      column: 5,
      path: 'routes[0]',
      message:
        'public route GET /** matches every path, so requests to every endpoint of service "default", including endpoints added later, pass without a token',
      fix: FINDING_CODES.public_catch_all.fix,
    });
  });

  it('report-only on the whole policy is an error at the top-level mode', () => {
    const text = demoPolicyText(['{ methods: [GET], path: /balance, scopes: [view:balance] }'], {
      issuerSettings: { require_typ: 'at+jwt' },
    }).replace('realm: bank-api', 'realm: bank-api\nmode: report-only');
    expect(findingsOf(text).map((f) => `${f.path} ${f.code} ${f.level} ${f.line}`)).toEqual([
      'mode report_only_policy error 3',
    ]);
  });

  it('with services: report-only written on a service, or inherited by some, is reported where it is written', () => {
    expect(findingsOf(SERVICES('', '    mode: report-only')).map((f) => `${f.path} ${f.code}`)).toEqual([
      'services[0].mode report_only_service',
      'services[1].routes[0] public_catch_all',
    ]);
    const inherited = findingsOf(SERVICES('mode: report-only', '    mode: enforce'));
    expect(inherited.map((f) => `${f.path} ${f.code}`)).toEqual([
      'mode report_only_policy',
      'services[1].routes[0] public_catch_all',
    ]);
    expect(inherited[0]?.message).toMatch(
      /^mode: report-only applies to service "shop", so every request is allowed/,
    );
    expect(inherited[1]?.message).toMatch(/every endpoint of service "shop"/);
  });

  it('an issuer without require_typ, and a max_token_lifetime above 7 days, are notices', () => {
    const text = demoPolicyText(['{ methods: [GET], path: /balance, scopes: [view:balance] }'], {
      issuerSettings: { max_token_lifetime: '8d' },
    });
    expect(findingsOf(text).map((f) => `${f.path} ${f.code} ${f.level}`)).toEqual([
      'issuers[0] issuer_typ_unchecked notice',
      'issuers[0].max_token_lifetime token_lifetime_long notice',
    ]);
    const week = demoPolicyText([], { issuerSettings: { max_token_lifetime: '7d', require_typ: 'at+jwt' } });
    expect(findingsOf(week)).toEqual([]);
  });
});

describe('policyFindings: a route shadowed by routes that demand less', () => {
  /** `path code level` of the shadowing findings only. */
  const shadowing = (...routes: string[]) =>
    routeFindings(...routes).filter((f) => / route_(shadowed|shadowed_weaker|duplicate) /.test(f));

  it('an admin route after a public route that takes its requests is an error, naming both and what passes', () => {
    const text = demoPolicyText(
      [
        "{ methods: [GET, HEAD], path: '/app/**', public: true }",
        '{ methods: [GET], path: /app/admin, scopes: [admin] }',
      ],
      { issuerSettings: { require_typ: 'at+jwt' } },
    );
    expect(findingsOf(text)).toEqual([
      {
        code: 'route_shadowed_weaker',
        level: 'error',
        line: 11,
        column: 5,
        path: 'routes[1]',
        message:
          'never matches: routes[0] (line 10, GET,HEAD /app/**) matches every request it could; routes[0] is public, so those requests pass without a token',
        fix: FINDING_CODES.route_shadowed_weaker.fix,
      },
    ]);
    expect(FINDING_CODES.route_shadowed_weaker).toMatchObject({ level: 'error', route: true });
  });

  it.each([
    // [earlier route, shadowed route, what the message says the earlier one lets through]
    [
      '{ path: /files/**, scopes: [view:files] }',
      '{ methods: [DELETE], path: /files/x, scopes: [view:files, admin] }',
      'does not require scope "admin"',
    ],
    [
      '{ path: /files/**, scopes: [] }',
      '{ methods: [GET], path: /files/x, scopes: [a, b] }',
      'does not require scopes "a" and "b"',
    ],
    [
      '{ methods: [POST], path: /pay, scopes: [pay] }',
      '{ methods: [POST], path: /pay, scopes: [pay], authentication: { acr_values: [urn:mfa] } }',
      'does not check acr (this route: acr_values "urn:mfa")',
    ],
    [
      '{ methods: [POST], path: /pay, scopes: [pay], authentication: { acr_values: [urn:mfa, urn:pwd] } }',
      '{ methods: [POST], path: /pay, scopes: [pay], authentication: { acr_values: [urn:mfa] } }',
      'also accepts acr "urn:pwd"',
    ],
    [
      '{ methods: [POST], path: /pay, scopes: [pay], authentication: { amr: [pwd] } }',
      '{ methods: [POST], path: /pay, scopes: [pay], authentication: { amr: [pwd, otp] } }',
      'does not require amr "otp"',
    ],
    [
      '{ methods: [POST], path: /pay, scopes: [pay] }',
      '{ methods: [POST], path: /pay, scopes: [pay], authentication: { max_age: 5m } }',
      'sets no max_age (this route: 5m)',
    ],
    [
      '{ methods: [POST], path: /pay, scopes: [pay], authentication: { max_age: 1h } }',
      '{ methods: [POST], path: /pay, scopes: [pay], authentication: { max_age: 5m } }',
      'accepts a login up to 1h old (this route: max_age 5m)',
    ],
    [
      "{ methods: [GET], path: '/a/{x}', scopes: [a], mode: report-only }",
      '{ methods: [GET], path: /a/b, scopes: [a] }',
      'is report-only, so those requests pass whatever the token (a denial is only logged as would_deny)',
    ],
  ])('after %s: %s is an error (%s)', (earlier, shadowed, what) => {
    const findings = findingsOf(
      demoPolicyText([earlier, shadowed], { issuerSettings: { require_typ: 'at+jwt' } }),
    ).filter((f) => f.path === 'routes[1]');
    expect(findings.map((f) => `${f.code} ${f.level}`)).toEqual(['route_shadowed_weaker error']);
    expect(findings[0]?.message).toMatch(new RegExp(`; routes\\[0\\] ${escapeRegExp(what)}$`));
  });

  it.each([
    // An earlier route that demands as much or more: the shadowed route is only a mistake.
    [
      '{ path: /files/**, scopes: [view:files, admin] }',
      '{ methods: [DELETE], path: /files/x, scopes: [admin] }',
    ],
    [
      "{ methods: [POST], path: '/pay/**', scopes: [pay], authentication: { acr_values: [urn:mfa], amr: [pwd, otp], max_age: 1m } }",
      '{ methods: [POST], path: /pay, scopes: [pay], authentication: { acr_values: [urn:mfa, urn:pwd], amr: [otp], max_age: 5m } }',
    ],
    [
      "{ methods: [GET], path: '/a/{x}', scopes: [a] }",
      '{ methods: [GET], path: /a/b, scopes: [a], mode: report-only }',
    ],
    [
      "{ methods: [GET], path: '/a/{x}', scopes: [a], mode: report-only }",
      '{ methods: [GET], path: /a/b, scopes: [a], mode: report-only }',
    ],
    ['{ path: /files/**, scopes: [view:files] }', '{ methods: [GET], path: /files/x, public: true }'],
    ['{ path: /files/**, public: true }', '{ methods: [GET], path: /files/x, public: true }'],
  ])('after %s: %s stays a warning', (earlier, shadowed) => {
    expect(shadowing(earlier, shadowed)).toEqual(['routes[1] route_shadowed warning']);
  });

  it('a duplicate that demands more than the route it duplicates is an error too; an equal one a warning', () => {
    expect(
      shadowing(
        "{ methods: [GET], path: '/a/{x}', scopes: [a] }",
        "{ methods: [GET], path: '/a/{y}', scopes: [b] }",
      ),
    ).toEqual(['routes[1] route_shadowed_weaker error']);
    expect(
      shadowing(
        "{ methods: [GET], path: '/a/{x}', scopes: [a] }",
        "{ methods: [GET], path: '/a/{y}', scopes: [a] }",
      ),
    ).toEqual(['routes[1] route_duplicate warning']);
  });

  it('judges the routes that really take the requests: a route for some methods before one for every method', () => {
    const routes = [
      "{ methods: [GET, HEAD], path: '/a/**', public: true }",
      "{ path: '/a/**', scopes: [admin] }",
      '{ methods: [GET], path: /a/b, scopes: [admin] }',
    ];
    const [finding] = findingsOf(
      demoPolicyText(routes, { issuerSettings: { require_typ: 'at+jwt' } }),
    ).filter((f) => f.path === 'routes[2]');
    expect(finding?.code).toBe('route_shadowed_weaker');
    expect(finding?.message).toBe(
      'never matches: routes[0] (line 10, GET,HEAD /a/**) matches every request it could; routes[0] is public, so those requests pass without a token',
    );
    // A route for every method: GET and HEAD go to the public route, the other methods to the scoped one.
    const everyMethod = findingsOf(
      demoPolicyText([...routes.slice(0, 2), "{ path: '/a/c', scopes: [admin] }"], {
        issuerSettings: { require_typ: 'at+jwt' },
      }),
    ).find((f) => f.path === 'routes[2]');
    expect(everyMethod?.message).toBe(
      'never matches: routes[0] (line 10, GET,HEAD /a/**) and routes[1] (line 11, * /a/**) match every request it could; routes[0] is public, so those requests pass without a token',
    );
  });

  it("names the routes taking a duplicate's requests that it does not name already", () => {
    const [finding] = findingsOf(
      demoPolicyText(
        [
          "{ methods: [GET], path: '/a/**', public: true }",
          "{ methods: [GET], path: '/a/{x}', scopes: [a] }",
          "{ methods: [GET], path: '/a/{y}', scopes: [a] }",
        ],
        { issuerSettings: { require_typ: 'at+jwt' } },
      ),
    ).filter((f) => f.path === 'routes[2]');
    expect(finding?.message).toBe(
      'duplicates routes[1] (line 11, GET /a/{x}): same methods and path, so it never matches; routes[0] (line 10, GET /a/**) is public, so those requests pass without a token',
    );
  });

  it('a route that requires a binding, taken by one that lets tokens with no binding pass', () => {
    const text = [
      'version: 1',
      'realm: bank-api',
      'public_origin: https://bank.example',
      'issuers:',
      '  - { issuer: https://idp.example/, audiences: [api], jwks_uri: https://idp.example/jwks, algorithms: [RS256], require_typ: at+jwt }',
      'routes:',
      "  - { methods: [POST], path: '/pay/**', scopes: [pay], sender_constraint: { dpop: allowed } }",
      '  - { methods: [POST], path: /pay/now, scopes: [pay], sender_constraint: { dpop: required } }',
      "  - { methods: [POST], path: '/send/**', scopes: [pay], sender_constraint: { mtls: required } }",
      '  - { methods: [POST], path: /send/now, scopes: [pay], sender_constraint: { dpop: required } }',
      '',
    ].join('\n');
    const findings = findingsOf(text).filter((f) => f.code.startsWith('route_'));
    expect(findings.map((f) => `${f.path} ${f.code}`)).toEqual([
      'routes[1] route_shadowed_weaker',
      'routes[3] route_shadowed', // another binding required, not none
    ]);
    expect(findings[0]?.message).toMatch(
      /; routes\[0\] lets tokens of issuer "https:\/\/idp\.example\/" with no binding pass \(this route requires them bound: \{ dpop: required, mtls: off \}\)$/,
    );
  });

  it('is accepted on the shadowed route with accept_risks, and blocks a reload that brings it', () => {
    const routes = [
      "{ methods: [GET, HEAD], path: '/app/**', public: true }",
      '{ methods: [GET], path: /app/admin, scopes: [admin] }',
    ];
    const risky = demoPolicyText(routes, { issuerSettings: { require_typ: 'at+jwt' } });
    const accepted = risky.replace(
      'scopes: [admin] }',
      "scopes: [admin], accept_risks: [{ code: route_shadowed_weaker, reason: 'the admin page is a static shell; its API is elsewhere' }] }",
    );
    const [finding] = findingsOf(accepted);
    expect(finding).toMatchObject({
      code: 'route_shadowed_weaker',
      accepted: { reason: 'the admin page is a static shell; its API is elsewhere' },
    });
    expect(findingFails(finding!, true)).toBe(false);

    const inForce = demoPolicyText(routes.slice(0, 1), { issuerSettings: { require_typ: 'at+jwt' } });
    expect(reloadBlockingFindings(findingsOf(inForce), findingsOf(risky)).map((f) => f.code)).toEqual([
      'route_shadowed_weaker',
    ]);
    expect(reloadBlockingFindings(findingsOf(inForce), findingsOf(accepted))).toEqual([]);
  });
});

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

describe('policyFindings: accept_risks', () => {
  const accepted = (acceptance: string) =>
    demoPolicyText(
      [
        '{ methods: [GET], path: /balance, scopes: [view:balance] }',
        `{ path: '/**', public: true, accept_risks: [${acceptance}] }`,
      ],
      { issuerSettings: { require_typ: 'at+jwt' } },
    );

  it('an accepted finding is still shown, with the reason, and no longer fails', () => {
    const findings = findingsOf(
      accepted("{ code: public_catch_all, reason: 'a static site behind a CDN, no API' }"),
    );
    expect(findings.map((f) => `${f.code} ${f.accepted?.reason ?? '-'}`)).toEqual([
      'public_catch_all a static site behind a CDN, no API',
      'public_any_method -',
    ]);
    expect(findings.map((f) => findingFails(f))).toEqual([false, false]);
    expect(findings.map((f) => findingFails(f, true))).toEqual([false, true]);
  });

  it('an acceptance that matches no finding is a notice', () => {
    const findings = findingsOf(
      accepted(
        "{ code: public_catch_all, reason: 'static site only' }, { code: route_shadowed, reason: 'kept for later' }",
      ),
    );
    const unused = findings.find((f) => f.code === 'risk_acceptance_unused');
    expect(unused).toMatchObject({ level: 'notice', path: 'routes[1].accept_risks[1]', line: 11 });
    expect(unused?.message).toMatch(/^accept_risks names route_shadowed, which this route does not have/);
  });

  it('accepts only on its own route', () => {
    const text = demoPolicyText(
      [
        "{ path: '/**', public: true }",
        "{ methods: [GET], path: /x, scopes: [a], accept_risks: [{ code: public_catch_all, reason: 'not this route' }] }",
      ],
      { issuerSettings: { require_typ: 'at+jwt' } },
    );
    const findings = findingsOf(text);
    expect(findings.find((f) => f.code === 'public_catch_all')?.accepted).toBeUndefined();
    expect(findings.map((f) => f.code)).toContain('risk_acceptance_unused');
  });

  it.each([
    ["{ code: public_catch_all, reason: 'too short' }", 'routes[0].accept_risks[0].reason'],
    ["{ code: public_catch_all, reason: '          x' }", 'routes[0].accept_risks[0].reason'],
    ["{ code: scope_unused, reason: 'not a route-level code' }", 'routes[0].accept_risks[0].code'],
    ['{ code: public_catch_all }', 'routes[0].accept_risks[0]'],
    [
      "{ code: public_catch_all, reason: 'a static site only' }, { code: public_catch_all, reason: 'said twice here' }",
      'routes[0].accept_risks[1].code',
    ],
  ])('refuses accept_risks %s', (acceptance, path) => {
    const text = demoPolicyText([`{ path: '/**', public: true, accept_risks: [${acceptance}] }`]);
    try {
      compilePolicy(text, 'policy.yaml');
      expect.fail('compiled');
    } catch (error) {
      expect(error).toBeInstanceOf(PolicyError);
      expect((error as PolicyError).problems.map((p) => p.path)).toContain(path);
    }
  });

  it('the schema lets accept_risks name exactly the route-level codes', () => {
    const route = (policySchema as { $defs: { route: { properties: Record<string, unknown> } } }).$defs.route;
    const acceptRisks = route.properties['accept_risks'] as {
      items: { properties: { code: { enum: string[] } } };
    };
    expect([...acceptRisks.items.properties.code.enum].sort()).toEqual([...ROUTE_FINDING_CODES].sort());
  });
});

describe('reload guard', () => {
  const catchAll = demoPolicyText(["{ path: '/**', public: true }"], {
    issuerSettings: { require_typ: 'at+jwt' },
  });
  const clean = demoPolicyText(['{ methods: [GET], path: /healthz, public: true }'], {
    issuerSettings: { require_typ: 'at+jwt' },
  });

  it('reload_guard compiles; default error', () => {
    expect(compilePolicy(clean, 'p.yaml').reloadGuard).toBe('error');
    expect(
      compilePolicy(clean.replace('version: 1', 'version: 1\nreload_guard: off'), 'p.yaml').reloadGuard,
    ).toBe('off');
    expect(() =>
      compilePolicy(clean.replace('version: 1', 'version: 1\nreload_guard: warn'), 'p.yaml'),
    ).toThrow(PolicyError);
  });

  it('a reload that brings a new error-level finding is blocked; one already in force is not', () => {
    expect(reloadBlockingFindings(findingsOf(clean), findingsOf(catchAll)).map((f) => f.code)).toEqual([
      'public_catch_all',
    ]);
    expect(reloadBlockingFindings(findingsOf(catchAll), findingsOf(catchAll))).toEqual([]);
    expect(reloadBlockingFindings(findingsOf(catchAll), findingsOf(clean))).toEqual([]);
  });
});

describe('the repository policies', () => {
  it.each(['policy.yaml', 'policy.gateway.yaml', 'deploy/policy/policy.yaml'])(
    '%s declares known_scopes: exactly the scopes its routes require',
    (file) => {
      const text = readFileSync(repoFile(file), 'utf8');
      const policy = compilePolicy(text, file);
      const required = new Set(
        policy.services.flatMap((service) =>
          service.routes.flatMap((route) => (route.access.kind === 'protected' ? route.access.scopes : [])),
        ),
      );
      expect([...(policy.knownScopes ?? [])].sort()).toEqual([...required].sort());
      expect(findingsOf(text).filter((f) => f.code.startsWith('scope'))).toEqual([]);
    },
  );

  it('policy.yaml has no error-level finding; with a public catch-all appended it has one', () => {
    const text = readFileSync(repoFile('policy.yaml'), 'utf8');
    expect(findingsOf(text).filter((f) => f.level === 'error')).toEqual([]);
    const risky = findingsOf(`${text}  - { path: '/**', public: true }\n`).filter((f) => f.level === 'error');
    expect(risky.map((f) => `${f.path} ${f.code}`)).toEqual(['routes[5] public_catch_all']);
  });
});

describe('docs/policy-checks.md', () => {
  const doc = readFileSync(repoFile('docs/policy-checks.md'), 'utf8');

  it('lists every code of the registry in its table, with its level and whether a route may accept it', () => {
    const rows = [...doc.matchAll(/^\| `([a-z_]+)` +\| (error|warning|notice) +\| (yes|no)[^|]*\|$/gm)].map(
      ([, code, level, route]) => `${code} ${level} ${route === 'yes'}`,
    );
    const registry = Object.entries(FINDING_CODES).map(
      ([code, entry]) => `${code} ${entry.level} ${entry.route}`,
    );
    expect([...rows].sort()).toEqual([...registry].sort());
  });

  it('has a section for every code, headed with its level', () => {
    const sections = [...doc.matchAll(/^### `([a-z_]+)` \((error|warning|notice)\)$/gm)].map(
      ([, code, level]) => `${code} ${level}`,
    );
    const registry = Object.entries(FINDING_CODES).map(([code, entry]) => `${code} ${entry.level}`);
    expect([...sections].sort()).toEqual([...registry].sort());
  });
});

describe('policyFindings: sender constraints', () => {
  const ISSUER = (constraint: string) =>
    `  - { issuer: https://idp.example/, audiences: [api], jwks_uri: https://idp.example/jwks, algorithms: [RS256], require_typ: at+jwt${constraint} }`;
  const implicit = (top: string[], issuerConstraint: string, ...routes: string[]) =>
    [
      'version: 1',
      'realm: bank-api',
      'public_origin: https://bank.example',
      ...top,
      'issuers:',
      ISSUER(issuerConstraint),
      'routes:',
      ...routes.map((route) => `  - ${route}`),
      '',
    ].join('\n');
  const CONSTRAINT_CODES = [
    'issuer_sender_constraint_weakened',
    'sender_constraint_weakened',
    'public_origin_cleartext',
  ];
  const found = (text: string) =>
    findingsOf(text)
      .filter((f) => CONSTRAINT_CODES.includes(f.code))
      .map((f) => `${f.path} ${f.code} ${f.level}`);

  it('is an error when a route lets unbound tokens of an issuer requiring DPoP through', () => {
    const text = implicit(
      [],
      ', sender_constraint: { dpop: required }',
      '{ methods: [GET], path: /balance, scopes: [view:balance] }',
      '{ methods: [POST], path: /transfer, scopes: [transfer:funds], sender_constraint: { dpop: allowed } }',
      '{ methods: [GET], path: /legacy, scopes: [view:balance], sender_constraint: { dpop: off } }',
    );
    const findings = findingsOf(text).filter((f) => f.code === 'issuer_sender_constraint_weakened');

    expect(findings.map((f) => `${f.path} ${f.level} line ${f.line}`)).toEqual([
      'routes[1].sender_constraint error line 8',
      'routes[2].sender_constraint error line 9',
    ]);
    expect(findings[0]?.message).toBe(
      'route POST /transfer sets sender_constraint { dpop: allowed }, so tokens of issuer "https://idp.example/" ' +
        'with no binding pass on it, though the issuer requires them bound ({ dpop: required })',
    );
    expect(found(text)).not.toContain(expect.stringContaining(' sender_constraint_weakened '));
  });

  it('is a warning when a route drops a binding only its service (or the top level) requires', () => {
    const text = implicit(
      ['sender_constraint: { dpop: required }'],
      '',
      '{ methods: [GET], path: /balance, scopes: [view:balance] }',
      '{ methods: [GET], path: /legacy, scopes: [view:balance], sender_constraint: { dpop: allowed } }',
    );
    const [finding] = findingsOf(text).filter((f) => CONSTRAINT_CODES.includes(f.code));

    expect(found(text)).toEqual(['routes[1].sender_constraint sender_constraint_weakened warning']);
    expect(finding?.message).toBe(
      'route GET /legacy sets sender_constraint { dpop: allowed }, so tokens of issuer "https://idp.example/" ' +
        'with no binding pass on it, though its service otherwise requires them bound ({ dpop: required, mtls: off })',
    );
  });

  it('is an error when both the issuer and the service require the binding the route drops', () => {
    const text = implicit(
      ['sender_constraint: { mtls: required }'],
      ', sender_constraint: { dpop: required }',
      '{ methods: [GET], path: /legacy, scopes: [a], sender_constraint: { dpop: allowed, mtls: allowed } }',
    );

    expect(found(text)).toEqual(['routes[0].sender_constraint issuer_sender_constraint_weakened error']);
  });

  it('says nothing when a route only turns off a binding that was allowed, or requires another', () => {
    const text = implicit(
      ['sender_constraint: { dpop: allowed }'],
      ', sender_constraint: { mtls: required }',
      '{ methods: [GET], path: /a, scopes: [a], sender_constraint: { dpop: off } }',
      '{ methods: [GET], path: /b, scopes: [a], sender_constraint: { mtls: allowed, dpop: required } }',
    );

    expect(found(text)).toEqual([]);
  });

  it('is an error at the top level when it weakens the issuer for the implicit service', () => {
    const text = implicit(
      ['sender_constraint: { dpop: allowed }'],
      ', sender_constraint: { dpop: required }',
      '{ methods: [GET], path: /a, scopes: [a] }',
      '{ methods: [GET], path: /b, scopes: [a], sender_constraint: { dpop: required } }',
    );
    const [finding] = findingsOf(text).filter((f) => f.code === 'issuer_sender_constraint_weakened');

    expect(found(text)).toEqual(['sender_constraint issuer_sender_constraint_weakened error']);
    expect(finding?.line).toBe(4);
    expect(finding?.message).toBe(
      'the top-level sender_constraint sets { dpop: allowed }, so tokens of issuer "https://idp.example/" with no ' +
        'binding pass, though the issuer requires them bound ({ dpop: required })',
    );
  });

  it("is an error at a service's own sender_constraint, or at the service when it inherits the top level's", () => {
    const text = [
      'version: 1',
      'realm: bank-api',
      'public_origin: https://bank.example',
      'sender_constraint: { mtls: off }',
      'issuers:',
      ISSUER(', sender_constraint: { mtls: required }'),
      'services:',
      '  - name: bank', //                                                     8
      '    hosts: [bank.example]',
      '    sender_constraint: { mtls: allowed }', //                           10
      '    routes: [{ methods: [GET], path: /a, scopes: [a] }]',
      '  - name: shop', //                                                     12
      '    hosts: [shop.example]',
      '    routes: [{ methods: [GET], path: /a, scopes: [a] }]',
      '',
    ].join('\n');
    const findings = findingsOf(text).filter((f) => f.code === 'issuer_sender_constraint_weakened');

    expect(findings.map((f) => `${f.path} ${f.level} line ${f.line}`)).toEqual([
      'services[0].sender_constraint error line 10',
      'services[1] error line 12',
    ]);
    expect(findings[1]?.message).toMatch(
      /^service "shop" \(from the top-level sender_constraint\) sets \{ mtls: off \}/,
    );
  });

  it('points at the top level when the service sets only the other member', () => {
    const text = [
      'version: 1',
      'realm: bank-api',
      'public_origin: https://bank.example',
      'sender_constraint: { dpop: allowed }',
      'issuers:',
      ISSUER(', sender_constraint: { dpop: required }'),
      'services:',
      '  - name: bank', //                                                     8
      '    hosts: [bank.example]',
      '    sender_constraint: { mtls: allowed }',
      '    routes: [{ methods: [GET], path: /a, scopes: [a] }]',
      '',
    ].join('\n');
    const [finding] = findingsOf(text).filter((f) => f.code === 'issuer_sender_constraint_weakened');

    expect(`${finding?.path} line ${finding?.line}`).toBe('services[0] line 8');
    expect(finding?.message).toMatch(
      /^service "bank" \(from the top-level sender_constraint\) sets \{ dpop: allowed, mtls: allowed \}/,
    );
  });

  it('lets a route accept overriding the issuer, with the reason; a guarded reload refuses it unaccepted', () => {
    const route = (acceptance: string) =>
      `{ methods: [GET], path: /legacy, scopes: [a], sender_constraint: { dpop: allowed }${acceptance} }`;
    const text = implicit(
      [],
      ', sender_constraint: { dpop: required }',
      route(", accept_risks: [{ code: issuer_sender_constraint_weakened, reason: 'old app until March' }]"),
    );
    const [finding] = findingsOf(text).filter((f) => f.code === 'issuer_sender_constraint_weakened');

    expect(finding?.accepted).toEqual({ reason: 'old app until March' });
    expect(findingFails(finding!, true)).toBe(false);

    const before = implicit(
      [],
      ', sender_constraint: { dpop: required }',
      '{ methods: [GET], path: /legacy, scopes: [a] }',
    );
    const after = implicit([], ', sender_constraint: { dpop: required }', route(''));
    expect(
      reloadBlockingFindings(findingsOf(before), findingsOf(after)).map((f) => `${f.path} ${f.code}`),
    ).toEqual(['routes[0].sender_constraint issuer_sender_constraint_weakened']);
    expect(reloadBlockingFindings(findingsOf(before), findingsOf(text))).toEqual([]);
  });

  it('an acceptance of the warning does not accept the error: it is unused, and the error stands', () => {
    const text = implicit(
      [],
      ', sender_constraint: { dpop: required }',
      "{ methods: [GET], path: /legacy, scopes: [a], sender_constraint: { dpop: allowed }, accept_risks: [{ code: sender_constraint_weakened, reason: 'old app until March' }] }",
    );

    expect(
      findingsOf(text)
        .filter((f) => f.level !== 'notice' || f.code === 'risk_acceptance_unused')
        .map((f) => `${f.path} ${f.code} ${findingFails(f)}`),
    ).toEqual([
      'routes[0].sender_constraint issuer_sender_constraint_weakened true',
      'routes[0].accept_risks[0] risk_acceptance_unused false',
    ]);
  });

  it("lets a route accept dropping its service's binding, with the reason", () => {
    const text = implicit(
      ['sender_constraint: { dpop: required }'],
      '',
      "{ methods: [GET], path: /legacy, scopes: [a], sender_constraint: { dpop: allowed }, accept_risks: [{ code: sender_constraint_weakened, reason: 'old app until March' }] }",
    );
    const [finding] = findingsOf(text).filter((f) => f.code === 'sender_constraint_weakened');

    expect(finding?.accepted).toEqual({ reason: 'old app until March' });
    expect(findingFails(finding!, true)).toBe(false);
  });

  it('warns about a plain-http public origin other than loopback', () => {
    const text = implicit([], '', '{ methods: [GET], path: /a, scopes: [a] }').replace(
      'public_origin: https://bank.example',
      'public_origin: [http://127.0.0.1:8000, http://localhost:8000, "http://[::1]:8000", http://bank.example, https://bank.example]',
    );

    expect(found(text)).toEqual(['public_origin[3] public_origin_cleartext warning']);
  });

  it('every new code is in the registry with its level', () => {
    expect(FINDING_CODES.sender_constraint_weakened).toMatchObject({ level: 'warning', route: true });
    expect(FINDING_CODES.issuer_sender_constraint_weakened).toMatchObject({ level: 'error', route: true });
    expect(FINDING_CODES.public_origin_cleartext).toMatchObject({ level: 'warning', route: false });
  });
});
