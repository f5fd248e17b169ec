import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FetchKeySet } from '../../../src/authn/read-key-set.js';
import {
  checkPolicyCommand,
  type CheckPolicyReport,
} from '../../../src/policy-tools/check-policy-command.js';
import { readScopesSupported } from '../../../src/policy-tools/scopes-supported.js';
import { compilePolicy } from '../../../src/policy/compile-policy.js';
import {
  FINDING_CODES,
  policyFindings,
  type PolicyFinding,
  type ScopesSupported,
} from '../../../src/policy/policy-findings.js';
import { YamlLocations } from '../../../src/policy/yaml-locations.js';
import { createTempDir, writeTextFile } from '../../kit/authz-harness.js';
import { captureIo } from '../../kit/capture-io.js';

// A scope misspelt in a route (`view:balence`) passed every check when the policy declares no known_scopes.
// `authz check-policy` now reads the issuers' discovery documents (never the server: not at start-up, not per
// request) and warns about route scopes none of them advertises in scopes_supported.

const BANK = 'https://bank-idp.example/';
const PARTNER = 'https://partner-idp.example/';
const METADATA = `${BANK}.well-known/openid-configuration`;

/** A policy whose issuers are found by discovery (or by a key set URL), and these routes. */
function policyText(routes: readonly string[], { knownScopes = '', partner = 'none' } = {}): string {
  return [
    'version: 1',
    'realm: bank-api',
    ...(knownScopes === '' ? [] : [`known_scopes: ${knownScopes}`]),
    'issuers:',
    `  - { issuer: '${BANK}', audiences: [api], discovery: true, algorithms: [RS256], require_typ: at+jwt }`,
    ...(partner === 'discovery'
      ? [
          `  - { issuer: '${PARTNER}', audiences: [api], openid_configuration: '${PARTNER}.well-known/openid-configuration', algorithms: [RS256], require_typ: at+jwt }`,
        ]
      : partner === 'jwks_uri'
        ? [
            `  - { issuer: '${PARTNER}', audiences: [api], jwks_uri: '${PARTNER}jwks', algorithms: [RS256], require_typ: at+jwt }`,
          ]
        : []),
    'routes:',
    ...routes.map((route) => `  - ${route}`),
    '',
  ].join('\n');
}

const ROUTES = [
  '{ methods: [GET], path: /balance, scopes: [view:balence] }', // line 6 without known_scopes
  '{ methods: [POST], path: /transfer, scopes: [transfer:funds] }',
  "{ methods: [GET, HEAD], path: '/app/**', public: true }",
];

function findings(text: string, scopesSupported?: Map<string, ScopesSupported>): string[] {
  const policy = compilePolicy(text, 'policy.yaml');
  return policyFindings(
    policy,
    new YamlLocations(text),
    scopesSupported === undefined ? {} : { scopesSupported },
  )
    .filter((f) => f.code !== 'scope_unused')
    .map((f) => `${f.path} ${f.code} ${f.level}`);
}

const ADVERTISED: ScopesSupported = { scopes: ['openid', 'view:balance', 'transfer:funds'] };

describe('policyFindings: route scopes no issuer advertises', () => {
  it('warns about a route scope not in the scopes_supported of the issuers of its service', () => {
    const text = policyText(ROUTES);
    const policy = compilePolicy(text, 'policy.yaml');
    const [finding] = policyFindings(policy, new YamlLocations(text), {
      scopesSupported: new Map([[BANK, ADVERTISED]]),
    });
    expect(finding).toEqual<PolicyFinding>({
      code: 'scope_not_advertised',
      level: 'warning',
      line: 6,
      column: 48,
      path: 'routes[0].scopes[0]',
      message: `scope "view:balence" is not in the scopes_supported of issuer "${BANK}": a typo, or a scope an identity provider grants without advertising it`,
      fix: FINDING_CODES.scope_not_advertised.fix,
    });
    expect(FINDING_CODES.scope_not_advertised).toMatchObject({ level: 'warning', route: true });
  });

  it('says nothing without the discovery documents: the server never reads them', () => {
    expect(findings(policyText(ROUTES))).toEqual([]);
  });

  it('checks against known_scopes instead, when the policy declares them', () => {
    const text = policyText(ROUTES, { knownScopes: '[view:balance, transfer:funds]' });
    expect(findings(text, new Map([[BANK, ADVERTISED]]))).toEqual([
      'routes[0].scopes[0] scope_unknown warning',
    ]);
  });

  it('a scope any trusted issuer advertises is fine', () => {
    const text = policyText(ROUTES, { partner: 'discovery' });
    const partner: ScopesSupported = { scopes: ['view:balence'] };
    expect(
      findings(
        text,
        new Map([
          [BANK, ADVERTISED],
          [PARTNER, partner],
        ]),
      ),
    ).toEqual([]);
  });

  it('names the trusted issuers whose scopes are not known, which may grant it', () => {
    const text = policyText(ROUTES, { partner: 'jwks_uri' });
    const [finding] = policyFindings(compilePolicy(text, 'policy.yaml'), new YamlLocations(text), {
      scopesSupported: new Map([[BANK, ADVERTISED]]),
    });
    expect(finding?.message).toBe(
      `scope "view:balence" is not in the scopes_supported of issuer "${BANK}", and the scopes of issuer "${PARTNER}" are not known: a typo, or a scope an identity provider grants without advertising it`,
    );
  });

  it('says nothing when no trusted issuer advertises its scopes', () => {
    const unread: ScopesSupported = { problem: 'its discovery document lists no scopes_supported' };
    expect(findings(policyText(ROUTES), new Map([[BANK, unread]]))).toEqual([
      'issuers[0] scopes_supported_unread notice',
    ]);
  });

  it('an issuer whose discovery document could not be read is a notice', () => {
    const unread = new Map<string, ScopesSupported>([
      [BANK, { problem: 'its discovery document could not be read (no answer within 3000 ms)' }],
    ]);
    const text = policyText(ROUTES);
    const [finding] = policyFindings(compilePolicy(text, 'policy.yaml'), new YamlLocations(text), {
      scopesSupported: unread,
    });
    expect(finding).toMatchObject({
      code: 'scopes_supported_unread',
      level: 'notice',
      path: 'issuers[0]',
      line: 4,
      message: `known_scopes is absent and issuer "${BANK}": its discovery document could not be read (no answer within 3000 ms), so route scopes are not checked against the scopes it grants`,
    });
  });
});

/** A scripted discovery endpoint: each URL answers with the given response (made per call). */
function fakeFetch(answers: Record<string, () => Response | Promise<Response>>): {
  fetch: FetchKeySet;
  urls: string[];
} {
  const urls: string[] = [];
  const fetch: FetchKeySet = async (url) => {
    urls.push(url.href);
    const answer = answers[url.href];
    if (answer === undefined) throw new TypeError('fetch failed', { cause: { code: 'ENOTFOUND' } });
    return answer();
  };
  return { fetch, urls };
}

const json = (body: unknown, status = 200) =>
  new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json' } });

describe('readScopesSupported: the discovery documents, bounded', () => {
  const policy = compilePolicy(policyText(ROUTES, { partner: 'discovery' }), 'policy.yaml');

  it('reads scopes_supported of each issuer found by discovery, and why not when it cannot', async () => {
    const { fetch, urls } = fakeFetch({
      [METADATA]: () => json({ issuer: BANK, scopes_supported: ['openid', 'view:balance'] }),
    });
    const read = await readScopesSupported(policy, fetch, 5000);
    expect(urls.sort()).toEqual([METADATA, `${PARTNER}.well-known/openid-configuration`].sort());
    expect(read).toEqual(
      new Map([
        [BANK, { scopes: ['openid', 'view:balance'] }],
        [
          PARTNER,
          {
            problem: `its discovery document could not be read (fetch failed: ENOTFOUND)`,
          },
        ],
      ]),
    );
  });

  it.each([
    [() => json({}, 404), `its discovery document could not be read (${METADATA} answered HTTP 404)`],
    [
      () => json({ issuer: PARTNER, scopes_supported: ['a'] }),
      `its discovery document at ${METADATA} names another issuer`,
    ],
    [() => json({ issuer: BANK }), 'its discovery document lists no scopes_supported'],
    [() => json({ issuer: BANK, scopes_supported: [1] }), 'its discovery document lists no scopes_supported'],
    [
      () => new Response('{ not json'),
      `its discovery document could not be read (${METADATA} is not valid JSON)`,
    ],
    [
      () => new Response('x'.repeat(600 * 1024)),
      `its discovery document could not be read (${METADATA} sent more than 524288 bytes)`,
    ],
  ])('%#: refuses a document that is not usable', async (answer, problem) => {
    const bankOnly = compilePolicy(policyText(ROUTES), 'policy.yaml');
    const read = await readScopesSupported(bankOnly, fakeFetch({ [METADATA]: answer }).fetch, 5000);
    expect(read.get(BANK)).toEqual({ problem });
  });

  it('waits at most the given time, even for a fetch that ignores its signal', async () => {
    const bankOnly = compilePolicy(policyText(ROUTES), 'policy.yaml');
    const never = fakeFetch({ [METADATA]: () => new Promise<Response>(() => undefined) });
    const started = Date.now();
    const read = await readScopesSupported(bankOnly, never.fetch, 50);
    expect(Date.now() - started).toBeLessThan(10_000); // bounded by the wait, not by the fetch
    expect(read.get(BANK)).toEqual({
      problem: 'its discovery document could not be read (no answer within 50 ms)',
    });
  });
});

describe('authz check-policy: scopes against the discovery documents', () => {
  let temp: { dir: string; remove: () => Promise<void> };
  let typo: string;
  let declared: string;

  beforeAll(async () => {
    temp = await createTempDir('authz-check-policy-scopes-');
    typo = await writeTextFile(temp.dir, 'typo.yaml', policyText(ROUTES));
    declared = await writeTextFile(
      temp.dir,
      'declared.yaml',
      policyText(ROUTES, { knownScopes: '[view:balence, transfer:funds]' }),
    );
  });

  afterAll(async () => {
    await temp?.remove();
  });

  async function check(fetch: FetchKeySet, ...args: string[]) {
    const capture = captureIo();
    const code = await checkPolicyCommand(args, capture.io, { fetchDocument: fetch });
    return { code, stdout: capture.stdout(), stderr: capture.stderr() };
  }

  it('prints the scope no issuer advertises with file:line:column and the fix (a warning: exit 0)', async () => {
    const idp = fakeFetch({
      [METADATA]: () => json({ issuer: BANK, scopes_supported: ['view:balance', 'transfer:funds'] }),
    });
    const { code, stdout, stderr } = await check(idp.fetch, typo);
    expect(stderr).toBe('');
    expect(stdout).toBe(
      [
        `${typo}:6:48: warning: routes[0].scopes[0]: scope "view:balence" is not in the scopes_supported of issuer "${BANK}": a typo, or a scope an identity provider grants without advertising it [scope_not_advertised]`,
        `  fix: ${FINDING_CODES.scope_not_advertised.fix}`,
        `${typo}: 3 routes, 1 warning: usable`,
        '',
      ].join('\n'),
    );
    expect(code).toBe(0);
    expect(idp.urls).toEqual([METADATA]);

    const strict = await check(idp.fetch, typo, '--strict', '--json');
    expect(strict.code).toBe(1);
    expect((JSON.parse(strict.stdout) as CheckPolicyReport).warnings.map((f) => f.code)).toEqual([
      'scope_not_advertised',
    ]);
  });

  it('reads nothing with --offline, or when the policy declares known_scopes', async () => {
    const idp = fakeFetch({ [METADATA]: () => json({ issuer: BANK, scopes_supported: ['view:balance'] }) });
    expect((await check(idp.fetch, typo, '--offline')).stdout).toBe(`${typo}: 3 routes, 0 warnings: ok\n`);
    expect((await check(idp.fetch, declared)).stdout).toBe(`${declared}: 3 routes, 0 warnings: ok\n`);
    expect(idp.urls).toEqual([]);
  });

  it('says, as a notice, when the discovery document cannot be read', async () => {
    const down = fakeFetch({ [METADATA]: () => json({ error: 'down' }, 503) });
    const { code, stdout } = await check(down.fetch, typo);
    expect(stdout).toContain(
      `${typo}:4:5: notice: issuers[0]: known_scopes is absent and issuer "${BANK}": its discovery document could not be read (${METADATA} answered HTTP 503), so route scopes are not checked against the scopes it grants [scopes_supported_unread]\n  fix: ${FINDING_CODES.scopes_supported_unread.fix}\n`,
    );
    expect(code).toBe(0);
  });
});
