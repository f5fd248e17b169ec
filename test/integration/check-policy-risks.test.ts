import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startKeyServer } from '../kit/key-server.js';

/*
 * Issue 13: a public catch-all appended to the demo policy used to pass `authz check-policy` with
 * "0 warnings" and exit 0. Through the built command line (`npm run build` first), it is now an
 * error-level finding (public_catch_all) and the check fails; accepted on the route, it passes, shown.
 * Issue 19: so is a protected route appended after the public /app/** that takes its requests; and a
 * misspelt route scope in a policy without known_scopes is a warning when the issuer's discovery document
 * (read over HTTP by check-policy) does not advertise it.
 */

const repoRoot = fileURLToPath(new URL('../../', import.meta.url));
const cliPath = path.join(repoRoot, 'dist', 'cli', 'main.js');

interface Finished {
  readonly code: number;
  readonly stdout: string;
}

function authz(...args: string[]): Promise<Finished> {
  if (!existsSync(cliPath)) throw new Error(`${cliPath} is missing: run "npm run build" first`);
  return new Promise((resolve) => {
    execFile(process.execPath, [cliPath, ...args], { cwd: repoRoot, timeout: 15_000 }, (error, stdout) => {
      const code = error === null ? 0 : typeof error.code === 'number' ? error.code : -1;
      resolve({ code, stdout });
    });
  });
}

describe('authz check-policy: policy.yaml with a public catch-all appended', () => {
  let dir: string;
  let demo: string;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'check-policy-risks-'));
    // check-policy checks that jwks_file exists, as serve does; its content is not read.
    await mkdir(path.join(dir, '.authz-dev'));
    await writeFile(path.join(dir, '.authz-dev', 'jwks.json'), '{"keys":[]}\n');
    demo = await readFile(path.join(repoRoot, 'policy.yaml'), 'utf8');
  });

  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('reports public_catch_all as an error and exits 1', async () => {
    const file = path.join(dir, 'policy.yaml');
    await writeFile(file, `${demo}  - { path: '/**', public: true }\n`);
    const { code, stdout } = await authz('check-policy', file);
    expect(stdout).toMatch(
      /policy\.yaml:\d+:5: error: routes\[5\]: public route \* \/\*\* matches every path.*\[public_catch_all\]\n/,
    );
    expect(stdout).toMatch(
      /: 6 routes, 1 error-level finding, \d+ warnings?, 1 accepted: error-level findings fail the check\n$/,
    );
    expect(code).toBe(1);

    const json = await authz('check-policy', '--json', file);
    expect(json.code).toBe(1);
    const report = JSON.parse(json.stdout) as { ok: boolean; warnings: { code: string; level: string }[] };
    expect(report.ok).toBe(false);
    expect(report.warnings).toContainEqual(
      expect.objectContaining({ code: 'public_catch_all', level: 'error' }),
    );
  });

  it('reports a protected route after the public /app/** as route_shadowed_weaker, an error', async () => {
    const file = path.join(dir, 'admin.yaml');
    await writeFile(file, `${demo}  - { methods: [GET], path: /app/admin, scopes: [admin] }\n`);
    const { code, stdout } = await authz('check-policy', file);
    expect(stdout).toMatch(
      /admin\.yaml:(\d+):5: error: routes\[5\]: never matches: routes\[4\] \(line \d+, GET,HEAD \/app\/\*\*\) matches every request it could; routes\[4\] is public, so those requests pass without a token \[route_shadowed_weaker\]\n {2}fix: Move the route above the routes that take its requests/,
    );
    expect(stdout).toMatch(/: 6 routes, 1 error-level finding, .*: error-level findings fail the check\n$/);
    expect(code).toBe(1);
  });

  it('passes once the route accepts the risk, which stays in the output', async () => {
    const file = path.join(dir, 'accepted.yaml');
    await writeFile(
      file,
      `${demo}  - path: /**\n    public: true\n    accept_risks: [{ code: public_catch_all, reason: 'trial of a static mirror' }]\n`,
    );
    const { code, stdout } = await authz('check-policy', file);
    expect(stdout).toContain('error (accepted): routes[5]:');
    expect(stdout).toContain('  accepted: trial of a static mirror\n');
    expect(code).toBe(0);
  });
});

describe('authz check-policy: route scopes against the discovery document, without known_scopes', () => {
  it("warns about a scope the issuer's scopes_supported does not list; --offline reads nothing", async () => {
    const idp = await startKeyServer([]);
    const dir = await mkdtemp(path.join(tmpdir(), 'check-policy-scopes-'));
    try {
      idp.serveMetadata({
        issuer: idp.issuer,
        jwks_uri: idp.url,
        scopes_supported: ['openid', 'view:balance', 'transfer:funds'],
      });
      const file = path.join(dir, 'policy.yaml');
      await writeFile(
        file,
        [
          'version: 1',
          'realm: bank-api',
          'issuers:',
          `  - { issuer: '${idp.issuer}', audiences: [api], discovery: true, algorithms: [RS256], require_typ: at+jwt }`,
          'routes:',
          '  - { methods: [GET], path: /balance, scopes: [view:balence] }',
          '',
        ].join('\n'),
      );
      const { code, stdout } = await authz('check-policy', file);
      expect(stdout).toBe(
        [
          `${file}:6:48: warning: routes[0].scopes[0]: scope "view:balence" is not in the scopes_supported of issuer "${idp.issuer}": a typo, or a scope an identity provider grants without advertising it [scope_not_advertised]`,
          '  fix: Correct the scope, or declare known_scopes with the scopes the identity providers grant (route scopes are then checked against those instead).',
          `${file}: 1 route, 1 warning: usable`,
          '',
        ].join('\n'),
      );
      expect(code).toBe(0);
      expect(idp.paths).toEqual(['/.well-known/openid-configuration']);

      const offline = await authz('check-policy', '--offline', file);
      expect(offline.stdout).toBe(`${file}: 1 route, 0 warnings: ok\n`);
      expect(idp.paths).toHaveLength(1);
    } finally {
      await idp.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
