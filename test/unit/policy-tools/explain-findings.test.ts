import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { explainCommand } from '../../../src/policy-tools/explain-command.js';
import type { Explanation } from '../../../src/policy-tools/explain-request.js';
import { createTempDir, writeTextFile } from '../../kit/authz-harness.js';
import { captureIo, repoFile } from '../../kit/capture-io.js';
import { demoPolicyText } from '../../kit/inline-policy.js';

// `authz explain` shows the policy findings (docs/policy-checks.md) about the route that decided and its
// service, so that whoever asks why a request passed also learns what the route lets through.

async function explain(...args: string[]): Promise<string> {
  const capture = captureIo();
  expect(await explainCommand([...args, '--now', '2026-11-27T12:00:00Z'], capture.io)).toBe(0);
  return capture.stdout();
}

describe('authz explain: findings about the route and its service', () => {
  let temp: { dir: string; remove: () => Promise<void> };
  let catchAll: string;
  let services: string;
  let shadowed: string;

  beforeAll(async () => {
    temp = await createTempDir('authz-explain-findings-');
    catchAll = await writeTextFile(
      temp.dir,
      'catch-all.yaml',
      demoPolicyText(
        [
          '{ methods: [GET], path: /balance, scopes: [view:balance] }',
          "{ methods: [GET], path: '/**', public: true, accept_risks: [{ code: public_catch_all, reason: 'static mirror, nothing private' }] }",
          '{ path: /other/**, public: true }',
        ],
        { issuerSettings: { require_typ: 'at+jwt' } },
      ),
    );
    shadowed = await writeTextFile(
      temp.dir,
      'shadowed.yaml',
      demoPolicyText(
        [
          "{ methods: [GET, HEAD], path: '/app/**', public: true }",
          '{ methods: [GET], path: /app/admin, scopes: [admin] }',
        ],
        { issuerSettings: { require_typ: 'at+jwt' } },
      ),
    );
    services = await writeTextFile(
      temp.dir,
      'services.yaml',
      [
        'version: 1',
        'realm: bank-api',
        'issuers:',
        '  - { issuer: https://idp.example/, audiences: [api], jwks_uri: https://idp.example/jwks, algorithms: [RS256], require_typ: at+jwt }',
        'services:',
        '  - name: bank',
        '    hosts: [bank.example]',
        '    mode: report-only',
        '    routes:',
        '      - { methods: [GET], path: /balance, scopes: [view:balance] }',
        '  - name: shop',
        '    hosts: [shop.example]',
        '    routes:',
        '      - { methods: [GET], path: /cart, scopes: [] }',
        '',
      ].join('\n'),
    );
  });

  afterAll(async () => {
    await temp?.remove();
  });

  it('lists the findings of the matched route, accepted ones with the reason', async () => {
    const output = await explain('--policy', catchAll, '--method', 'GET', '--path', '/anything');
    expect(output).toContain(
      [
        'findings   error public_catch_all (line 11), accepted: public route GET /** matches every path, so requests to every endpoint of service "default", including endpoints added later, pass without a token',
        '             accepted because: static mirror, nothing private',
        'token      none presented (no Authorization header)',
      ].join('\n'),
    );
    const json = JSON.parse(
      await explain('--policy', catchAll, '--method', 'DELETE', '--path', '/other/x', '--json'),
    ) as Explanation;
    expect(json.findings.map((f) => [f.level, f.code, f.path, f.accepted])).toEqual([
      ['warning', 'public_any_method', 'routes[2]', undefined],
    ]);
  });

  it('shows a later route the request would have matched, shadowed by the route that took it', async () => {
    const output = await explain('--policy', shadowed, '--method', 'GET', '--path', '/app/admin');
    expect(output).toContain(
      'findings   error route_shadowed_weaker (line 11): never matches: routes[0] (line 10, GET,HEAD /app/**) matches every request it could; routes[0] is public, so those requests pass without a token\n',
    );
    const other = JSON.parse(
      await explain('--policy', shadowed, '--method', 'GET', '--path', '/app/index.html', '--json'),
    ) as Explanation;
    expect(other.findings).toEqual([]);
    const head = JSON.parse(
      await explain('--policy', shadowed, '--method', 'HEAD', '--path', '/app/admin', '--json'),
    ) as Explanation;
    expect(head.findings).toEqual([]); // the admin route is for GET only
  });

  it("shows a route's override of its issuer's required binding", async () => {
    const policy = await writeTextFile(
      temp.dir,
      'override.yaml',
      [
        'version: 1',
        'realm: bank-api',
        'public_origin: https://bank.example',
        'issuers:',
        '  - { issuer: https://idp.example/, audiences: [api], jwks_uri: https://idp.example/jwks, algorithms: [ES256], require_typ: at+jwt, sender_constraint: { dpop: required } }',
        'routes:',
        '  - { methods: [GET], path: /legacy, scopes: [a], sender_constraint: { dpop: allowed } }',
        '  - { methods: [GET], path: /balance, scopes: [a] }',
        '',
      ].join('\n'),
    );
    const legacy = JSON.parse(
      await explain('--policy', policy, '--method', 'GET', '--path', '/legacy', '--json'),
    ) as Explanation;
    expect(legacy.findings.map((f) => `${f.level} ${f.code} ${f.path}`)).toEqual([
      'error issuer_sender_constraint_weakened routes[0].sender_constraint',
    ]);
    const balance = JSON.parse(
      await explain('--policy', policy, '--method', 'GET', '--path', '/balance', '--json'),
    ) as Explanation;
    expect(balance.findings).toEqual([]);
  });

  it("shows the service's findings, even when no route matches", async () => {
    const json = JSON.parse(
      await explain(
        '--policy',
        services,
        '--host',
        'bank.example',
        '--method',
        'GET',
        '--path',
        '/none',
        '--json',
      ),
    ) as Explanation;
    expect(json.route).toBeNull();
    expect(json.findings.map((f) => `${f.level} ${f.code} ${f.path}`)).toEqual([
      'error report_only_service services[0].mode',
    ]);
    const shop = JSON.parse(
      await explain(
        '--policy',
        services,
        '--host',
        'shop.example',
        '--method',
        'GET',
        '--path',
        '/cart',
        '--json',
      ),
    ) as Explanation;
    expect(shop.findings).toEqual([]);
  });

  it('prints no findings block when none concern the request', async () => {
    const output = await explain(
      '--policy',
      repoFile('policy.yaml'),
      '--method',
      'GET',
      '--path',
      '/balance',
    );
    expect(output).not.toContain('findings');
    const json = JSON.parse(
      await explain('--policy', repoFile('policy.yaml'), '--method', 'GET', '--path', '/balance', '--json'),
    ) as Explanation;
    expect(json.findings).toEqual([]);
  });
});
