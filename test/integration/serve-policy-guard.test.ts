import { beforeAll, describe, expect, it } from 'vitest';
import { policyYaml, writeTextFile } from '../kit/authz-harness.js';
import { requireBuild, runCli, startCli, startedLine } from '../kit/process.js';
import { suiteTempDir } from '../kit/test-hooks.js';
import { generateTestKey } from '../kit/tokens.js';

/*
 * The reload guard at start (docs/policy-checks.md): `authz serve` refuses a policy with an error-level
 * finding not accepted, as a hot reload to it is refused, so that a refused file left on disk is never
 * served by the next pod, replica or worker that starts. `--allow-policy-errors` is the escape hatch.
 */

const temp = suiteTempDir('authz-serve-guard-');
let jwksFile: string;

beforeAll(async () => {
  requireBuild();
  const key = await generateTestKey('guard-key');
  jwksFile = await writeTextFile(temp.dir, 'jwks.json', JSON.stringify({ keys: [key.publicJwk] }));
});

/** The test policy with a public catch-all appended: an error-level finding (public_catch_all). */
const withCatchAll = (extra = '') =>
  `${policyYaml({ keys: { jwksFile } })}  - { path: '/**', public: true }\n${extra}`;

describe('authz serve: error-level findings at start', () => {
  it('refuses to start, naming the finding with file:line, its code and the way out (exit 1)', async () => {
    const policy = await writeTextFile(temp.dir, 'catch-all.yaml', withCatchAll());
    const { code, stdout, stderr } = await runCli(['serve', '--policy', policy, '--listen', '127.0.0.1:0'], {
      cwd: temp.dir,
    });

    expect(code).toBe(1);
    expect(stderr).toMatch(/^authz: the policy cannot be used \(ERR_POLICY_FINDINGS\):\n/);
    expect(stderr).toMatch(
      new RegExp(
        `${policy.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:\\d+:\\d+: routes\\[\\d+\\]: .*\\(public_catch_all; fix: .*--allow-policy-errors\\)`,
      ),
    );
    expect(stdout).not.toMatch(/"event":"started"/);
  });

  it('starts with --allow-policy-errors, and says so in a warning', async () => {
    const policy = await writeTextFile(temp.dir, 'allowed.yaml', withCatchAll());
    const run = startCli(['serve', '--policy', policy, '--listen', '127.0.0.1:0', '--allow-policy-errors'], {
      cwd: temp.dir,
    });
    await startedLine(run);
    expect(run.logLines()).toContainEqual(
      expect.objectContaining({ event: 'policy_errors_allowed', level: 40, codes: ['public_catch_all'] }),
    );
    expect((await run.stop(12_000)).code).toBe(0);
  });

  it('starts when AUTHZ_ALLOW_POLICY_ERRORS=true, and refuses another value as a usage error', async () => {
    const policy = await writeTextFile(temp.dir, 'by-variable.yaml', withCatchAll());
    const run = startCli(['serve', '--policy', policy, '--listen', '127.0.0.1:0'], {
      cwd: temp.dir,
      env: { AUTHZ_ALLOW_POLICY_ERRORS: 'true' },
    });
    await startedLine(run);
    expect((await run.stop(12_000)).code).toBe(0);

    const refused = await runCli(['serve', '--policy', policy], {
      cwd: temp.dir,
      env: { AUTHZ_ALLOW_POLICY_ERRORS: 'yes' },
    });
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain('authz: AUTHZ_ALLOW_POLICY_ERRORS: "yes" is not true or false\n');
  });

  it('starts on such a policy that turns the guard off (reload_guard: off), as a reload to it would apply', async () => {
    const policy = await writeTextFile(temp.dir, 'guard-off.yaml', `reload_guard: off\n${withCatchAll()}`);
    const run = startCli(['serve', '--policy', policy, '--listen', '127.0.0.1:0'], { cwd: temp.dir });
    await startedLine(run);
    expect((await run.stop(12_000)).code).toBe(0);
  });

  it('starts on such a policy when the route accepts the risk (accept_risks)', async () => {
    const accepted = withCatchAll().replace(
      "  - { path: '/**', public: true }\n",
      "  - { path: '/**', public: true, accept_risks: [{ code: public_catch_all, reason: 'a public site' }] }\n",
    );
    const policy = await writeTextFile(temp.dir, 'accepted.yaml', accepted);
    const run = startCli(['serve', '--policy', policy, '--listen', '127.0.0.1:0'], { cwd: temp.dir });
    await startedLine(run);
    expect((await run.stop(12_000)).code).toBe(0);
  });
});
