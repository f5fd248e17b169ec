import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UsageError } from '../../../src/args/usage-error.js';
import {
  checkPolicyCommand,
  type CheckPolicyReport,
} from '../../../src/policy-tools/check-policy-command.js';
import { policyFindings } from '../../../src/policy/policy-findings.js';
import { diffCommand } from '../../../src/policy-tools/diff-command.js';
import { explainCommand } from '../../../src/policy-tools/explain-command.js';
import type { Explanation } from '../../../src/policy-tools/explain-request.js';
import { parsePolicyTestFile } from '../../../src/policy-tools/policy-test-file.js';
import { diffExamples, diffPolicies, UNCLAIMED_HOST } from '../../../src/policy-tools/policy-diff.js';
import { testCommand } from '../../../src/policy-tools/test-command.js';
import { compilePolicy } from '../../../src/policy/compile-policy.js';
import { PolicyError } from '../../../src/policy/policy-error.js';
import { YamlLocations } from '../../../src/policy/yaml-locations.js';
import { createTempDir, writeTextFile } from '../../kit/authz-harness.js';
import { captureIo, OPS_NOW } from '../../kit/capture-io.js';
import { compileRoutes, DEMO_AUDIENCE, DEMO_ISSUER, DEMO_JWKS_URI } from '../../kit/inline-policy.js';

// The policy tools on a policy with services (docs/policy.md, "Services"): which service a request is
// for, by host or by the name Envoy sends, and what check-policy says about hosts.

const STATEMENTS_AUDIENCE = 'https://statements-api';

/** The head of every policy here: one issuer for both audiences. Lines 1-8; `services:` is line 9. */
const HEAD = [
  'version: 1',
  'realm: bank-api',
  'known_scopes: [view:balance, view:statements, admin]',
  'issuers:',
  `  - issuer: ${DEMO_ISSUER}`,
  `    audiences: [${DEMO_AUDIENCE}, ${STATEMENTS_AUDIENCE}]`,
  `    jwks_uri: ${DEMO_JWKS_URI}`,
  '    algorithms: [RS256]',
];

/** Two services both with GET /balance, one wildcard, and a service reached only by name. */
const SERVICES = [
  ...HEAD,
  'services:',
  '  - name: bank', // line 10
  "    hosts: [bank.example, '*.bank.example']",
  `    issuers: [{ issuer: ${DEMO_ISSUER}, audiences: [${DEMO_AUDIENCE}] }]`,
  '    routes:',
  '      - { methods: [GET], path: /balance, scopes: [view:balance] }', // line 14
  '      - { path: /healthz, public: true }',
  '  - name: statements', // line 16
  '    hosts: [statements.example]',
  '    realm: statements-api',
  `    issuers: [{ issuer: ${DEMO_ISSUER}, audiences: [${STATEMENTS_AUDIENCE}] }]`,
  '    routes:',
  '      - { methods: [GET], path: /balance, scopes: [view:statements] }', // line 21
  '  - name: internal', // line 22
  '    routes:',
  '      - { methods: [GET], path: /admin, scopes: [admin] }',
  '',
].join('\n');

/** A policy with these service entries after HEAD, each a list of lines. */
function servicesText(...services: string[][]): string {
  return [...HEAD, 'services:', ...services.flat(), ''].join('\n');
}

let temp: { dir: string; remove: () => Promise<void> };
let policyFile: string;

beforeAll(async () => {
  temp = await createTempDir('authz-ops-services-');
  policyFile = await writeTextFile(temp.dir, 'policy.yaml', SERVICES);
});

afterAll(async () => {
  await temp?.remove();
});

async function explain(...args: string[]): Promise<string> {
  const capture = captureIo();
  const code = await explainCommand(
    ['--policy', policyFile, ...args, '--now', '2026-11-27T12:00:00Z'],
    capture.io,
  );
  expect(code).toBe(0);
  return capture.stdout();
}

async function explainJson(...args: string[]): Promise<Explanation> {
  return JSON.parse(await explain(...args, '--json')) as Explanation;
}

describe('authz explain --host / --service: the service a request is for', () => {
  it("names the service of the request's host and tries only its routes, with its realm", async () => {
    const output = await explain(
      ...['--method', 'GET', '--path', '/balance', '--host', 'statements.example'],
      ...['--claims', '{"scope": "view:balance"}'],
    );
    expect(output).toContain(
      [
        'request    GET /balance',
        '           host statements.example',
        'service    statements (line 16, realm statements-api): it lists host statements.example',
        'route      services[1].routes[0] (line 21): GET /balance',
        '           the first route in file order that lists method GET and whose pattern matches /balance',
        'requires   scopes: view:statements (all of them)',
      ].join('\n'),
    );
    expect(output).toContain(
      'www-authenticate: Bearer realm="statements-api", error="insufficient_scope", scope="view:statements"\n',
    );
  });

  it('lists as tried only the routes of the chosen service', async () => {
    const explanation = await explainJson(
      '--method',
      'DELETE',
      '--path',
      '/balance',
      '--host',
      'bank.example',
    );
    expect(explanation.route).toBeNull();
    expect(explanation.skipped.map((s) => `${s.path} ${s.name}`)).toEqual([
      'services[0].routes[0] GET /balance',
      'services[0].routes[1] * /healthz',
    ]);
  });

  it.each([
    ['BANK.example', 'host', 'bank.example'],
    ['bank.example:8443', 'host', 'bank.example'],
    ['bank.example.', 'host', 'bank.example'],
    ['eu.bank.example', 'wildcard', '*.bank.example'],
    ['EU.Bank.Example.:443', 'wildcard', '*.bank.example'],
  ])('host %s: bank, by %s %s', async (host, chosenBy, matched) => {
    const explanation = await explainJson('--method', 'GET', '--path', '/healthz', '--host', host);
    expect(explanation.service).toEqual({
      name: 'bank',
      line: 10,
      realm: 'bank-api',
      chosen_by: chosenBy,
      matched,
    });
    expect(explanation.request.host).toBe(host);
    expect(explanation.decision.kind).toBe('allow');
  });

  it('the text says which wildcard matched', async () => {
    const output = await explain('--method', 'GET', '--path', '/healthz', '--host', 'eu.bank.example');
    expect(output).toContain(
      'service    bank (line 10, realm bank-api): it lists *.bank.example, which matches eu.bank.example\n' +
        '           no service lists that host exactly (exact names are tried first)\n',
    );
  });

  it('--service (ext_authz context_extensions) takes precedence over the host', async () => {
    const output = await explain(
      ...['--method', 'GET', '--path', '/admin', '--host', 'bank.example', '--service', 'internal'],
      ...['--claims', '{"scope": "admin"}'],
    );
    expect(output).toContain(
      [
        'request    GET /admin',
        '           host bank.example',
        '           named service internal (ext_authz context_extensions)',
        'service    internal (line 22, realm bank-api): named by the proxy (context_extensions), which takes precedence over the host',
        'route      services[2].routes[0] (line 24): GET /admin',
      ].join('\n'),
    );
    expect(output).toContain('decision   allow\n');
  });

  it.each([
    ['a host no service lists', ['--host', 'unclaimed.invalid'], 'no service lists host unclaimed.invalid'],
    [
      'a wildcard takes exactly one more label',
      ['--host', 'a.b.bank.example'],
      'no service lists host a.b.bank.example',
    ],
    ['no host at all', [], 'no host given (--host)'],
    ['a host that is no host name', ['--host', 'bank example'], '"bank example" is not a host name'],
  ])('no_service for %s: 403 access_denied, no challenge, no route tried', async (_, flags, why) => {
    const args = ['--method', 'GET', '--path', '/balance', ...flags, '--claims', '{"scope": "view:balance"}'];
    const output = await explain(...args);
    expect(output).toContain(`service    none (no_service): ${why}`);
    expect(output).toContain('route      none tried: no service was chosen, so no routes apply\n');
    expect(output).toContain('           not looked at: no service was chosen\n');
    expect(output).not.toContain('www-authenticate');
    const explanation = await explainJson(...args);
    expect(explanation.service).toMatchObject({ name: null, code: 'no_service' });
    expect(explanation.route).toBeNull();
    expect(explanation.skipped).toEqual([]);
    expect(explanation.decision).toMatchObject({ kind: 'deny', code: 'no_service' });
    expect(explanation.response).toMatchObject({ kind: 'deny', status: 403 });
    expect(JSON.parse((explanation.response as { body: string }).body)).toMatchObject({
      error: 'access_denied',
    });
  });

  it('service_unknown for a name the policy does not have, whatever the host', async () => {
    const explanation = await explainJson(
      ...['--method', 'GET', '--path', '/balance', '--host', 'bank.example', '--service', 'bnak'],
    );
    expect(explanation.request.service).toBe('bnak');
    expect(explanation.service).toMatchObject({ name: null, code: 'service_unknown' });
    expect(explanation.decision).toMatchObject({ kind: 'deny', code: 'service_unknown' });
    expect(explanation.response).toMatchObject({ kind: 'deny', status: 403 });
    expect((explanation.response as { headers: Record<string, string> }).headers).not.toHaveProperty(
      'www-authenticate',
    );
  });

  it("a token the service does not accept (another API's audience): 401, and the text says why", async () => {
    const output = await explain(
      ...['--method', 'GET', '--path', '/balance', '--host', 'statements.example'],
      ...['--claims', JSON.stringify({ scope: 'view:statements', aud: DEMO_AUDIENCE })],
    );
    expect(output).toContain(
      '           not accepted by service statements: token_audience_mismatch: the token is not meant for this API\n',
    );
    expect(output).toContain('response   401\n');
  });

  it('a file without services: one service for every host, said only when --host or --service is given', async () => {
    const file = await writeTextFile(
      temp.dir,
      'plain.yaml',
      [
        'version: 1',
        'realm: bank-api',
        'issuers:',
        `  - { issuer: ${DEMO_ISSUER}, audiences: [${DEMO_AUDIENCE}], jwks_uri: ${DEMO_JWKS_URI}, algorithms: [RS256] }`,
        'routes:',
        '  - { path: /healthz, public: true }',
        '',
      ].join('\n'),
    );
    const run = async (...args: string[]) => {
      const capture = captureIo();
      await explainCommand(['--policy', file, '--method', 'GET', '--path', '/healthz', ...args], capture.io);
      return capture.stdout();
    };
    expect(await run()).not.toContain('service');
    expect(await run()).toContain('route      routes[0] (line 6): * /healthz\n');
    expect(await run('--host', 'anything.example')).toContain(
      'service    default (line 5, realm bank-api): the policy has no services, so this one answers every host\n',
    );
    expect(await run('--service', 'default')).toContain('decision   allow\n');
    expect(await run('--service', 'bank')).toContain('decision   deny service_unknown');
  });

  it('refuses empty --host and --service', async () => {
    const base = ['--policy', policyFile, '--method', 'GET', '--path', '/'];
    await expect(explainCommand([...base, '--host', ''], captureIo().io)).rejects.toThrow(UsageError);
    await expect(explainCommand([...base, '--service', ''], captureIo().io)).rejects.toThrow(
      /--service is empty/,
    );
  });
});

describe('authz test: per-case host and service', () => {
  const TESTS = [
    'policy: policy.yaml',
    'now: 2026-11-27T12:00:00Z',
    'cases:',
    '  - host: bank.example',
    '    request: { method: GET, path: /balance }',
    '    token: { scope: view:balance }',
    '    expect: allow',
    '  - name: the statements /balance wants its own scope',
    '    host: statements.example:443',
    '    request: { method: GET, path: /balance }',
    '    token: { scope: view:balance }',
    '    expect: { status: 403, error: insufficient_scope, scope: view:statements }',
    '  - name: a bank token is not for the statements API',
    '    host: statements.example',
    '    request: { method: GET, path: /balance }',
    `    token: { scope: view:statements, aud: "${DEMO_AUDIENCE}" }`,
    '    expect: { status: 401, error: invalid_token }',
    '  - name: wildcard host',
    '    host: eu.bank.example',
    '    request: { method: GET, path: /healthz }',
    '    expect: allow',
    '  - name: unclaimed host',
    '    host: unclaimed.invalid',
    '    request: { method: GET, path: /balance }',
    '    token: { scope: view:balance }',
    '    expect: { status: 403, error: access_denied }',
    '  - name: no host, no service',
    '    request: { method: GET, path: /healthz }',
    '    expect: { status: 403, error: access_denied }',
    '  - service: internal',
    '    host: bank.example',
    '    request: { method: GET, path: /admin }',
    '    token: { scope: admin }',
    '    expect: allow',
    '  - name: a name the policy does not have',
    '    service: intranet',
    '    request: { method: GET, path: /admin }',
    '    expect: { status: 403, error: access_denied }',
    '',
  ].join('\n');

  it('runs each case against the service its host or name chooses', async () => {
    const file = await writeTextFile(temp.dir, 'services.test.yaml', TESTS);
    const capture = captureIo();
    const code = await testCommand([file], capture.io);
    expect(capture.stderr()).toBe('');
    expect(capture.stdout()).not.toContain('FAIL');
    expect(capture.stdout()).toMatch(/\n8 passed, 0 failed\n$/);
    expect(code).toBe(0);
    // Unnamed cases are named after the request, its host and its service.
    expect(capture.stdout()).toMatch(/^GET \/balance host bank\.example +allow +allow +PASS$/m);
    expect(capture.stdout()).toMatch(/^GET \/admin host bank\.example service internal +allow/m);
  });

  it('parses host and service into the request', () => {
    const parsed = parsePolicyTestFile(TESTS, 't.yaml');
    expect(parsed.cases[1]!.request).toEqual({
      method: 'GET',
      target: '/balance',
      host: 'statements.example:443',
    });
    expect(parsed.cases[6]!.request).toEqual({
      method: 'GET',
      target: '/admin',
      host: 'bank.example',
      serviceName: 'internal',
    });
    expect(parsed.cases[0]!.request).not.toHaveProperty('serviceName');
  });

  it('validates host and service like the other case fields, each problem located', () => {
    const text = [
      'policy: p.yaml',
      'cases:',
      '  - host: https://bank.example/',
      '    request: { method: GET, path: / }',
      '    expect: allow',
      '  - host: 42',
      '    service: ""',
      '    request: { method: GET, path: / }',
      '    expect: allow',
      '  - hosts: [bank.example]',
      '    request: { method: GET, path: / }',
      '    expect: allow',
      '',
    ].join('\n');
    let problems: string[] = [];
    try {
      parsePolicyTestFile(text, 't.yaml');
    } catch (error) {
      expect(error).toBeInstanceOf(PolicyError);
      problems = (error as PolicyError).problems.map((p) => `${p.line}:${p.column} ${p.path}: ${p.message}`);
    }
    expect(problems).toEqual([
      '3:5 cases[0].host: must be a host name, e.g. bank.example (a port may follow)',
      '6:5 cases[1].host: must be a host name, e.g. bank.example (a port may follow)',
      '7:5 cases[1].service: must be the service name Envoy sends (ext_authz context_extensions)',
      '10:5 cases[2].hosts: unknown key "hosts" (allowed: name, host, service, request, token, expect)',
    ]);
  });
});

describe('authz diff with services', () => {
  const bankOnly = (hosts: string) =>
    servicesText([
      '  - name: bank',
      `    hosts: ${hosts}`,
      '    routes:',
      '      - { methods: [GET], path: /balance, scopes: [view:balance] }',
    ]);

  it('example requests go to one host per service (a wildcard as x1.), by name without hosts, and to an unclaimed host', () => {
    const policy = compilePolicy(SERVICES, 'policy.yaml');
    const where = [...new Set(diffExamples([policy]).map((r) => r.host ?? `service ${r.serviceName ?? ''}`))];
    // bank.example and x1.bank.example reach the same service: the first stands for both.
    expect(where).toEqual(['bank.example', 'statements.example', 'service internal', UNCLAIMED_HOST]);
    const examples = diffExamples([policy]).map(
      (r) => `${r.method} ${r.target} ${r.host ?? `service ${r.serviceName ?? ''}`}`,
    );
    expect(examples).toContain('GET /balance bank.example');
    expect(examples).toContain('GET /balance statements.example');
    expect(examples).toContain('GET /admin service internal');
    expect(examples).not.toContain('GET /admin bank.example'); // each service with its own routes
    expect(examples).toContain(`GET /authz-diff-probe ${UNCLAIMED_HOST}`);
  });

  it('a host moved to another service: its requests change, shown with the host', async () => {
    const before = compilePolicy(bankOnly("[bank.example, '*.bank.example']"), 'old.yaml');
    const after = compilePolicy(bankOnly('[bank.example]'), 'new.yaml');
    const changes = (await diffPolicies(before, after, OPS_NOW)).changes;
    expect(
      changes.map((c) => `${c.method} ${c.path} ${c.host} [${c.profile}]: ${c.old} -> ${c.new}`),
    ).toContain('GET /balance x1.bank.example [all-scopes]: allow -> 403 access_denied');
    expect(changes.every((c) => c.host === 'x1.bank.example')).toBe(true);
  });

  it('prints the host of each change, and --json carries it', async () => {
    const oldFile = await writeTextFile(temp.dir, 'old.yaml', bankOnly('[bank.example]'));
    const newFile = await writeTextFile(temp.dir, 'new.yaml', bankOnly('[bank.example, unclaimed.invalid]'));
    const capture = captureIo();
    expect(await diffCommand([oldFile, newFile], capture.io)).toBe(1);
    expect(capture.stdout()).toContain(
      'GET /balance (host unclaimed.invalid) [no-token]: 403 access_denied -> 401 unauthorized\n',
    );
    const json = captureIo();
    await diffCommand(['--json', oldFile, newFile], json.io);
    const report = JSON.parse(json.stdout()) as { changes: { host?: string; service?: string }[] };
    expect(report.changes[0]).toMatchObject({ host: UNCLAIMED_HOST, method: 'GET', path: '/balance' });
    expect(report.changes[0]).not.toHaveProperty('service');
  });

  it('a policy without services against the same routes as a service: only unclaimed hosts change', async () => {
    const plain = compileRoutes('{ methods: [GET], path: /balance, scopes: [view:balance] }');
    const services = compilePolicy(bankOnly('[bank.example]'), 'new.yaml');
    const { changes } = await diffPolicies(plain, services, OPS_NOW);
    expect(changes.length).toBeGreaterThan(0);
    expect(new Set(changes.map((c) => c.host))).toEqual(new Set([UNCLAIMED_HOST]));
    expect(changes.map((c) => c.new)).toEqual(changes.map(() => '403 access_denied'));
  });

  it('tokens come from an issuer the service trusts, for its audience', async () => {
    const policy = compilePolicy(SERVICES, 'policy.yaml');
    const { changes } = await diffPolicies(policy, policy, OPS_NOW);
    expect(changes).toEqual([]);
  });
});

describe('authz check-policy: services and their hosts', () => {
  /** The findings about services and scopes; the issuer's (no require_typ) are policy-findings.test.ts'. */
  function warningsOf(text: string): string[] {
    return policyFindings(compilePolicy(text, 'p.yaml'), new YamlLocations(text))
      .filter((w) => w.code !== 'issuer_typ_unchecked')
      .map((w) => `${w.line}:${w.column} ${w.path} ${w.code}: ${w.message}`);
  }

  const service = (name: string, hosts: string | undefined, scope = 'view:balance') => [
    `  - name: ${name}`,
    ...(hosts === undefined ? [] : [`    hosts: ${hosts}`]),
    '    routes:',
    `      - { methods: [GET], path: /${name}, scopes: [${scope}] }`,
  ];

  it('host_claimed_twice: the later entry loses, pointed at, naming the service that keeps it', () => {
    const text = servicesText(
      service('bank', '[bank.example, api.example]'),
      service('statements', '[statements.example, API.example]', 'view:statements'),
      service('internal', '[internal.example]', 'admin'),
    );
    expect(warningsOf(text)).toEqual([
      '15:33 services[1].hosts[1] host_claimed_twice: host "api.example" is listed first by service "bank" (line 11): its requests go there, never to "statements"',
    ]);
  });

  it('service_unreachable: no hosts, or every host listed by an earlier service', () => {
    const text = servicesText(
      service('bank', '[bank.example]'),
      service('internal', undefined, 'admin'),
      service('statements', '[bank.example]', 'view:statements'),
    );
    expect(warningsOf(text)).toEqual([
      '14:5 services[1] service_unreachable: service "internal" lists no hosts: only requests the proxy names it for (ext_authz context_extensions service: internal) reach it',
      '17:5 services[2] service_unreachable: every host of service "statements" is listed by an earlier service: only requests the proxy names it for (ext_authz context_extensions service: statements) reach it',
      '18:13 services[2].hosts[0] host_claimed_twice: host "bank.example" is listed first by service "bank" (line 11): its requests go there, never to "statements"',
    ]);
  });

  it("wildcard_overlaps_exact: another service's exact host wins over a wildcard; one service's own overlap is fine", () => {
    const text = servicesText(
      service('bank', "['*.example.com', eu.example.com]"),
      service('statements', '[statements.example.com]', 'view:statements'),
      service('internal', '[internal.example]', 'admin'),
    );
    expect(warningsOf(text)).toEqual([
      '11:13 services[0].hosts[0] wildcard_overlaps_exact: "*.example.com" of service "bank" does not take statements.example.com: service "statements" lists it exactly (line 15), and exact names win',
    ]);
  });

  it('scope_unknown and scope_unused look at the routes of every service', () => {
    const text = servicesText(
      service('bank', '[bank.example]'),
      service('statements', '[statements.example]', 'view:statments'),
    );
    expect(warningsOf(text)).toEqual([
      '3:30 known_scopes[1] scope_unused: known scope "view:statements" is required by no route',
      '3:47 known_scopes[2] scope_unused: known scope "admin" is required by no route',
      '17:55 services[1].routes[0].scopes[0] scope_unknown: scope "view:statments" is not in known_scopes (a typo, or a scope to declare)',
    ]);
  });

  it('shadowing is per service: the same route in two services is no duplicate', () => {
    const route = '      - { methods: [GET], path: /balance, scopes: [view:balance] }';
    const text = servicesText(
      ['  - name: bank', '    hosts: [bank.example]', '    routes:', route, route],
      ['  - name: statements', '    hosts: [statements.example]', '    routes:', route],
      service('internal', '[internal.example]', 'view:statements'),
      service('admin', '[admin.example]', 'admin'),
    );
    expect(warningsOf(text)).toEqual([
      '14:9 services[0].routes[1] route_duplicate: duplicates services[0].routes[0] (line 13, GET /balance): same methods and path, so it never matches',
    ]);
  });

  it('the command counts services and routes; --json has the codes', async () => {
    const capture = captureIo();
    expect(await checkPolicyCommand([policyFile], capture.io)).toBe(0);
    expect(capture.stdout()).toContain(
      [
        `${policyFile}:22:5: notice: services[2]: service "internal" lists no hosts: only requests the proxy names it for (ext_authz context_extensions service: internal) reach it [service_unreachable]`,
        '  fix: List the hosts it answers for, or have the proxy name it (ext_authz context_extensions service).',
        `${policyFile}: 3 services, 4 routes, 1 warning, 2 notices: usable`,
        '',
      ].join('\n'),
    );
    const json = captureIo();
    expect(await checkPolicyCommand([policyFile, '--json', '--strict'], json.io)).toBe(1);
    const report = JSON.parse(json.stdout()) as CheckPolicyReport;
    expect(report.warnings.map((w) => [w.code, w.level, w.line, w.path])).toEqual([
      ['issuer_typ_unchecked', 'notice', 5, 'issuers[0]'],
      ['public_any_method', 'warning', 15, 'services[0].routes[1]'],
      ['service_unreachable', 'notice', 22, 'services[2]'],
    ]);
  });
});
