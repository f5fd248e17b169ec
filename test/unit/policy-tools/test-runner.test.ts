import { describe, expect, it } from 'vitest';
import { UsageError } from '../../../src/args/usage-error.js';
import { parsePolicyTestFile } from '../../../src/policy-tools/policy-test-file.js';
import { PolicyError } from '../../../src/policy/policy-error.js';
import { runPolicyTests } from '../../../src/policy-tools/run-policy-tests.js';
import { testCommand } from '../../../src/policy-tools/test-command.js';
import { compileRoutes } from '../../kit/inline-policy.js';
import { captureIo, OPS_NOW, repoFile } from '../../kit/capture-io.js';
import { writeGatewayDirectory } from '../../kit/policy-directory-files.js';

const DEMO_TESTS = repoFile('policy.test.yaml');
const REPORT_ONLY_TESTS = repoFile('test/fixtures/ops/report-only.test.yaml');
const FAILING = repoFile('test/fixtures/ops/failing.test.yaml');
const INVALID = repoFile('test/fixtures/ops/invalid.test.yaml');
const MISSING_POLICY = repoFile('test/fixtures/ops/missing-policy.test.yaml');

async function runTests(...files: string[]) {
  const capture = captureIo();
  const code = await testCommand(files, capture.io);
  return { code, stdout: capture.stdout(), stderr: capture.stderr() };
}

/** The problems of a test file that does not parse, as `line:column path: message`. */
function problemsOf(text: string): string[] {
  try {
    parsePolicyTestFile(text, 't.yaml');
  } catch (error) {
    expect(error).toBeInstanceOf(PolicyError);
    expect((error as PolicyError).code).toMatch(/^ERR_POLICY_TEST_/);
    return (error as PolicyError).problems.map((p) => `${p.line}:${p.column} ${p.path}: ${p.message}`);
  }
  throw new Error('the test file parsed');
}

describe('authz test', () => {
  it('passes the shipped policy.test.yaml and the report-only tests: exit 0 and the summary', async () => {
    const { code, stdout, stderr } = await runTests(DEMO_TESTS, REPORT_ONLY_TESTS);
    expect(stderr).toBe('');
    expect(code).toBe(0);
    expect(stdout).not.toContain('FAIL');
    expect(stdout).toMatch(/\n48 passed, 0 failed\n$/);
    expect(stdout).toContain(`${DEMO_TESTS}: 43 cases against policy.yaml, clock 2026-11-27T12:00:00Z\n`);
  });

  it('prints a table of passes and failures within 120 columns, each failure in full with file:line, and exits 1', async () => {
    const { code, stdout } = await runTests(FAILING);
    expect(code).toBe(1);
    expect(stdout).toBe(
      [
        `${FAILING}: 4 cases against policy.yaml, clock 2026-11-27T12:00:00Z`,
        'CASE                                                   EXPECTED                     ACTUAL                       RESULT',
        'balance with view:balance                              allow                        allow                        PASS',
        'transfer with view:balance (wrongly expected to pass)  allow                        403 insufficient_scope sco…  FAIL',
        // Cut at the end, both would read `403 insufficient_scope sco…`: cut where they differ instead.
        'transfer names the wrong scope                         …scope scope="view:balance"  …scope scope="transfer:fun…  FAIL',
        'a report-only expectation on an enforced route         allow (report-only: would …  401 unauthorized             FAIL',
        `${FAILING}:9: FAIL transfer with view:balance (wrongly expected to pass)`,
        '  expected allow',
        '  got      403 insufficient_scope scope="transfer:funds" (DPoP)',
        `${FAILING}:13: FAIL transfer names the wrong scope`,
        '  expected 403 insufficient_scope scope="view:balance"',
        '  got      403 insufficient_scope scope="transfer:funds" (DPoP)',
        `${FAILING}:17: FAIL a report-only expectation on an enforced route`,
        '  expected allow (report-only: would deny 401)',
        '  got      401 unauthorized',
        '1 passed, 3 failed',
        '',
      ].join('\n'),
    );
  });

  it('names every problem of an invalid test file with file:line:column, runs the others, exits 1', async () => {
    const { code, stdout, stderr } = await runTests(INVALID, REPORT_ONLY_TESTS);
    expect(code).toBe(1);
    expect(stderr).toBe(
      [
        `authz: ${INVALID}: it cannot be used (ERR_POLICY_TEST_INVALID):`,
        `${INVALID}:3:1: now: must be a date-time with a time zone, e.g. 2026-11-27T12:00:00Z`,
        `${INVALID}:4:1: timeout: unknown key "timeout" (allowed: policy, now, cases)`,
        `${INVALID}:6:5: cases[0]: needs "request: { method: GET, path: /balance }"`,
        `${INVALID}:8:45: cases[1].request.query: unknown key "query" (allowed: method, path, scheme, dpop_proof, client_certificate)`,
        `${INVALID}:9:5: cases[1].token: must be "none" or the token's claims, e.g. { scope: view:balance }`,
        `${INVALID}:10:15: cases[1].expect.status: must be an HTTP status code, e.g. 403`,
        `${INVALID}:10:34: cases[1].expect.scopes: unknown key "scopes" (allowed: status, error, scope, acr_values, max_age, would_deny, scheme)`,
        `${INVALID}:12:35: cases[2].token.auth_time_ago: must be a duration (whole seconds, or 30s / 10m / 1h)`,
        `${INVALID}:13:5: cases[2].expect: must be allow, or a mapping such as { status: 403, error: insufficient_scope }`,
        `${INVALID}:14:5: cases[3]: missing required key "expect" (allow, or { status: 403, error: insufficient_scope })`,
        `${INVALID}:14:16: cases[3].request.method: must be an HTTP method, e.g. GET`,
        `${INVALID}:14:40: cases[3].request.path: must be the request path (a query string may follow)`,
        '',
      ].join('\n'),
    );
    expect(stdout).toMatch(/^test\/fixtures\/ops\/report-only\.test\.yaml: 5 cases/);
    expect(stdout).toMatch(/\n5 passed, 0 failed, 1 test file could not be run\n$/);
  });

  it('reports a test file whose policy cannot be read, and a missing test file', async () => {
    const missingPolicy = await runTests(MISSING_POLICY);
    expect(missingPolicy.code).toBe(1);
    expect(missingPolicy.stderr).toBe(
      `authz: ${MISSING_POLICY}: its policy cannot be used (ERR_POLICY_READ):\n` +
        'test/fixtures/ops/no-such-policy.yaml: cannot be read (ENOENT)\n',
    );
    const missing = await runTests('no-such.test.yaml');
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('no-such.test.yaml: the test file cannot be read (ENOENT)');
    expect(missing.stdout).toBe('0 passed, 0 failed, 1 test file could not be run\n');
  });

  it('needs at least one file', async () => {
    await expect(runTests()).rejects.toThrow(UsageError);
    await expect(runTests('--verbose', DEMO_TESTS)).rejects.toThrow(UsageError);
  });
});

describe('policy test files', () => {
  it('report YAML syntax errors with their position', () => {
    expect(problemsOf('policy: p.yaml\ncases: [\n')).toEqual([expect.stringMatching(/^3:1 : YAML syntax: /)]);
    expect(problemsOf('policy: p.yaml\npolicy: q.yaml\ncases: []\n')[0]).toMatch(
      /^2:1 : YAML syntax: .*unique/i,
    );
  });

  it('need a policy and a non-empty list of cases', () => {
    expect(problemsOf('cases: []\n')).toEqual([
      '1:1 : missing required key "policy" (the policy file, relative to this file)',
      '1:1 cases: must be a non-empty list of test cases',
    ]);
    expect(problemsOf('- a\n')).toEqual([
      '1:1 : a policy test file is a mapping with "policy", "cases" and optionally "now"',
    ]);
  });

  it('read tokens, expectations and defaults', () => {
    const file = parsePolicyTestFile(
      [
        'policy: ../p.yaml',
        'cases:',
        '  - request: { method: GET, path: /a }',
        '    expect: allow',
        '  - name: named',
        '    request: { method: POST, path: /b }',
        '    token: { scope: a, auth_time_ago: 10m }',
        '    expect: { status: 401, scope: [a, b], acr_values: x, max_age: 1h, would_deny: true }',
        '',
      ].join('\n'),
      'tests/t.yaml',
    );
    expect(file.policyFile).toBe('p.yaml');
    expect(file.nowMs).toBeUndefined();
    expect(file.cases).toEqual([
      {
        name: 'GET /a',
        line: 3,
        request: { method: 'GET', target: '/a' },
        token: { kind: 'none' },
        expect: { kind: 'allow' },
      },
      {
        name: 'named',
        line: 5,
        request: { method: 'POST', target: '/b' },
        token: { kind: 'claims', claims: { scope: 'a' }, authTimeAgoSeconds: 600 },
        expect: {
          kind: 'deny',
          status: 401,
          scope: ['a', 'b'],
          acrValues: ['x'],
          maxAge: 3600,
          wouldDeny: true,
        },
      },
    ]);
  });

  it('refuse auth_time together with auth_time_ago', () => {
    const text =
      'policy: p.yaml\ncases:\n  - request: { method: GET, path: / }\n    token: { auth_time: 1, auth_time_ago: 1 }\n    expect: allow\n';
    expect(problemsOf(text)).toEqual([
      '4:28 cases[0].token.auth_time_ago: give auth_time or auth_time_ago, not both',
    ]);
  });
});

describe('runPolicyTests', () => {
  const policy = compileRoutes(
    '{ methods: [POST], path: /t, scopes: [t], authentication: { acr_values: [urn:mfa], max_age: 60 } }',
  );

  it("puts auth_time_ago in the issuer's auth_time claim, relative to the clock", async () => {
    const parsed = parsePolicyTestFile(
      [
        'policy: p.yaml',
        'cases:',
        '  - request: { method: POST, path: /t }',
        '    token: { scope: t, acr: urn:mfa, auth_time_ago: 60 }',
        '    expect: allow',
        '  - request: { method: POST, path: /t }',
        '    token: { scope: t, acr: urn:mfa, auth_time_ago: 61 }',
        '    expect: { status: 401, error: insufficient_user_authentication, max_age: 60 }',
        '  - request: { method: POST, path: /t }',
        '    token: { scope: t, acr: urn:mfa, auth_time_ago: 61 }',
        '    expect: { status: 401, max_age: 61 }',
        '',
      ].join('\n'),
      't.yaml',
    );
    const results = await runPolicyTests(policy, parsed.cases, OPS_NOW);
    expect(results.map((r) => [r.passed, r.actual])).toEqual([
      [true, 'allow'],
      [true, '401 insufficient_user_authentication max_age=60'],
      [false, '401 insufficient_user_authentication max_age=60'],
    ]);
  });
});

describe('authz test with a policy directory', () => {
  it('runs a test file whose policy: is the directory it sits in, and DIR runs every test file of it', async () => {
    const { folder, remove } = await writeGatewayDirectory({
      'statements.test.yml':
        'policy: .\ncases:\n  - { name: no token, host: statements.example, request: { method: GET, path: /balance }, expect: { status: 401, error: unauthorized } }\n',
    });
    try {
      const one = await runTests(`${folder}/bank.test.yaml`);
      expect(one.stderr).toBe('');
      expect(one.code).toBe(0);
      expect(one.stdout).toContain(
        `${folder}/bank.test.yaml: 2 cases against ${folder}, clock 2026-11-27T12:00:00Z`,
      );

      const all = await runTests(folder);
      expect(all.stderr).toBe('');
      expect(all.code).toBe(0);
      expect(all.stdout).toContain(`${folder}/bank.test.yaml: 2 cases`);
      expect(all.stdout).toContain(`${folder}/statements.test.yml: 1 case`);
      expect(all.stdout).toMatch(/\n3 passed, 0 failed\n$/);
    } finally {
      await remove();
    }
  });

  it('a directory with a refused file: its test files report the policy as unusable', async () => {
    const { folder, remove } = await writeGatewayDirectory({ 'statements.yaml': 'owner: x\nservices: [' });
    try {
      const { code, stderr } = await runTests(folder);
      expect(code).toBe(1);
      expect(stderr).toContain(
        `authz: ${folder}/bank.test.yaml: its policy cannot be used (ERR_POLICY_SYNTAX)`,
      );
    } finally {
      await remove();
    }
  });
});
