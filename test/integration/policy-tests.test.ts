import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeGatewayDirectory } from '../kit/policy-directory-files.js';

/*
 * The ops commands through the built command line (`node dist/cli/main.js`), as CI runs them: above all,
 * the shipped policy tests of the demo policy must pass. `npm test` builds dist/ first (pretest).
 */

const repoRoot = fileURLToPath(new URL('../../', import.meta.url));
const cliPath = path.join(repoRoot, 'dist', 'cli', 'main.js');
const MISSING_BUILD = `${cliPath} is missing: run "npm run build" first (npm test does so in pretest)`;

interface Finished {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs the CLI from the repository root and waits for it to exit (killed after 15 s). */
function authz(...args: string[]): Promise<Finished> {
  if (!existsSync(cliPath)) throw new Error(MISSING_BUILD);
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [cliPath, ...args],
      { cwd: repoRoot, timeout: 15_000 },
      (error, stdout, stderr) => {
        const code = error === null ? 0 : typeof error.code === 'number' ? error.code : -1;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

describe('authz test policy.test.yaml (the demo policy tests)', () => {
  it('passes: exit 0 and the summary line', async () => {
    const { code, stdout, stderr } = await authz('test', 'policy.test.yaml');
    expect(stderr).toBe('');
    expect(stdout).not.toMatch(/FAIL/);
    expect(stdout).toMatch(/^\d+ passed, 0 failed$/m);
    expect(code).toBe(0);
  });

  it('passes the report-only tests too', async () => {
    const { code, stdout } = await authz('test', 'test/fixtures/ops/report-only.test.yaml');
    expect(stdout).toMatch(/^5 passed, 0 failed$/m);
    expect(code).toBe(0);
  });

  it('exits 1 when a case fails', async () => {
    const { code, stdout } = await authz('test', 'test/fixtures/ops/failing.test.yaml');
    expect(stdout).toMatch(/^1 passed, 3 failed$/m);
    expect(code).toBe(1);
  });

  it('has no claim that nothing reads: --strict passes too', async () => {
    const { code, stdout } = await authz('test', '--strict', 'policy.test.yaml');
    expect(stdout).not.toContain('warning:');
    expect(code).toBe(0);
  });

  it('--json, --junit and --run, as CI uses them', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'authz-policy-tests-junit-'));
    try {
      const junit = path.join(dir, 'report.xml');
      const args = [
        'test',
        '--json',
        '--junit',
        junit,
        '--run',
        '/transfer/i',
        'test/fixtures/ops/failing.test.yaml',
      ];
      const { code, stdout, stderr } = await authz(...args);
      expect(stderr).toBe('');
      expect(code).toBe(1);
      const report = JSON.parse(stdout) as { ok: boolean; selected: number; cases: number; failed: number };
      expect(report).toMatchObject({ ok: false, selected: 2, cases: 4, failed: 2 });
      const xml = await readFile(junit, 'utf8');
      expect(xml).toMatch(
        /^<\?xml version="1\.0" encoding="UTF-8"\?>\n<testsuites name="authz test" tests="2" failures="2" errors="0">\n/,
      );
      expect(xml.match(/<testcase /g)).toHaveLength(2);
      expect(xml).toContain(
        'message="expected allow, got 403 insufficient_scope scope=&quot;transfer:funds&quot; (DPoP)"',
      );
      const none = await authz('test', '--run', 'no such case', 'policy.test.yaml');
      expect(none.code).toBe(1);
      expect(none.stderr).toMatch(/^authz: --run "no such case" selected none of the \d+ cases\n$/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('ops command exit codes through the CLI', () => {
  it('--help lists the ops commands', async () => {
    const { code, stdout } = await authz('--help');
    expect(code).toBe(0);
    for (const command of ['check-policy', 'explain', 'test', 'diff', 'owners'])
      expect(stdout).toMatch(new RegExp(`^  ${command} `, 'm'));
  });

  it('check-policy: 0 usable, 1 errors, 2 usage', async () => {
    expect((await authz('check-policy', 'test/fixtures/ops/clean.yaml')).code).toBe(0);
    expect((await authz('check-policy', '--strict', 'test/fixtures/ops/clean.yaml')).code).toBe(1); // a warning
    expect((await authz('check-policy', 'test/fixtures/ops/warnings.yaml')).code).toBe(1); // error-level findings
    expect((await authz('check-policy', 'test/fixtures/ops/broken.yaml')).code).toBe(1);
    const usage = await authz('check-policy');
    expect(usage.code).toBe(2);
    expect(usage.stderr).toContain('missing the policy FILE to check');
  });

  it('explain: 0 whatever the decision, 1 bad policy, 2 usage', async () => {
    const base = ['explain', '--method', 'POST', '--path', '/transfer'];
    // The demo's POST /transfer requires DPoP: a bound token, the DPoP scheme and a proof (taken as valid).
    const bound = JSON.stringify({
      scope: 'view:balance',
      cnf: { jkt: '0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I' },
    });
    const denied = await authz(
      ...base,
      ...['--policy', 'policy.yaml', '--claims', bound, '--scheme', 'dpop', '--dpop-proof'],
    );
    expect(denied.code).toBe(0);
    expect(denied.stdout).toContain('response   403\n');
    const broken = await authz(...base, '--policy', 'test/fixtures/ops/broken.yaml');
    expect(broken.code).toBe(1);
    expect(broken.stderr).toContain('ERR_POLICY_INVALID');
    expect((await authz(...base, '--policy', 'policy.yaml', '--token', 'x', '--claims', '{}')).code).toBe(2);
  });

  it('diff: 0 no change, 1 changes, 2 errors', async () => {
    const old = 'test/fixtures/ops/diff-old.yaml';
    expect((await authz('diff', old, 'test/fixtures/ops/diff-same.yaml')).code).toBe(0);
    expect((await authz('diff', old, 'test/fixtures/ops/diff-route-removed.yaml')).code).toBe(1);
    expect((await authz('diff', old, 'no-such.yaml')).code).toBe(2);
    expect((await authz('diff', old)).code).toBe(2);
  });
});

describe('the ops commands on a policy directory', () => {
  let folder = '';
  let remove: () => Promise<void> = async () => undefined;
  beforeAll(async () => {
    ({ folder, remove } = await writeGatewayDirectory());
  });
  afterAll(() => remove());

  it('check-policy: 0 when every file is in force, 1 for a refused file; owners: 0, 2 without a root', async () => {
    const good = await authz('check-policy', folder);
    expect(good.code).toBe(0);
    expect(good.stdout).toContain(
      `${folder}/bank.yaml: service file, owner team-bank, services bank: in force\n`,
    );
    const broken = await writeGatewayDirectory({
      'statements.yaml': 'owner: team-statements\nservices: [',
      'cards.yaml': 'services: [',
    });
    try {
      const refused = await authz('check-policy', broken.folder);
      expect(refused.code).toBe(1);
      expect(refused.stdout).toContain('refused (serving nothing) [ERR_POLICY_SYNTAX]');
      const owners = await authz('owners', broken.folder, '--prefix', 'policy.d');
      expect(owners.code).toBe(0);
      expect(owners.stdout).toContain(
        '/policy.d/bank.yaml team-bank\n# cards.yaml: owner unknown (not_admitted: ERR_POLICY_FILE_NOT_ADMITTED)\n' +
          '/policy.d/statements.yaml team-statements\n',
      );
    } finally {
      await broken.remove();
    }
    expect((await authz('owners', path.dirname(folder))).code).toBe(2);
    expect((await authz('owners')).code).toBe(2);
  });

  it('test DIR runs its test files; explain names the file and owner', async () => {
    const tests = await authz('test', folder);
    expect(tests.code).toBe(0);
    expect(tests.stdout).toMatch(/\n2 passed, 0 failed\n$/);
    const explained = await authz(
      ...[
        'explain',
        '--policy',
        folder,
        '--method',
        'GET',
        '--path',
        '/balance',
        '--host',
        'statements.example',
      ],
    );
    expect(explained.code).toBe(0);
    expect(explained.stdout).toContain(
      'service    statements (statements.yaml line 3, owner team-statements, realm statements-api)',
    );
  });
});

describe('the ops commands on the gateway policy (services chosen by host or by name)', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'authz-policy-tests-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('authz test: per-case host and service', async () => {
    const file = path.join(dir, 'gateway.test.yaml');
    await writeFile(
      file,
      [
        `policy: ${path.join(repoRoot, 'policy.gateway.yaml')}`,
        'now: 2026-11-27T12:00:00Z',
        'cases:',
        '  - host: bank.example',
        '    request: { method: GET, path: /balance }',
        '    token: { scope: view:balance }',
        '    expect: allow',
        '  - host: statements.example',
        '    request: { method: GET, path: /balance }',
        '    token: { scope: view:balance }',
        '    expect: { status: 403, error: insufficient_scope, scope: view:statements }',
        '  - host: bank.example',
        '    service: statements',
        '    request: { method: GET, path: /statements/2026-11 }',
        '    token: { scope: view:statements, aud: https://statements-api }',
        '    expect: allow',
        '  - host: unclaimed.invalid',
        '    request: { method: GET, path: /healthz }',
        '    expect: { status: 403, error: access_denied }',
        '',
      ].join('\n'),
    );
    const { code, stdout, stderr } = await authz('test', file);
    expect(stderr).toBe('');
    expect(stdout).toMatch(/^4 passed, 0 failed$/m);
    expect(code).toBe(0);
  });

  it('authz explain --host names the service; --service takes precedence', async () => {
    const base = ['explain', '--policy', 'policy.gateway.yaml', '--method', 'GET', '--path', '/balance'];
    const byHost = await authz(...base, '--host', 'statements.example');
    expect(byHost.code).toBe(0);
    expect(byHost.stdout).toMatch(
      /^service {4}statements \(line \d+, realm statements-api\): it lists host/m,
    );
    const byName = await authz(...base, '--host', 'statements.example', '--service', 'bank', '--json');
    expect(JSON.parse(byName.stdout)).toMatchObject({ service: { name: 'bank', chosen_by: 'name' } });
    const none = await authz(...base, '--host', 'unclaimed.invalid');
    expect(none.stdout).toContain('decision   deny no_service');
    expect((await authz(...base, '--host', '')).code).toBe(2);
  });

  it('authz diff: moving policy.yaml under services changes nothing for bank.example', async () => {
    const { code, stdout } = await authz('diff', 'policy.yaml', 'policy.gateway.yaml');
    expect(code).toBe(1);
    expect(stdout).toContain('(host statements.example)');
    expect(stdout).toContain('(host unclaimed.invalid)');
    expect(stdout).not.toContain('(host bank.example)');
    // check-policy checks that jwks_file exists, as serve does (a fresh clone has no .authz-dev yet): a copy
    // next to a stand-in key set.
    const copy = path.join(dir, 'policy.gateway.yaml');
    await writeFile(copy, await readFile(path.join(repoRoot, 'policy.gateway.yaml'), 'utf8'));
    await mkdir(path.join(dir, '.authz-dev'), { recursive: true });
    await writeFile(path.join(dir, '.authz-dev', 'jwks.json'), '{"keys":[]}\n');
    expect((await authz('check-policy', copy)).stdout).toMatch(
      /: 2 services, \d+ routes, 0 warnings, 2 accepted: ok\n$/,
    );
  });
});
