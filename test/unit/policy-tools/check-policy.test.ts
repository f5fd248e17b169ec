import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { UsageError } from '../../../src/args/usage-error.js';
import {
  checkPolicyCommand,
  type CheckPolicyReport,
} from '../../../src/policy-tools/check-policy-command.js';
import { FINDING_CODES, policyFindings } from '../../../src/policy/policy-findings.js';
import { YamlLocations } from '../../../src/policy/yaml-locations.js';
import { compileRoutes, demoPolicyText } from '../../kit/inline-policy.js';
import { compilePolicy } from '../../../src/policy/compile-policy.js';
import { captureIo, repoFile } from '../../kit/capture-io.js';

const WARNINGS = repoFile('test/fixtures/ops/warnings.yaml');
const CLEAN = repoFile('test/fixtures/ops/clean.yaml');
const BROKEN = repoFile('test/fixtures/ops/broken.yaml');

async function check(...args: string[]) {
  const capture = captureIo();
  const code = await checkPolicyCommand(args, capture.io);
  return { code, stdout: capture.stdout(), stderr: capture.stderr() };
}

/** The shadowing findings for policy text made of these routes (their risks are policy-findings.test.ts'). */
function shadowCodes(...routes: string[]): string[] {
  const text = demoPolicyText(routes);
  return policyFindings(compileRoutes(...routes), new YamlLocations(text))
    .filter((w) => w.code === 'route_shadowed' || w.code === 'route_duplicate')
    .map((w) => `${w.path} ${w.code}`);
}

/** clean.yaml with its last gaps closed (require_typ, methods on /healthz): a policy with no finding. */
async function spotlessPolicy(): Promise<string> {
  const text = (await readFile(CLEAN, 'utf8'))
    .replace('algorithms: [RS256]', 'algorithms: [RS256]\n    require_typ: at+jwt')
    .replace('{ path: /healthz, public: true }', '{ methods: [GET, HEAD], path: /healthz, public: true }');
  const dir = await mkdtemp(join(tmpdir(), 'check-policy-'));
  const file = join(dir, 'spotless.yaml');
  await writeFile(file, text);
  return file;
}

describe('authz check-policy', () => {
  it('prints every finding with file:line:column, level and fix, then a summary; error-level ones exit 1', async () => {
    const { code, stdout, stderr } = await check(WARNINGS);
    expect(stderr).toBe('');
    expect(code).toBe(1);
    const shadowFix =
      '  fix: Move the route above the routes that take its requests, narrow those, or remove it.';
    const weakerFix = `  fix: ${FINDING_CODES.route_shadowed_weaker.fix}`;
    expect(stdout).toBe(
      [
        `${WARNINGS}:5:46: notice: known_scopes[2]: known scope "view:statements" is required by no route [scope_unused]`,
        '  fix: Remove it from known_scopes, or require it on the routes it is meant for.',
        `${WARNINGS}:7:5: notice: issuers[0]: issuer "https://idp.example/" has no require_typ, so its ID tokens and other JWTs for the audience pass as access tokens (RFC 9068 section 4) [issuer_typ_unchecked]`,
        '  fix: Set require_typ: at+jwt if the issuer issues RFC 9068 access tokens (Okta and Entra do not).',
        `${WARNINGS}:15:5: error: routes[3]: duplicates routes[0] (line 12, GET /balance): same methods and path, so it never matches; routes[0] does not require scope "view:balanse" [route_shadowed_weaker]`,
        weakerFix,
        `${WARNINGS}:15:48: warning: routes[3].scopes[0]: scope "view:balanse" is not in known_scopes (a typo, or a scope to declare) [scope_unknown]`,
        '  fix: Correct the scope, or add it to known_scopes if the identity provider grants it.',
        `${WARNINGS}:16:5: error: routes[4]: never matches: routes[1] (line 13, GET,POST /accounts/{id}) matches every request it could; routes[1] does not require scope "transfer:funds" [route_shadowed_weaker]`,
        weakerFix,
        `${WARNINGS}:17:5: error: routes[5]: never matches: routes[2] (line 14, * /files/**) matches every request it could; routes[2] does not require scope "transfer:funds" [route_shadowed_weaker]`,
        weakerFix,
        `${WARNINGS}:18:5: warning: routes[6]: never matches: routes[2] (line 14, * /files/**) matches every request it could [route_shadowed]`,
        shadowFix,
        `${WARNINGS}:26:5: error: routes[12]: never matches: routes[0] (line 12, GET /balance) and routes[11] (line 25, POST /{any}) match every request it could; routes[0] does not require scope "transfer:funds" [route_shadowed_weaker]`,
        weakerFix,
        `${WARNINGS}:27:5: warning: routes[13]: public route * /healthz lists no methods, so POST, PUT, PATCH and DELETE requests to /healthz pass without a token too [public_any_method]`,
        '  fix: List the methods the public route is for, e.g. methods: [GET, HEAD].',
        `${WARNINGS}: 14 routes, 4 error-level findings, 3 warnings, 2 notices: error-level findings fail the check`,
        '',
      ].join('\n'),
    );
  });

  it('--strict fails on warnings, never on notices; a policy without findings passes it', async () => {
    const clean = await check('--strict', CLEAN);
    expect(clean.code).toBe(1);
    expect(clean.stdout).toMatch(/: 4 routes, 1 warning, 1 notice: warnings fail the check \(--strict\)\n$/);
    const notices = await check(CLEAN);
    expect(notices.code).toBe(0);
    expect(notices.stdout).toMatch(/: 4 routes, 1 warning, 1 notice: usable\n$/);

    const spotless = await spotlessPolicy();
    const none = await check('--strict', spotless);
    expect(none.code).toBe(0);
    expect(none.stdout).toBe(`${spotless}: 4 routes, 0 warnings: ok\n`);
  });

  it('error-level findings fail without --strict; accepted ones are shown with the reason and pass', async () => {
    const spotless = await spotlessPolicy();
    const text = await readFile(spotless, 'utf8');
    const risky = spotless.replace('spotless', 'risky');
    await writeFile(risky, `${text}  - { methods: [GET], path: '/**', public: true }\n`);
    const failed = await check(risky);
    expect(failed.code).toBe(1);
    expect(failed.stdout).toBe(
      [
        `${risky}:16:5: error: routes[4]: public route GET /** matches every path, so requests to every endpoint of service "default", including endpoints added later, pass without a token [public_catch_all]`,
        '  fix: Make public only the paths meant to be public (/healthz, /app/**), each with its methods, and require scopes on the rest.',
        `${risky}: 5 routes, 1 error-level finding, 0 warnings: error-level findings fail the check`,
        '',
      ].join('\n'),
    );

    const accepting = spotless.replace('spotless', 'accepting');
    await writeFile(
      accepting,
      `${text}  - methods: [GET]\n    path: /**\n    public: true\n    accept_risks: [{ code: public_catch_all, reason: 'a static mirror: nothing private behind it' }]\n`,
    );
    const passed = await check(accepting);
    expect(passed.code).toBe(0);
    expect(passed.stdout).toMatch(
      /:16:5: error \(accepted\): routes\[4\]: public route GET \/\*\* .* \[public_catch_all\]\n {2}accepted: a static mirror: nothing private behind it\n/,
    );
    expect(passed.stdout).toMatch(/: 5 routes, 0 warnings, 1 accepted: ok\n$/);
    const json = JSON.parse((await check(accepting, '--json')).stdout) as CheckPolicyReport;
    expect(json.ok).toBe(true);
    expect(json.warnings[0]).toMatchObject({
      code: 'public_catch_all',
      level: 'error',
      accepted: { reason: 'a static mirror: nothing private behind it' },
    });
  });

  it('--json gives ok, errors and coded warnings with line and path', async () => {
    const { code, stdout } = await check(WARNINGS, '--json');
    expect(code).toBe(1);
    const report = JSON.parse(stdout) as CheckPolicyReport;
    expect(report.ok).toBe(false);
    expect(report.errors).toEqual([]);
    expect(report.warnings.map((w) => [w.code, w.line, w.path])).toEqual([
      ['scope_unused', 5, 'known_scopes[2]'],
      ['issuer_typ_unchecked', 7, 'issuers[0]'],
      ['route_shadowed_weaker', 15, 'routes[3]'],
      ['scope_unknown', 15, 'routes[3].scopes[0]'],
      ['route_shadowed_weaker', 16, 'routes[4]'],
      ['route_shadowed_weaker', 17, 'routes[5]'],
      ['route_shadowed', 18, 'routes[6]'],
      ['route_shadowed_weaker', 26, 'routes[12]'],
      ['public_any_method', 27, 'routes[13]'],
    ]);
    expect(report.warnings[0]).toEqual({
      code: 'scope_unused',
      level: 'notice',
      line: 5,
      column: 46,
      path: 'known_scopes[2]',
      message: 'known scope "view:statements" is required by no route',
      fix: 'Remove it from known_scopes, or require it on the routes it is meant for.',
    });

    const json = JSON.parse((await check(CLEAN, '--json')).stdout) as CheckPolicyReport;
    expect(json.ok).toBe(true);
    const strict = JSON.parse((await check(CLEAN, '--json', '--strict')).stdout) as CheckPolicyReport;
    expect(strict.ok).toBe(false);
  });

  it('prints each error as file:line:column: path: message and exits 1', async () => {
    const { code, stdout } = await check(BROKEN);
    expect(code).toBe(1);
    expect(stdout).toBe(
      [
        `${BROKEN}:4:30: known_scopes[1]: is not a scope token (RFC 6749 section 3.3: no spaces, quotes or backslashes)`,
        `${BROKEN}:11:39: routes[0].scope: unknown key "scope" (allowed: methods, path, scopes, public, authentication, accept_risks, mode, sender_constraint)`,
        `${BROKEN}: 2 errors: the policy cannot be used`,
        '',
      ].join('\n'),
    );
  });

  it('--json reports errors with file, line, column and path', async () => {
    const { code, stdout } = await check('--json', BROKEN);
    expect(code).toBe(1);
    const report = JSON.parse(stdout) as CheckPolicyReport;
    expect(report.ok).toBe(false);
    expect(report.warnings).toEqual([]);
    expect(report.errors.map((e) => [e.file, e.line, e.column, e.path])).toEqual([
      [BROKEN, 4, 30, 'known_scopes[1]'],
      [BROKEN, 11, 39, 'routes[0].scope'],
    ]);
  });

  it('checks key files as serve does, and reports a missing policy file', async () => {
    const missingKeys = await check(repoFile('test/fixtures/policies/missing-jwks-file.yaml'));
    expect(missingKeys.code).toBe(1);
    expect(missingKeys.stdout).toMatch(/jwks_file of issuer .* does not exist/);

    const missing = await check('no-such-policy.yaml');
    expect(missing.code).toBe(1);
    expect(missing.stdout).toMatch(/^no-such-policy\.yaml: cannot be read \(ENOENT\)\n/);
  });

  it('refuses bad arguments with a UsageError', async () => {
    await expect(check()).rejects.toThrow(UsageError);
    await expect(check('a.yaml', 'b.yaml')).rejects.toThrow(/unexpected argument "b.yaml"/);
    await expect(check('--fix', CLEAN)).rejects.toThrow(UsageError);
  });
});

describe('route shadowing is reported only when certain', () => {
  it('an earlier literal, parameter or rest that covers the later pattern', () => {
    expect(shadowCodes('{ path: /a, public: true }', '{ methods: [GET], path: /a, public: true }')).toEqual([
      'routes[1] route_shadowed',
    ]);
    expect(shadowCodes('{ path: "/a/{x}/c", public: true }', '{ path: "/a/b/c", public: true }')).toEqual([
      'routes[1] route_shadowed',
    ]);
    expect(shadowCodes('{ path: /**, public: true }', '{ path: "/{x}/**", public: true }')).toEqual([
      'routes[1] route_shadowed',
    ]);
    expect(shadowCodes('{ path: /a/**, public: true }', '{ path: /a, public: true }')).toEqual([
      'routes[1] route_shadowed',
    ]);
    expect(shadowCodes('{ path: /a/**, public: true }', '{ path: /a/, public: true }')).toEqual([
      'routes[1] route_shadowed',
    ]);
  });

  it('duplicates, parameter names aside', () => {
    expect(
      shadowCodes(
        '{ methods: [GET, POST], path: "/a/{x}", public: true }',
        '{ methods: [POST, GET], path: "/a/{y}", public: true }',
      ),
    ).toEqual(['routes[1] route_duplicate']);
  });

  it('never for patterns or methods the earlier route does not fully cover', () => {
    const none = (...routes: string[]) => expect(shadowCodes(...routes)).toEqual([]);
    none('{ methods: [GET], path: /a, public: true }', '{ path: /a, public: true }'); // every method
    none('{ methods: [GET], path: /a, public: true }', '{ methods: [GET, POST], path: /a, public: true }');
    none('{ path: "/{x}", public: true }', '{ path: /, public: true }'); // a parameter is never empty
    none('{ path: "/a/{x}", public: true }', '{ path: /a/, public: true }'); // nor the trailing slash
    none('{ path: /a/b, public: true }', '{ path: "/a/{x}", public: true }');
    none('{ path: "/a/{x}", public: true }', '{ path: /a/**, public: true }');
    none('{ path: "/a/{x}/**", public: true }', '{ path: /a/**, public: true }');
    none('{ path: /a, public: true }', '{ path: /a/**, public: true }');
    none('{ path: /a, public: true }', '{ path: /a/b, public: true }');
    none('{ path: /a/b, public: true }', '{ path: /a, public: true }');
    none('{ path: /, public: true }', '{ path: /**, public: true }');
  });

  it('known_scopes compiles to knownScopes; absent, it is undefined', () => {
    const text = demoPolicyText(['{ path: /a, public: true }']);
    expect(compilePolicy(text, 'p.yaml').knownScopes).toBeUndefined();
    const declared = compilePolicy(text.replace('realm:', 'known_scopes: [a, b]\nrealm:'), 'p.yaml');
    expect(declared.knownScopes).toEqual(['a', 'b']);
    expect(Object.isFrozen(declared.knownScopes)).toBe(true);
  });

  it('scope warnings only when known_scopes is declared', () => {
    const text = demoPolicyText(['{ methods: [GET], path: /a, scopes: [anything] }'], {
      issuerSettings: { require_typ: 'at+jwt' },
    });
    expect(policyFindings(compilePolicy(text, 'p.yaml'), new YamlLocations(text))).toEqual([]);
  });
});
