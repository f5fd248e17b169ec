import { describe, expect, it } from 'vitest';
import type { ProofRequest } from '../../../src/authz/possession-proof.js';
import type { VerifiedToken } from '../../../src/authz/token-verification.js';
import { explainCommand } from '../../../src/policy-tools/explain-command.js';
import type { Explanation } from '../../../src/policy-tools/explain-request.js';
import { givenProofs } from '../../../src/policy-tools/given-claims.js';
import { parsePolicyTestFile } from '../../../src/policy-tools/policy-test-file.js';
import { testCommand } from '../../../src/policy-tools/test-command.js';
import { PolicyError } from '../../../src/policy/policy-error.js';
import { createTempDir, writeTextFile } from '../../kit/authz-harness.js';
import { captureIo, repoFile } from '../../kit/capture-io.js';

// The ops tools and sender-constrained tokens (docs/sender-constraints.md, docs/policy-tests.md): the
// request says how the token is presented and what it proves; the proofs are taken as valid.

const POLICY = repoFile('test/fixtures/ops/sender-constraints.yaml');
const TESTS = repoFile('test/fixtures/ops/sender-constraints.test.yaml');
const JKT = '0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I';
const X5T = 'bwcNeQfRJjgbfYS7yFfUWBkRgaKwf5QrXYpBO4C0A0A';
const ALGS = 'ES256 ES384 ES512 PS256 PS384 PS512 RS256 RS384 RS512 EdDSA Ed25519';

async function explain(...args: string[]): Promise<string> {
  const capture = captureIo();
  const code = await explainCommand([...args, '--now', '2026-11-27T12:00:00Z'], capture.io);
  expect(code).toBe(0);
  return capture.stdout();
}

async function explainJson(...args: string[]): Promise<Explanation> {
  return JSON.parse(await explain(...args, '--json')) as Explanation;
}

describe('givenProofs: what the ops verifiers answer prove()', () => {
  const token = (confirmation: VerifiedToken['confirmation']): VerifiedToken => ({
    issuer: 'https://idp.example/',
    subject: undefined,
    scopes: new Set(),
    acr: undefined,
    amr: new Set(),
    authTime: undefined,
    audiences: new Set(),
    headerClaims: new Map(),
    confirmation,
  });
  const request = (
    confirmation: VerifiedToken['confirmation'],
    said: { dpop?: boolean; certificate?: boolean },
  ): ProofRequest => ({
    token: token(confirmation),
    method: 'POST',
    uris: ['https://bank.example/transfer'],
    service: 'default',
    dpop: undefined,
    certificate: false,
    dpopProofs: said.dpop === true ? ['given'] : [],
    clientCertificate: said.certificate === true ? 'given' : undefined,
  });

  it('a proof said to be carried is valid, from the key cnf.jkt names, and never seen before', async () => {
    const proofs = givenProofs(undefined, request({ jkt: JKT }, { dpop: true }));
    expect(proofs).toEqual({
      dpop: { kind: 'valid', thumbprint: JKT, claim: expect.any(Function) },
      certificate: { kind: 'none' },
    });
    if (proofs.dpop.kind === 'valid') expect(await proofs.dpop.claim()).toEqual({ kind: 'fresh' });
  });

  it('a certificate said to be presented is the one cnf["x5t#S256"] names', () => {
    expect(givenProofs(undefined, request({ x5tS256: X5T }, { certificate: true }))).toEqual({
      dpop: { kind: 'none' },
      certificate: { kind: 'present', thumbprint: X5T },
    });
  });

  it('with a token bound to nothing, a thumbprint no key or certificate has', () => {
    const proofs = givenProofs(undefined, request({}, { dpop: true, certificate: true }));
    expect(proofs.dpop.kind).toBe('valid');
    const thumbprint = (proofs.dpop as { thumbprint: string }).thumbprint;
    expect(thumbprint).not.toMatch(/^[A-Za-z0-9_-]+$/);
    expect(proofs.certificate).toEqual({ kind: 'present', thumbprint });
  });

  it('nothing said, nothing presented', () => {
    expect(givenProofs(undefined, request({ jkt: JKT, x5tS256: X5T }, {}))).toEqual({
      dpop: { kind: 'none' },
      certificate: { kind: 'none' },
    });
  });
});

describe('authz explain: schemes, proofs and the sender constraint in force', () => {
  it('--scheme dpop --dpop-proof with a DPoP-bound token: allowed, and says what was taken as given', async () => {
    const output = await explain(
      ...['--policy', POLICY, '--method', 'POST', '--path', '/transfer', '--scheme', 'DPoP', '--dpop-proof'],
      ...['--claims', JSON.stringify({ scope: 'transfer:funds', cnf: { jkt: JKT } })],
    );

    expect(output).toContain(
      [
        'request    POST /transfer',
        '           Authorization: DPoP (the token with the DPoP scheme)',
        "           DPoP proof: given as valid, signed with the token's key (not checked)",
      ].join('\n'),
    );
    expect(output).toContain(
      [
        '           schemes: DPoP',
        '           sender_constraint for https://idp.example/: dpop required (route), mtls allowed (top level)',
      ].join('\n'),
    );
    expect(output).toContain(`           bound:     DPoP key, jkt ${JKT}\n`);
    expect(output).toContain('decision   allow\n');
  });

  it('the same token without --dpop-proof: 401 invalid_dpop_proof under DPoP', async () => {
    const explanation = await explainJson(
      ...['--policy', POLICY, '--method', 'POST', '--path', '/transfer', '--scheme', 'dpop'],
      ...['--claims', JSON.stringify({ scope: 'transfer:funds', cnf: { jkt: JKT } })],
    );

    expect(explanation.request).toMatchObject({
      scheme: 'DPoP',
      dpop_proof: false,
      client_certificate: false,
    });
    expect(explanation.decision).toMatchObject({ kind: 'deny', code: 'dpop_proof_missing' });
    expect(explanation.response).toMatchObject({ kind: 'deny', status: 401 });
    expect((explanation.response as { headers: Record<string, string> }).headers['www-authenticate']).toMatch(
      /^DPoP realm="bank-api", error="invalid_dpop_proof"/,
    );
  });

  it('a proof with a token bound to no key is refused as a binding', async () => {
    const explanation = await explainJson(
      ...['--policy', POLICY, '--method', 'GET', '--path', '/balance', '--scheme', 'dpop', '--dpop-proof'],
      ...['--claims', '{"scope": "view:balance"}'],
    );

    expect(explanation.decision).toMatchObject({ kind: 'deny', code: 'binding_token_not_dpop_bound' });
    expect(explanation.token.binding).toEqual({});
  });

  it('--client-cert with a certificate-bound token on a route requiring DPoP or mTLS: allowed as Bearer', async () => {
    const claims = JSON.stringify({ scope: 'pay', cnf: { 'x5t#S256': X5T } });
    const output = await explain(
      ...['--policy', POLICY, '--method', 'POST', '--path', '/payments', '--client-cert'],
      ...['--claims', claims],
    );

    expect(output).toContain(
      "           client certificate: given as the token's, on the TLS connection (not checked)\n",
    );
    expect(output).toContain('           schemes: Bearer, DPoP\n');
    expect(output).toContain(`           bound:     client certificate, x5t#S256 ${X5T}\n`);
    expect(output).toContain('decision   allow\n');

    const without = await explainJson(
      ...['--policy', POLICY, '--method', 'POST', '--path', '/payments', '--claims', claims],
    );
    expect(without.decision).toMatchObject({ kind: 'deny', code: 'binding_certificate_missing' });
  });

  it('without a token, the constraint of every issuer the service trusts, each member with its level', async () => {
    const temp = await createTempDir('authz-explain-sc-');
    try {
      const policy = await writeTextFile(
        temp.dir,
        'policy.yaml',
        [
          'version: 1',
          'realm: bank-api',
          'public_origin: https://api.example',
          'issuers:',
          '  - { issuer: https://idp.example/, audiences: [a], jwks_uri: https://idp.example/jwks, algorithms: [ES256] }',
          '  - issuer: https://partner.example/',
          '    audiences: [p]',
          '    jwks_uri: https://partner.example/jwks',
          '    algorithms: [ES256]',
          '    sender_constraint: { dpop: required, mtls: allowed }',
          'services:',
          '  - name: bank',
          '    hosts: [bank.example]',
          '    sender_constraint: { mtls: off }',
          '    routes:',
          '      - { methods: [POST], path: /transfer, scopes: [t], sender_constraint: { dpop: allowed } }',
          '      - { methods: [GET], path: /balance, scopes: [b] }',
          '',
        ].join('\n'),
      );
      const transfer = await explainJson(
        ...['--policy', policy, '--method', 'POST', '--path', '/transfer', '--host', 'bank.example'],
      );
      expect(transfer.route?.requires).toMatchObject({
        schemes: ['Bearer', 'DPoP'],
        sender_constraint: [
          {
            issuer: 'https://idp.example/',
            dpop: { value: 'allowed', from: 'route' },
            mtls: { value: 'off', from: 'service' },
          },
          {
            issuer: 'https://partner.example/',
            dpop: { value: 'allowed', from: 'route' },
            mtls: { value: 'off', from: 'service' },
          },
        ],
      });

      const balance = await explain(
        ...['--policy', policy, '--method', 'GET', '--path', '/balance', '--host', 'bank.example'],
      );
      expect(balance).toContain(
        [
          '           schemes: Bearer, DPoP',
          '           sender_constraint for https://idp.example/: dpop off (default), mtls off (service)',
          '           sender_constraint for https://partner.example/: dpop required (issuer), mtls off (service)',
        ].join('\n'),
      );
      // The token's issuer alone, when the service trusts it.
      const partner = await explainJson(
        ...['--policy', policy, '--method', 'GET', '--path', '/balance', '--host', 'bank.example'],
        ...['--claims', '{"iss": "https://partner.example/", "scope": "b"}'],
      );
      expect(partner.route?.requires.sender_constraint?.map((c) => c.issuer)).toEqual([
        'https://partner.example/',
      ]);
      expect(partner.decision).toMatchObject({ kind: 'deny', code: 'binding_required' });
      // RFC 9449 section 7.1: the error under the scheme used, a bare challenge for the other.
      expect(partner.response).toMatchObject({
        www_authenticate: [
          'Bearer realm="bank-api", error="invalid_token", error_description="this API requires a DPoP-bound token here"',
          `DPoP realm="bank-api", algs="${ALGS}"`,
        ],
      });
      const text = await explain(
        ...['--policy', policy, '--method', 'GET', '--path', '/balance', '--host', 'bank.example'],
        ...['--claims', '{"iss": "https://partner.example/", "scope": "b"}'],
      );
      expect(text).toContain(
        '           www-authenticate: Bearer realm="bank-api", error="invalid_token", error_description="this API requires a DPoP-bound token here"\n' +
          `           www-authenticate: DPoP realm="bank-api", algs="${ALGS}"\n`,
      );
    } finally {
      await temp.remove();
    }
  });

  it('shows the findings about sender constraints of the route and of its service', async () => {
    const temp = await createTempDir('authz-explain-sc-');
    try {
      const policy = await writeTextFile(
        temp.dir,
        'policy.yaml',
        [
          'version: 1',
          'realm: bank-api',
          'public_origin: [https://bank.example, http://bank.example]',
          'sender_constraint: { dpop: allowed }',
          'issuers:',
          '  - issuer: https://idp.example/',
          '    audiences: [a]',
          '    jwks_uri: https://idp.example/jwks',
          '    algorithms: [ES256]',
          '    require_typ: at+jwt',
          '    sender_constraint: { dpop: required }',
          'routes:',
          '  - { methods: [GET], path: /balance, scopes: [b] }',
          '',
        ].join('\n'),
      );
      const explanation = await explainJson(...['--policy', policy, '--method', 'GET', '--path', '/balance']);

      expect(explanation.findings.map((f) => `${f.path} ${f.code}`)).toEqual([
        'public_origin[1] public_origin_cleartext',
        'sender_constraint issuer_sender_constraint_weakened',
      ]);
    } finally {
      await temp.remove();
    }
  });

  it('refuses --scheme other than bearer or dpop, and proofs without a token', async () => {
    const base = ['--policy', POLICY, '--method', 'GET', '--path', '/balance'];
    const run = (...args: string[]) => explainCommand(args, captureIo().io);

    await expect(run(...base, '--claims', '{}', '--scheme', 'basic')).rejects.toThrow(
      '--scheme: "basic" is not bearer or dpop',
    );
    await expect(run(...base, '--dpop-proof')).rejects.toThrow('--dpop-proof need --token or --claims');
    await expect(run(...base, '--scheme', 'dpop', '--client-cert')).rejects.toThrow(
      '--scheme, --client-cert need --token or --claims',
    );
  });

  it('names the DPoP algorithms of the service in the challenge', async () => {
    const explanation = await explainJson(...['--policy', POLICY, '--method', 'POST', '--path', '/transfer']);
    expect((explanation.response as { headers: Record<string, string> }).headers['www-authenticate']).toBe(
      `DPoP realm="bank-api", algs="${ALGS}"`,
    );
  });
});

describe('authz test: scheme, dpop_proof and client_certificate', () => {
  function problemsOf(text: string): string[] {
    try {
      parsePolicyTestFile(text, 't.yaml');
    } catch (error) {
      expect(error).toBeInstanceOf(PolicyError);
      return (error as PolicyError).problems.map((p) => `${p.line}:${p.column} ${p.path}: ${p.message}`);
    }
    throw new Error('the test file parsed');
  }

  it('reads them into the request, and a challenge scheme into the expectation', () => {
    const file = parsePolicyTestFile(
      [
        'policy: p.yaml',
        'cases:',
        '  - request: { method: POST, path: /t, scheme: dpop, dpop_proof: true, client_certificate: true }',
        '    token: { scope: t }',
        '    expect: { status: 401, scheme: DPoP }',
        '  - request: { method: GET, path: /b, dpop_proof: false }',
        '    token: { scope: b }',
        '    expect: allow',
        '',
      ].join('\n'),
      't.yaml',
    );

    expect(file.cases[0]?.request).toEqual({
      method: 'POST',
      target: '/t',
      scheme: 'DPoP',
      dpopProof: true,
      clientCertificate: true,
    });
    expect(file.cases[0]?.expect).toMatchObject({ kind: 'deny', status: 401, scheme: 'DPoP' });
    expect(file.cases[1]?.request).toEqual({ method: 'GET', target: '/b' });
  });

  it('refuses other values, and the keys on a case without a token', () => {
    expect(
      problemsOf(
        [
          'policy: p.yaml',
          'cases:',
          '  - request: { method: GET, path: /b, scheme: Basic, dpop_proof: yes, client_certificate: 1 }',
          '    token: { scope: b }',
          '    expect: { status: 401, scheme: mac }',
          '  - request: { method: GET, path: /b, scheme: DPoP, dpop_proof: true }',
          '    expect: allow',
          '',
        ].join('\n'),
      ),
    ).toEqual([
      '3:39 cases[0].request.scheme: must be Bearer or DPoP',
      '3:54 cases[0].request.dpop_proof: must be true or false',
      '3:71 cases[0].request.client_certificate: must be true or false',
      '5:28 cases[0].expect.scheme: must be Bearer or DPoP',
      '6:39 cases[1].request.scheme: needs a token: scheme is about how the token is presented',
      '6:53 cases[1].request.dpop_proof: needs a token: dpop_proof is about how the token is presented',
    ]);
  });

  it('runs the sender-constraint fixture: every case passes, and --json names what the request carries', async () => {
    const capture = captureIo();
    const code = await testCommand([TESTS, '--json'], capture.io);
    const report = JSON.parse(capture.stdout()) as {
      ok: boolean;
      passed: number;
      failed: number;
      files: { results: { name: string; request: Record<string, unknown> }[] }[];
    };

    expect(code).toBe(0);
    expect(report).toMatchObject({ ok: true, passed: 13, failed: 0 });
    const results = report.files[0]?.results ?? [];
    expect(results.find((r) => r.name === 'transfer with a DPoP-bound token and its proof')?.request).toEqual(
      {
        method: 'POST',
        target: '/transfer',
        scheme: 'DPoP',
        dpop_proof: true,
      },
    );
    expect(
      results.find((r) => r.name === 'payments with a certificate-bound token over its certificate')?.request,
    ).toEqual({ method: 'POST', target: '/payments', client_certificate: true });
  });

  it('never warns about cnf as an unread claim', async () => {
    const capture = captureIo();
    const code = await testCommand([TESTS, '--strict'], capture.io);

    expect(code).toBe(0);
    expect(capture.stdout()).not.toContain('claim_unread');
  });
});
