import { describe, expect, it } from 'vitest';
import { compilePolicy } from '../../../src/policy/compile-policy.js';
import { IMPLICIT_SERVICE } from '../../../src/policy/compile-services.js';
import type { CompiledService } from '../../../src/policy/compiled-policy.js';
import { expectSingleProblem, policyErrorFrom, policyText } from './compile-policy-support.js';

// The head of most policies here: a realm, a mode and two issuers; what follows starts on line 13.
const HEAD = [
  'version: 1', //                                   1
  'realm: gateway', //                               2
  'mode: report-only', //                            3
  'issuers:', //                                     4
  '  - issuer: https://idp.example/', //             5
  '    audiences: [https://my-banking-api]',
  '    jwks_uri: https://idp.example/.well-known/jwks.json',
  '    algorithms: [RS256]',
  '  - issuer: https://partner.example/', //         9
  '    audiences: [https://partner-api]', //         10
  '    jwks_uri: https://partner.example/.well-known/jwks.json',
  '    algorithms: [RS256]',
];
/** HEAD without the top-level realm and mode: what follows starts on line 11. */
const BARE_HEAD = [HEAD[0]!, ...HEAD.slice(3)];

function text(head: readonly string[], ...lines: string[]): string {
  return [...head, ...lines, ''].join('\n');
}

/**
 * Three services: `bank` with its own hosts, realm, mode, trust and claim headers; `statements`, which
 * inherits the realm and mode and trusts both issuers with audiences of its own; `status`, with no hosts
 * (reached by name only) and the default trust.
 */
const THREE_SERVICES = text(
  HEAD,
  'services:', //                                                                  13
  '  - name: bank', //                                                             14
  "    hosts: [Bank.Example, '*.Bank.Example']",
  '    realm: bank-api',
  '    mode: enforce',
  '    issuers:',
  '      - { issuer: https://idp.example/, audiences: [https://my-banking-api, https://bank-v2] }',
  '    claim_headers:', //                                                         20
  '      email: x-auth-email',
  '      tier: x-auth-tier',
  '    routes:',
  '      - { methods: [GET], path: /balance, scopes: [view:balance] }', //         24
  '  - name: statements', //                                                       25
  '    hosts: [statements.example]',
  '    issuers:',
  '      - { issuer: https://idp.example/, audiences: [https://statements-api] }',
  '      - { issuer: https://partner.example/ }',
  '    claim_headers: { department: x-auth-department }', //                       30
  '    routes:',
  '      - { methods: [GET], path: /balance, scopes: [view:statements] }', //      32
  '      - { path: /healthz, public: true, mode: enforce }',
  '  - name: status', //                                                           34
  '    hosts: []',
  '    routes: []',
);

describe('compilePolicy: services', () => {
  const policy = compilePolicy(THREE_SERVICES, 'policy.yaml');
  const [bank, statements, status] = policy.services as [CompiledService, CompiledService, CompiledService];

  it('compiles every service, in file order, each at its line, and knows the file lists them', () => {
    expect(policy.explicitServices).toBe(true);
    expect(policy.services.map((service) => [service.name, service.line])).toEqual([
      ['bank', 14],
      ['statements', 25],
      ['status', 34],
    ]);
    expect(statements.routesPath).toEqual(['services', 1, 'routes']);
  });

  it('lowers the case of hosts, keeps a wildcard as written, and keeps an empty list empty', () => {
    expect(bank.hosts).toEqual(['bank.example', '*.bank.example']);
    expect(statements.hosts).toEqual(['statements.example']);
    expect(status.hosts).toEqual([]);
  });

  it('takes the realm and mode a service gives, else the top-level ones', () => {
    expect([bank.realm, bank.mode]).toEqual(['bank-api', 'enforce']);
    expect([statements.realm, statements.mode]).toEqual(['gateway', 'report-only']);
    expect([status.realm, status.mode]).toEqual(['gateway', 'report-only']);
  });

  it("gives a service's routes its mode unless a route sets its own, and lines in the file", () => {
    expect(bank.routes.map((route) => [route.name, route.mode, route.line])).toEqual([
      ['GET /balance', 'enforce', 24],
    ]);
    expect(statements.routes.map((route) => [route.name, route.mode, route.line])).toEqual([
      ['GET /balance', 'report-only', 32],
      ['* /healthz', 'enforce', 33],
    ]);
    expect(status.routes).toEqual([]);
  });

  it('trusts the issuers a service lists, with the audiences it gives, else the issuer’s own', () => {
    expect(bank.trust).toEqual(
      new Map([['https://idp.example/', new Set(['https://my-banking-api', 'https://bank-v2'])]]),
    );
    expect(statements.trust).toEqual(
      new Map([
        ['https://idp.example/', new Set(['https://statements-api'])],
        ['https://partner.example/', new Set(['https://partner-api'])],
      ]),
    );
  });

  it('trusts every top-level issuer, with its own audiences, when a service lists none', () => {
    expect(status.trust).toEqual(
      new Map([
        ['https://idp.example/', new Set(['https://my-banking-api'])],
        ['https://partner.example/', new Set(['https://partner-api'])],
      ]),
    );
  });

  it('keeps the claim headers of each service in file order', () => {
    expect(bank.claimHeaders).toEqual([
      { claim: 'email', header: 'x-auth-email' },
      { claim: 'tier', header: 'x-auth-tier' },
    ]);
    expect(statements.claimHeaders).toEqual([{ claim: 'department', header: 'x-auth-department' }]);
    expect(status.claimHeaders).toEqual([]);
  });

  it("verifies each issuer's tokens against every audience any service accepts from it", () => {
    expect(policy.issuers.get('https://idp.example/')?.audiences).toEqual([
      'https://my-banking-api',
      'https://bank-v2',
      'https://statements-api',
    ]);
    expect(policy.issuers.get('https://partner.example/')?.audiences).toEqual(['https://partner-api']);
  });

  it('has every issuer read every claim some service passes on in a header', () => {
    for (const issuer of policy.issuers.values()) {
      expect(issuer.headerClaims).toEqual(['department', 'email', 'tier']);
    }
  });

  it('selects services by name and by host through the compiled selector', () => {
    expect(policy.serviceSelector.byName('status')).toBe(status);
    expect(policy.serviceSelector.byName('Status')).toBeUndefined();
    expect(policy.serviceSelector.forHost('bank.example')).toBe(bank);
    expect(policy.serviceSelector.forHost('eu.bank.example')).toBe(bank);
    expect(policy.serviceSelector.forHost('statements.example')).toBe(statements);
    // No implicit service: a host nobody claims has no service.
    expect(policy.serviceSelector.forHost('other.example')).toBeUndefined();
    expect(policy.serviceSelector.forHost(undefined)).toBeUndefined();
  });
});

describe('compilePolicy: a file without services', () => {
  const policy = compilePolicy(policyText(), 'policy.yaml');

  it('compiles to one implicit service, default, for every host, with the top-level realm and mode', () => {
    expect(IMPLICIT_SERVICE).toBe('default');
    expect(policy.explicitServices).toBe(false);
    expect(policy.services).toHaveLength(1);
    expect(policy.services[0]).toMatchObject({
      name: 'default',
      line: 8, // of `routes:`
      routesPath: ['routes'],
      hosts: null,
      realm: 'bank-api',
      mode: 'enforce',
      claimHeaders: [],
      trust: new Map([['https://idp.example/', new Set(['https://my-banking-api'])]]),
    });
    expect(policy.services[0]?.routes.map((route) => route.name)).toEqual(['* /healthz']);
    expect(policy.issuers.get('https://idp.example/')?.headerClaims).toEqual([]);
  });

  it('answers every host, and none at all, with the implicit service; a name only if it is "default"', () => {
    const [service] = policy.services;
    for (const host of ['bank.example', 'anything.example', undefined]) {
      expect(policy.serviceSelector.forHost(host)).toBe(service);
    }
    expect(policy.serviceSelector.byName('default')).toBe(service);
    expect(policy.serviceSelector.byName('bank')).toBeUndefined();
  });
});

describe('compilePolicy: service errors, at their lines', () => {
  it('refuses routes at the top level next to services', () => {
    const policyWithBoth = text(
      HEAD,
      'routes:', //                        13
      '  - { path: /healthz, public: true }',
      'services:',
      '  - name: bank',
      '    routes: []',
    );
    const error = policyErrorFrom(() => compilePolicy(policyWithBoth, 'policy.yaml'));

    expectSingleProblem(error, 'ERR_POLICY_INVALID', {
      line: 13,
      path: 'routes',
      message: 'with "services", each service lists its own routes: move these under a service',
    });
  });

  it('refuses a service issuer that is not among the top-level issuers', () => {
    const error = policyErrorFrom(() =>
      compilePolicy(
        text(
          HEAD,
          'services:',
          '  - name: bank',
          '    issuers:',
          '      - { issuer: https://idp.example/ }',
          '      - { issuer: https://other.example/ }', // 17
          '    routes: []',
        ),
        'policy.yaml',
      ),
    );

    expectSingleProblem(error, 'ERR_POLICY_INVALID', {
      line: 17,
      path: 'services[0].issuers[1].issuer',
      message: '"https://other.example/" is not one of the top-level issuers: list it under "issuers" first',
    });
  });

  it('refuses two services of the same name, at the second', () => {
    const error = policyErrorFrom(() =>
      compilePolicy(
        text(
          HEAD,
          'services:',
          '  - name: bank',
          '    hosts: [bank.example]',
          '    routes: []',
          '  - name: bank', // 17
          '    hosts: [bank2.example]',
          '    routes: []',
        ),
        'policy.yaml',
      ),
    );

    expectSingleProblem(error, 'ERR_POLICY_INVALID', {
      line: 17,
      path: 'services[1].name',
      message: 'service "bank" is listed twice',
    });
  });

  it('refuses an issuer listed twice in one service', () => {
    const error = policyErrorFrom(() =>
      compilePolicy(
        text(
          HEAD,
          'services:',
          '  - name: bank',
          '    issuers:',
          '      - { issuer: https://idp.example/, audiences: [https://a] }',
          '      - { issuer: https://idp.example/, audiences: [https://b] }', // 17
          '    routes: []',
        ),
        'policy.yaml',
      ),
    );

    expectSingleProblem(error, 'ERR_POLICY_INVALID', {
      line: 17,
      path: 'services[0].issuers[1].issuer',
      message: 'issuer "https://idp.example/" is listed twice',
    });
  });

  it.each([
    ['x-auth-subject', 'sub'],
    ['x-auth-scopes', 'scope'],
  ])('refuses a claim mapped to the identity header %s, which the sidecar sets itself', (header, claim) => {
    const error = policyErrorFrom(() =>
      compilePolicy(
        text(
          HEAD,
          'services:',
          '  - name: bank',
          '    claim_headers:',
          '      email: x-auth-email',
          `      ${claim}: ${header}`, // 17
          '    routes: []',
        ),
        'policy.yaml',
      ),
    );

    expectSingleProblem(error, 'ERR_POLICY_INVALID', {
      line: 17,
      path: `services[0].claim_headers.${claim}`,
      message: `"${header}" is set by the sidecar itself: choose another header for the ${claim} claim`,
    });
  });

  it.each([
    ['x-forwarded-for', 'proxies, meshes or tracers act on it'],
    ['x-forwarded-client-cert', 'proxies, meshes or tracers act on it'],
    ['x-request-id', 'proxies, meshes or tracers act on it'],
    ['x-envoy-original-path', 'proxies, meshes or tracers act on it'],
    ['x-b3-traceid', 'proxies, meshes or tracers act on it'],
    ['x-real-ip', 'proxies, meshes or tracers act on it'],
    ['x-http-method-override', 'some frameworks take it as the request method'],
  ])('refuses a claim mapped to %s, a header proxies or frameworks act on', (header, role) => {
    const error = policyErrorFrom(() =>
      compilePolicy(
        text(
          HEAD,
          'services:',
          '  - name: bank',
          '    claim_headers:',
          '      email: x-auth-email',
          `      tenant: ${header}`, // 17
          '    routes: []',
        ),
        'policy.yaml',
      ),
    );

    expectSingleProblem(error, 'ERR_POLICY_INVALID', {
      line: 17,
      path: 'services[0].claim_headers.tenant',
      message: `"${header}" is not for claims: ${role}. Choose a header of your own for the tenant claim (e.g. x-tenant)`,
    });
  });

  it('refuses one header given two claims, at the second', () => {
    const error = policyErrorFrom(() =>
      compilePolicy(
        text(
          HEAD,
          'services:',
          '  - name: bank',
          '    claim_headers:',
          '      email: x-auth-email',
          '      mail: x-auth-email', // 17
          '    routes: []',
        ),
        'policy.yaml',
      ),
    );

    expectSingleProblem(error, 'ERR_POLICY_INVALID', {
      line: 17,
      path: 'services[0].claim_headers.mail',
      message: 'header "x-auth-email" is given two claims',
    });
  });

  it.each([
    ['bank.example:443', "takes no port: a request's port is ignored when matching"],
    ['bank.example.', "takes no trailing dot: a request's trailing dot is ignored when matching"],
    ['*', 'may have one wildcard, as its whole first label ("*.example.com")'],
    ['*.*.x', 'may have one wildcard, as its whole first label ("*.example.com")'],
    ['foo*.x', 'may have one wildcard, as its whole first label ("*.example.com")'],
    ['bad_host', 'is not a host name (letters, digits, "-" and ".")'],
    ['-bank.example', 'is not a host name (letters, digits, "-" and ".")'],
    ['bank..example', 'is not a host name (letters, digits, "-" and ".")'],
  ])('refuses the host %j', (host, problem) => {
    const error = policyErrorFrom(() =>
      compilePolicy(
        text(
          HEAD,
          'services:',
          '  - name: bank',
          '    hosts:',
          '      - good.example',
          `      - ${JSON.stringify(host)}`, // 17
          '    routes: []',
        ),
        'policy.yaml',
      ),
    );

    expectSingleProblem(error, 'ERR_POLICY_INVALID', {
      line: 17,
      path: 'services[0].hosts[1]',
      message: `host "${host}" ${problem}`,
    });
  });

  it('refuses a service without a realm when there is no top-level realm to inherit', () => {
    const error = policyErrorFrom(() =>
      compilePolicy(
        text(
          BARE_HEAD,
          'services:',
          '  - name: bank',
          '    realm: bank-api',
          '    routes: []',
          '  - name: statements', // 15
          '    routes: []',
        ),
        'policy.yaml',
      ),
    );

    expectSingleProblem(error, 'ERR_POLICY_INVALID', {
      line: 15,
      path: 'services[1]',
      message: 'service "statements" needs a "realm" (or set one at the top level for every service)',
    });
  });

  it('refuses an empty services list (schema): a file lists services or routes', () => {
    const error = policyErrorFrom(() => compilePolicy(text(HEAD, 'services: []'), 'policy.yaml'));

    expectSingleProblem(error, 'ERR_POLICY_INVALID', {
      line: 13,
      path: 'services',
      message: 'must NOT have fewer than 1 items',
    });
  });

  it('still requires routes and a realm from a file without services', () => {
    const error = policyErrorFrom(() => compilePolicy(text(BARE_HEAD), 'policy.yaml'));

    expect(error.problems.map((problem) => [problem.line, problem.path, problem.message])).toEqual([
      [1, '', 'missing required key "routes"'],
      [1, '', 'missing required key "realm"'],
    ]);
  });

  it.each(['X-Email', 'email', 'x-', 'x-auth email'])(
    'refuses the claim header name %j (schema): x- and lower-case letters, digits and "-"',
    (header) => {
      const error = policyErrorFrom(() =>
        compilePolicy(
          text(
            HEAD,
            'services:',
            '  - name: bank',
            '    claim_headers:',
            `      email: ${JSON.stringify(header)}`, // 16
            '    routes: []',
          ),
          'policy.yaml',
        ),
      );

      expectSingleProblem(error, 'ERR_POLICY_INVALID', {
        line: 16,
        path: 'services[0].claim_headers.email',
        message: 'is not a header for a claim (lower case, starting with "x-": x-auth-email)',
      });
    },
  );
});
