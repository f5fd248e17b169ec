import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UsageError } from '../../../src/args/usage-error.js';
import { explainCommand } from '../../../src/policy-tools/explain-command.js';
import type { Explanation } from '../../../src/policy-tools/explain-request.js';
import { PolicyError } from '../../../src/policy/policy-error.js';
import { AUDIENCE, createTempDir, ISSUER, writeTextFile } from '../../kit/authz-harness.js';
import { captureIo, OPS_NOW, repoFile } from '../../kit/capture-io.js';
import { demoPolicyText } from '../../kit/inline-policy.js';
import { GATEWAY_DIRECTORY_FILES, writeGatewayDirectory } from '../../kit/policy-directory-files.js';
import { generateTestKey, signTestToken, type TestKey } from '../../kit/tokens.js';

const DEMO = repoFile('policy.yaml');
const REPORT_ONLY = repoFile('test/fixtures/ops/report-only.yaml');
const NOW_SECONDS = OPS_NOW / 1000;
/** The RFC 7638 thumbprint of the key a DPoP-bound test token is bound to (its cnf.jkt). */
const JKT = '0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I';
/** How the demo's POST /transfer is asked: a DPoP-bound token, sent with the DPoP scheme and a proof. */
const WITH_PROOF = ['--scheme', 'dpop', '--dpop-proof'];
const DEMO_ALGS = 'ES256 ES384 ES512 PS256 PS384 PS512 RS256 RS384 RS512 EdDSA Ed25519';

async function explain(...args: string[]): Promise<string> {
  const capture = captureIo();
  const code = await explainCommand([...args, '--now', '2026-11-27T12:00:00Z'], capture.io);
  expect(code).toBe(0);
  expect(capture.stderr()).toBe('');
  return capture.stdout();
}

async function explainJson(...args: string[]): Promise<Explanation> {
  return JSON.parse(await explain(...args, '--json')) as Explanation;
}

describe('authz explain on the demo policy (--claims)', () => {
  it('an allowed request: route, requirements, the claims as given, and the upstream headers', async () => {
    const output = await explain(
      ...['--policy', DEMO, '--method', 'GET', '--path', '/balance'],
      ...['--claims', '{"sub": "alice", "scope": "view:balance"}'],
    );
    expect(output).toBe(
      [
        'request    GET /balance',
        'route      routes[0] (line 36): GET /balance',
        '           the first route in file order that lists method GET and whose pattern matches /balance',
        'requires   scopes: view:balance (all of them)',
        '           login: any',
        '           schemes: Bearer, DPoP',
        '           sender_constraint for http://127.0.0.1:9000: dpop allowed (top level), mtls allowed (top level)',
        '           mode: enforce',
        'token      claims given, not verified: no signature, exp, nbf, iat, lifetime or aud was checked',
        '           issuer:    http://127.0.0.1:9000',
        '           sub:       alice',
        '           scopes:    view:balance',
        '           acr:       -',
        '           amr:       -',
        '           auth_time: -',
        '           bound:     no (a bearer token: no cnf)',
        '           limits:    max_token_lifetime 1d, clock_tolerance 30s, jwks_max_stale 1d, jwks_fetch_wait 500ms',
        'decision   allow',
        'response   passed to the upstream, which answers',
        '           sets x-auth-subject: alice',
        '           sets x-auth-scopes: view:balance',
        '',
      ].join('\n'),
    );
  });

  it('403 insufficient_scope: the missing scope and the exact challenge', async () => {
    const output = await explain(
      ...['--policy', DEMO, '--method', 'POST', '--path', '/transfer', ...WITH_PROOF],
      ...['--claims', JSON.stringify({ scope: 'view:balance', cnf: { jkt: JKT } })],
    );
    expect(output).toContain(
      [
        'request    POST /transfer',
        '           Authorization: DPoP (the token with the DPoP scheme)',
        "           DPoP proof: given as valid, signed with the token's key (not checked)",
        'route      routes[1] (line 40): POST /transfer',
        '           the first route in file order that lists method POST and whose pattern matches /transfer',
        '           skipped routes[0] (line 36, GET /balance): method POST is not one of GET',
        'requires   scopes: transfer:funds (all of them)',
        '           login: acr one of urn:bank:mfa; amr including mfa; auth_time at most 600 s ago',
        '           schemes: DPoP',
        '           sender_constraint for http://127.0.0.1:9000: dpop required (route), mtls allowed (top level)',
        '           mode: enforce',
      ].join('\n'),
    );
    expect(output).toContain(`           bound:     DPoP key, jkt ${JKT}\n`);
    expect(output).toContain(
      [
        'decision   deny insufficient_scope: the token lacks a required scope: transfer:funds',
        'response   403',
        '           content-type: application/json',
        '           cache-control: no-store',
        `           www-authenticate: DPoP realm="bank-api", error="insufficient_scope", scope="transfer:funds", algs="${DEMO_ALGS}"`,
        '           body: {"error":"insufficient_scope","error_description":"the token lacks a required scope: transfer:funds"}',
        '',
      ].join('\n'),
    );
  });

  it('401 insufficient_user_authentication with acr_values, and the login facts', async () => {
    const claims = {
      scope: 'transfer:funds',
      acr: 'urn:bank:pwd',
      amr: ['pwd'],
      auth_time: NOW_SECONDS - 120,
      cnf: { jkt: JKT },
    };
    const output = await explain(
      ...['--policy', DEMO, '--method', 'POST', '--path', '/transfer', ...WITH_PROOF],
      ...['--claims', JSON.stringify(claims)],
    );
    expect(output).toContain('           acr:       urn:bank:pwd\n           amr:       pwd\n');
    expect(output).toContain('           auth_time: 2026-11-27T11:58:00Z (120 s before now)\n');
    expect(output).toContain(
      'decision   deny insufficient_user_authentication: a stronger authentication is required\n' +
        'response   401\n',
    );
    expect(output).toContain(
      '           www-authenticate: DPoP realm="bank-api", error="insufficient_user_authentication", ' +
        `error_description="a stronger authentication is required", acr_values="urn:bank:mfa", algs="${DEMO_ALGS}"\n`,
    );
  });

  it('no route: every route tried, with why it did not match; 403 without a challenge', async () => {
    const output = await explain('--policy', DEMO, '--method', 'DELETE', '--path', '/balance?x=1');
    expect(output).toBe(
      [
        'request    DELETE /balance?x=1',
        'route      none: no route has both a method and a pattern matching this request',
        '           skipped routes[0] (line 36, GET /balance): method DELETE is not one of GET',
        '           skipped routes[1] (line 40, POST /transfer): method DELETE is not one of POST',
        '           skipped routes[2] (line 50, * /healthz): path /balance does not match /healthz',
        '           skipped routes[3] (line 55, GET /accounts/{id}/balance): method DELETE is not one of GET',
        '           skipped routes[4] (line 58, GET,HEAD /app/**): method DELETE is not one of GET, HEAD',
        'token      none presented (no Authorization header)',
        'decision   deny no_route: no route allows this request',
        'response   403',
        '           content-type: application/json',
        '           cache-control: no-store',
        '           body: {"error":"access_denied","error_description":"no route allows this request"}',
        '',
      ].join('\n'),
    );
  });

  it('a public route: allowed, and a given token is not looked at', async () => {
    const output = await explain(
      ...['--policy', DEMO, '--method', 'POST', '--path', '/healthz'],
      ...['--claims', '{"iss": "https://untrusted.example/"}'],
    );
    expect(output).toContain(
      'route      routes[2] (line 50): * /healthz\n' +
        '           the first route in file order that applies to every method and whose pattern matches /healthz\n',
    );
    expect(output).toContain('requires   nothing: a public route, no token needed\n');
    expect(output).toContain('           not looked at: a public route needs no token\n');
    expect(output).toContain(
      'decision   allow\nresponse   passed to the upstream, which answers\n' +
        '           removes x-auth-subject (any client copy)\n           removes x-auth-scopes (any client copy)\n',
    );
  });

  it('a path refused before matching', async () => {
    const output = await explain('--policy', DEMO, '--method', 'GET', '--path', '/accounts/../balance');
    expect(output).toContain('route      none tried: the path cannot be matched safely (dot_segment)\n');
    expect(output).toContain('response   400\n');
  });

  it('--json carries the same facts', async () => {
    const explanation = await explainJson(
      ...['--policy', DEMO, '--method', 'POST', '--path', '/transfer', ...WITH_PROOF],
      ...[
        '--claims',
        JSON.stringify({ scope: 'transfer:funds', acr: 'urn:bank:mfa', amr: ['mfa'], cnf: { jkt: JKT } }),
      ],
    );
    expect(explanation.request).toMatchObject({
      scheme: 'DPoP',
      dpop_proof: true,
      client_certificate: false,
    });
    expect(explanation.route).toMatchObject({
      index: 1,
      line: 40,
      name: 'POST /transfer',
      methods: ['POST'],
      requires: {
        public: false,
        scopes: ['transfer:funds'],
        authentication: { acr_values: ['urn:bank:mfa'], amr: ['mfa'], max_age: 600 },
        mode: 'enforce',
        schemes: ['DPoP'],
        sender_constraint: [
          {
            issuer: 'http://127.0.0.1:9000',
            dpop: { value: 'required', from: 'route' },
            mtls: { value: 'allowed', from: 'service' },
          },
        ],
      },
    });
    expect(explanation.token).toMatchObject({
      presented: 'claims',
      verified: false,
      acr: 'urn:bank:mfa',
      binding: { jkt: JKT },
    });
    expect(explanation.decision).toMatchObject({ kind: 'deny', code: 'insufficient_user_authentication' });
    expect(explanation.response).toMatchObject({ kind: 'deny', status: 401 });
    expect((explanation.response as { headers: Record<string, string> }).headers['www-authenticate']).toBe(
      'DPoP realm="bank-api", error="insufficient_user_authentication", ' +
        `error_description="the authentication must be at most 600 seconds old", max_age="600", algs="${DEMO_ALGS}"`,
    );
  });
});

describe('authz explain on a report-only route', () => {
  it('allows, and shows the denial that was logged and the response it would have had', async () => {
    const args = ['--policy', REPORT_ONLY, '--method', 'GET', '--path', '/statements'];
    const output = await explain(...args, '--claims', '{"sub": "bob", "scope": "view:balance"}');
    expect(output).toContain(
      '           mode: report-only (a denial is logged as would_deny and the request allowed)\n',
    );
    expect(output).toContain(
      [
        'decision   allow, because the route is report-only: it would deny insufficient_scope: the token lacks a required scope: view:statements',
        'response   passed to the upstream, which answers',
        '           sets x-auth-subject: bob',
        '           sets x-auth-scopes: view:balance',
        'would send 403',
        '           content-type: application/json',
        '           cache-control: no-store',
        '           www-authenticate: Bearer realm="bank-api", error="insufficient_scope", scope="view:statements"',
        '           body: {"error":"insufficient_scope","error_description":"the token lacks a required scope: view:statements"}',
        '           (report-only: logged, not sent)',
        '',
      ].join('\n'),
    );
    const explanation = await explainJson(...args);
    expect(explanation.decision).toEqual({
      kind: 'allow',
      would_deny: { code: 'credentials_missing', description: 'a bearer token is required' },
    });
    expect(explanation.would_deny_response).toMatchObject({ kind: 'deny', status: 401 });
  });
});

describe('authz explain --token (verified with a jwks_file key) against --claims', () => {
  let temp: { dir: string; remove: () => Promise<void> };
  let key: TestKey;
  let policyFile: string;

  beforeAll(async () => {
    temp = await createTempDir('authz-explain-');
    key = await generateTestKey('explain-key');
    await writeTextFile(temp.dir, 'jwks.json', JSON.stringify({ keys: [key.publicJwk] }));
    policyFile = await writeTextFile(
      temp.dir,
      'policy.yaml',
      demoPolicyText(['{ methods: [GET], path: /balance, scopes: [view:balance] }'], {
        keys: { jwksFile: 'jwks.json' },
      }),
    );
  });

  afterAll(async () => {
    await temp?.remove();
  });

  const token = (claims: Record<string, unknown> = {}) =>
    signTestToken(key, { issuer: ISSUER, audience: AUDIENCE }, { now: NOW_SECONDS, claims });

  it('verifies the token for real and never prints it', async () => {
    const jwt = await token({ sub: 'alice', scope: 'view:balance' });
    const output = await explain(
      '--policy',
      policyFile,
      '--method',
      'GET',
      '--path',
      '/balance',
      '--token',
      jwt,
    );
    expect(output).toContain(
      `token      verified with the keys of ${ISSUER} (signature, exp, nbf, iat, lifetime, aud)\n`,
    );
    expect(output).toContain('decision   allow\n');
    expect(output).not.toContain(jwt);
    expect(output).not.toContain(jwt.split('.')[2]!);

    const claims = await explain(
      ...['--policy', policyFile, '--method', 'GET', '--path', '/balance'],
      ...['--claims', '{"sub": "alice", "scope": "view:balance"}'],
    );
    expect(claims).toContain(
      'token      claims given, not verified: no signature, exp, nbf, iat, lifetime or aud was checked\n',
    );
    // Apart from how far the token is trusted, the two explanations agree.
    const withoutToken = (text: string) => text.split('\n').filter((line) => !line.startsWith('token'));
    expect(withoutToken(claims)).toEqual(withoutToken(output));
  });

  it('explains a refused token: reason, the unverified claims, the 401 challenge', async () => {
    const jwt = await token({ sub: 'alice', exp: NOW_SECONDS - 3600 });
    const explanation = await explainJson(
      ...['--policy', policyFile, '--method', 'GET', '--path', '/balance', '--token', jwt],
    );
    expect(explanation.token).toEqual({
      presented: 'token',
      verified: false,
      note: 'the token was refused',
      refused: { reason: 'token_expired', description: 'the token has expired' },
      unverified: { iss: ISSUER, sub: 'alice', exp: NOW_SECONDS - 3600 },
      limits: {
        clock_tolerance: 30,
        max_token_lifetime: 86_400,
        jwks_max_stale: 86_400,
        jwks_fetch_wait_ms: 500,
      },
    });
    expect(explanation.response).toMatchObject({ kind: 'deny', status: 401 });
    expect(JSON.stringify(explanation)).not.toContain(jwt);

    const output = await explain(
      '--policy',
      policyFile,
      '--method',
      'GET',
      '--path',
      '/balance',
      '--token',
      jwt,
    );
    expect(output).toContain(
      'token      the token was refused: token_expired: the token has expired\n' +
        `           unverified claims: iss ${ISSUER}, sub alice, exp 2026-11-27T11:00:00Z\n` +
        '           limits:    max_token_lifetime 1d, clock_tolerance 30s, jwks_max_stale 1d, jwks_fetch_wait 500ms\n',
    );
  });

  it('a signature from another key is refused', async () => {
    const other = await generateTestKey('explain-key');
    const jwt = await signTestToken(other, { issuer: ISSUER, audience: AUDIENCE }, { now: NOW_SECONDS });
    const explanation = await explainJson(
      '--policy',
      policyFile,
      '--method',
      'GET',
      '--path',
      '/balance',
      '--token',
      jwt,
    );
    expect(explanation.token.refused?.reason).toBe('token_signature_invalid');
  });
});

describe('authz explain arguments', () => {
  const base = ['--policy', DEMO, '--method', 'GET', '--path', '/balance'];
  const run = (...args: string[]) => explainCommand(args, captureIo().io);

  it('refuses usage errors', async () => {
    await expect(run('--method', 'GET', '--path', '/')).rejects.toThrow(/--policy FILE is required/);
    await expect(run('--policy', DEMO, '--path', '/')).rejects.toThrow(/--method METHOD is required/);
    await expect(run('--policy', DEMO, '--method', 'GET')).rejects.toThrow(/--path PATH is required/);
    await expect(run(...base, '--token', 'a.b.c', '--claims', '{}')).rejects.toThrow(/not both/);
    await expect(run(...base, '--claims', '{scope}')).rejects.toThrow(/not valid JSON/);
    await expect(run(...base, '--claims', '["view:balance"]')).rejects.toThrow(/a JSON object/);
    await expect(run(...base, '--now', 'yesterday')).rejects.toThrow(UsageError);
    await expect(run(...base, 'extra')).rejects.toThrow(UsageError);
  });

  it('throws PolicyError for a policy that cannot be used (exit 1 from main)', async () => {
    await expect(
      run('--policy', repoFile('test/fixtures/ops/broken.yaml'), '--method', 'GET', '--path', '/'),
    ).rejects.toThrow(PolicyError);
  });
});

describe('authz explain --policy DIR', () => {
  let folder = '';
  let remove: () => Promise<void> = async () => undefined;
  beforeAll(async () => {
    ({ folder, remove } = await writeGatewayDirectory());
  });
  afterAll(() => remove());

  it("names the deciding service's file and owner, and shows that file's findings", async () => {
    const healthz = ['--policy', folder, '--method', 'GET', '--path', '/healthz', '--host', 'bank.example'];
    const text = await explain(...healthz);
    expect(text).toContain(
      'service    bank (bank.yaml line 3, owner team-bank, realm bank-api): it lists host bank.example\n',
    );
    expect(text).toContain(
      'findings   warning public_any_method (bank.yaml line 8): public route * /healthz',
    );
    const json = await explainJson(...healthz);
    expect(json.service).toMatchObject({
      name: 'bank',
      file: `${folder}/bank.yaml`,
      owner: 'team-bank',
      line: 3,
    });
    expect(json.findings.map((f) => [f.file, f.code])).toEqual([
      [`${folder}/bank.yaml`, 'public_any_method'],
    ]);
  });

  it("does not show another file's finding at the same path", async () => {
    // bank.yaml's finding is at services[0].routes[1]: so is statements.yaml's GET /statements.
    const other = await writeGatewayDirectory({
      'statements.yaml': GATEWAY_DIRECTORY_FILES['statements.yaml']!.replace(
        '/balance, scopes: [view:statements] }\n',
        '/balance, scopes: [view:statements] }\n      - { methods: [GET], path: /statements, scopes: [view:statements] }\n',
      ),
    });
    try {
      const json = await explainJson(
        ...['--policy', other.folder, '--method', 'GET', '--path', '/statements'],
        ...['--host', 'statements.example'],
      );
      expect(json.service).toMatchObject({ name: 'statements', owner: 'team-statements' });
      expect(json.route).toMatchObject({ path: 'services[0].routes[1]' });
      expect(json.findings).toEqual([]);
      const bank = await explainJson(
        ...['--policy', other.folder, '--method', 'GET', '--path', '/healthz', '--host', 'bank.example'],
      );
      expect(bank.route).toMatchObject({ path: 'services[0].routes[1]' });
      expect(bank.findings.map((f) => f.code)).toEqual(['public_any_method']);
    } finally {
      await other.remove();
    }
  });

  it('a directory with a refused file cannot be used', async () => {
    const broken = await writeGatewayDirectory({ 'bank.yaml': 'owner: team-bank\nservices: [' });
    try {
      await expect(
        explainCommand(['--policy', broken.folder, '--method', 'GET', '--path', '/'], captureIo().io),
      ).rejects.toThrow(PolicyError);
    } finally {
      await broken.remove();
    }
  });
});
