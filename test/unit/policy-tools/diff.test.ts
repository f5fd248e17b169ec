import { describe, expect, it } from 'vitest';
import { UsageError } from '../../../src/args/usage-error.js';
import { diffCommand } from '../../../src/policy-tools/diff-command.js';
import {
  diffExamples,
  diffPolicies,
  examplePaths,
  tokenProfiles,
} from '../../../src/policy-tools/policy-diff.js';
import { captureIo, OPS_NOW, repoFile } from '../../kit/capture-io.js';
import { compileRoutes } from '../../kit/inline-policy.js';
import { GATEWAY_DIRECTORY_FILES, writeGatewayDirectory } from '../../kit/policy-directory-files.js';

const OLD = repoFile('test/fixtures/ops/diff-old.yaml');
const fixture = (name: string) => repoFile(`test/fixtures/ops/diff-${name}.yaml`);
const PROFILES =
  '6 token profiles (no-token, no-scopes, all-scopes, all-scopes+weak-login, enough-for-old, enough-for-new)';

async function diff(...args: string[]) {
  const capture = captureIo();
  const code = await diffCommand(args, capture.io);
  return { code, stdout: capture.stdout(), stderr: capture.stderr() };
}

describe('authz diff', () => {
  it('no change: exit 0 and a summary of what was compared', async () => {
    const { code, stdout } = await diff(OLD, fixture('same'));
    expect(code).toBe(0);
    expect(stdout).toBe(`no decision changes in 144 checks: 24 requests x ${PROFILES}\n`);
  });

  it('an added scope requirement: the challenge changes, and a token that was enough is not', async () => {
    const { code, stdout } = await diff(OLD, fixture('scope-added'));
    expect(code).toBe(1);
    expect(stdout).toBe(
      [
        'GET /accounts/x1/balance [no-scopes]: 403 insufficient_scope scope="view:balance" -> 403 insufficient_scope scope="view:balance view:accounts"',
        'GET /accounts/x1/balance [enough-for-old]: allow -> 403 insufficient_scope scope="view:balance view:accounts"',
        `2 changes in 144 checks: 24 requests x ${PROFILES}`,
        '',
      ].join('\n'),
    );
  });

  it('a removed route: every token profile now gets 403 access_denied', async () => {
    const { code, stdout } = await diff(OLD, fixture('route-removed'));
    expect(code).toBe(1);
    expect(stdout).toBe(
      [
        'GET /accounts/x1/balance [no-token]: 401 unauthorized -> 403 access_denied',
        'GET /accounts/x1/balance [no-scopes]: 403 insufficient_scope scope="view:balance" -> 403 access_denied',
        'GET /accounts/x1/balance [all-scopes]: allow -> 403 access_denied',
        'GET /accounts/x1/balance [all-scopes+weak-login]: allow -> 403 access_denied',
        'GET /accounts/x1/balance [enough-for-old]: allow -> 403 access_denied',
        'GET /accounts/x1/balance [enough-for-new]: 403 insufficient_scope scope="view:balance" -> 403 access_denied',
        `6 changes in 144 checks: 24 requests x ${PROFILES}`,
        '',
      ].join('\n'),
    );
  });

  it('a method added to a route: the new method changes decision, in either direction of the diff', async () => {
    const forward = await diff(OLD, fixture('method-changed'));
    expect(forward.code).toBe(1);
    expect(forward.stdout.split('\n').slice(0, 3)).toEqual([
      'HEAD /balance [no-token]: 403 access_denied -> 401 unauthorized',
      'HEAD /balance [no-scopes]: 403 access_denied -> 403 insufficient_scope scope="view:balance"',
      'HEAD /balance [all-scopes]: 403 access_denied -> allow',
    ]);
    const backward = await diff(fixture('method-changed'), OLD);
    expect(backward.stdout).toContain('HEAD /balance [all-scopes]: allow -> 403 access_denied\n');
    expect(backward.stdout).toMatch(/^6 changes in 150 checks/m);
  });

  it('--json lists the changes', async () => {
    const { code, stdout } = await diff('--json', OLD, fixture('scope-added'));
    expect(code).toBe(1);
    const report = JSON.parse(stdout) as { changed: boolean; checks: number; changes: unknown[] };
    expect(report).toMatchObject({ changed: true, requests: 24, checks: 144 });
    expect(report.changes[1]).toEqual({
      method: 'GET',
      path: '/accounts/x1/balance',
      profile: 'enough-for-old',
      old: 'allow',
      new: '403 insufficient_scope scope="view:balance view:accounts"',
    });
    const same = JSON.parse((await diff(OLD, OLD, '--json')).stdout) as { changed: boolean; changes: [] };
    expect(same).toMatchObject({ changed: false, changes: [] });
  });

  it('exits 2 when a policy cannot be used', async () => {
    const { code, stderr, stdout } = await diff(OLD, repoFile('test/fixtures/ops/broken.yaml'));
    expect(code).toBe(2);
    expect(stdout).toBe('');
    expect(stderr).toMatch(
      /^authz: test\/fixtures\/ops\/broken\.yaml: the policy cannot be used \(ERR_POLICY_INVALID\):\n/,
    );
    expect(stderr).toContain('broken.yaml:11:39: routes[0].scope: unknown key "scope"');
    await expect(diff(OLD)).rejects.toThrow(UsageError);
  });
});

describe('diff examples and profiles', () => {
  it('instantiate each kind of pattern', () => {
    expect(examplePaths('/')).toEqual(['/']);
    expect(examplePaths('/a/{id}/b/{n}')).toEqual(['/a/x1/b/x2']);
    expect(examplePaths('/files/**')).toEqual(['/files', '/files/x1/x2']);
    expect(examplePaths('/**')).toEqual(['/', '/x1/x2']);
    expect(examplePaths('/a/')).toEqual(['/a/']);
  });

  it("use each route's methods, every common method for routes without, and the probes", () => {
    const policy = compileRoutes('{ methods: [GET], path: /a, public: true }', '{ path: /b, public: true }');
    const examples = diffExamples([policy]).map((r) => `${r.method} ${r.target}`);
    expect(examples.slice(0, 8)).toEqual([
      'GET /a',
      'GET /b',
      'HEAD /b',
      'POST /b',
      'PUT /b',
      'PATCH /b',
      'DELETE /b',
      'OPTIONS /b',
    ]);
    expect(examples).toContain('GET /authz-diff-probe');
    expect(new Set(examples).size).toBe(examples.length);
  });

  it('one strong profile per acr value when the policies name several', async () => {
    const a = compileRoutes('{ path: /a, scopes: [s], authentication: { acr_values: [urn:mfa] } }');
    const b = compileRoutes('{ path: /a, scopes: [s], authentication: { acr_values: [urn:hwk] } }');
    expect(tokenProfiles(a, b, OPS_NOW).map((p) => p.name)).toEqual([
      'no-token',
      'no-scopes',
      'all-scopes+acr=urn:hwk',
      'all-scopes+acr=urn:mfa',
      'all-scopes+weak-login',
      'enough-for-old',
      'enough-for-new',
    ]);
    const changes = (await diffPolicies(a, b, OPS_NOW)).changes.filter(
      (c) => c.path === '/a' && c.method === 'GET',
    );
    expect(changes.map((c) => `${c.profile}: ${c.old} -> ${c.new}`)).toEqual([
      'all-scopes+acr=urn:hwk: 401 insufficient_user_authentication acr_values="urn:mfa" -> allow',
      'all-scopes+acr=urn:mfa: allow -> 401 insufficient_user_authentication acr_values="urn:hwk"',
      'all-scopes+weak-login: 401 insufficient_user_authentication acr_values="urn:mfa" -> 401 insufficient_user_authentication acr_values="urn:hwk"',
      'enough-for-old: allow -> 401 insufficient_user_authentication acr_values="urn:hwk"',
      'enough-for-new: 401 insufficient_user_authentication acr_values="urn:mfa" -> allow',
    ]);
  });

  it('sees a route switched to report-only', async () => {
    const enforced = compileRoutes('{ methods: [GET], path: /a, scopes: [s] }');
    const trial = compileRoutes('{ methods: [GET], path: /a, scopes: [s], mode: report-only }');
    const changes = (await diffPolicies(enforced, trial, OPS_NOW)).changes;
    expect(changes.map((c) => `${c.method} ${c.path} [${c.profile}]: ${c.old} -> ${c.new}`)).toEqual([
      'GET /a [no-token]: 401 unauthorized -> allow (report-only: would deny 401 unauthorized)',
      'GET /a [no-scopes]: 403 insufficient_scope scope="s" -> allow (report-only: would deny 403 insufficient_scope scope="s")',
    ]);
  });
});

describe('authz diff with policy directories', () => {
  it("groups the changes by the owner of the service that decides them; JSON gives each change's owner", async () => {
    const old = await writeGatewayDirectory();
    const edited = await writeGatewayDirectory({
      'bank.yaml': GATEWAY_DIRECTORY_FILES['bank.yaml']!.replace(
        'scopes: [view:balance]',
        'scopes: [view:balance, view:statements]',
      ),
      'statements.yaml': GATEWAY_DIRECTORY_FILES['statements.yaml']!.replace(
        '/balance, scopes: [view:statements]',
        '/balance, scopes: [view:statements, view:balance]',
      ),
    });
    try {
      const { code, stdout } = await diff(old.folder, edited.folder);
      expect(code).toBe(1);
      const lines = stdout.split('\n');
      expect(lines[0]).toBe('owner team-bank:');
      const statements = lines.indexOf('owner team-statements:');
      expect(statements).toBeGreaterThan(1);
      expect(
        lines.slice(1, statements).every((line) => line.startsWith('  GET /balance (host bank.example) [')),
      ).toBe(true);
      expect(
        lines
          .slice(statements + 1, -2)
          .every((line) => line.startsWith('  GET /balance (host statements.example) [')),
      ).toBe(true);

      const json = JSON.parse((await diff(old.folder, edited.folder, '--json')).stdout) as {
        changes: { host: string; owner: string | null }[];
      };
      expect(new Set(json.changes.map((c) => `${c.host} ${c.owner}`))).toEqual(
        new Set(['bank.example team-bank', 'statements.example team-statements']),
      );
    } finally {
      await old.remove();
      await edited.remove();
    }
  });

  it('a file against a directory: the directory side gives the owners; an unclaimed host has none', async () => {
    const dir = await writeGatewayDirectory();
    try {
      const { code, stdout } = await diff(repoFile('policy.gateway.yaml'), dir.folder);
      expect(code).toBe(1);
      expect(stdout).toMatch(/^owner team-bank:\n/);
      expect(stdout).toContain('\nowner team-statements:\n');
      expect(stdout).not.toMatch(/^[A-Z]+ \//m); // every change sits under its owner
    } finally {
      await dir.remove();
    }
  });

  it('a directory that cannot be used: exit 2 with its problems', async () => {
    const dir = await writeGatewayDirectory({ 'bank.yaml': 'owner: team-bank\nservices: [' });
    try {
      const { code, stderr } = await diff(OLD, dir.folder);
      expect(code).toBe(2);
      expect(stderr).toContain(`authz: ${dir.folder}: the policy cannot be used (ERR_POLICY_SYNTAX):`);
    } finally {
      await dir.remove();
    }
  });
});
