import { basename } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  checkPolicyCommand,
  type CheckPolicyReport,
} from '../../../src/policy-tools/check-policy-command.js';
import { captureIo } from '../../kit/capture-io.js';
import { writeGatewayDirectory } from '../../kit/policy-directory-files.js';

const removals: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const remove of removals.splice(0)) await remove();
});

/** check-policy on a policy directory written by the kit, its folder shown as DIR in the output. */
async function checkDirectory(files: Readonly<Record<string, string | null>>, ...args: string[]) {
  const { folder, remove } = await writeGatewayDirectory(files);
  removals.push(remove);
  const capture = captureIo();
  const code = await checkPolicyCommand([folder, ...args], capture.io);
  const shown = (text: string) => text.split(folder).join('DIR');
  return { code, stdout: shown(capture.stdout()), stderr: capture.stderr(), folder };
}

describe('authz check-policy DIR', () => {
  it('prints a verdict per file, then the findings each in its own file, then the summary; exit 0', async () => {
    const { code, stdout, stderr } = await checkDirectory({});
    expect(stderr).toBe('');
    expect(code).toBe(0);
    expect(stdout).toBe(
      [
        'DIR/_gateway.yaml: root, owner platform: in force',
        'DIR/bank.yaml: service file, owner team-bank, services bank: in force',
        'DIR/statements.yaml: service file, owner team-statements, services statements: in force',
        'DIR/bank.yaml:8:9: warning: services[0].routes[1]: public route * /healthz lists no methods, so POST, PUT, PATCH and DELETE requests to /healthz pass without a token too [public_any_method]',
        '  fix: List the methods the public route is for, e.g. methods: [GET, HEAD].',
        'DIR: 2 services, 3 routes, 1 warning: usable',
        '',
      ].join('\n'),
    );
  });

  it('a refused file and a file the root does not admit: their problems indented, exit 1', async () => {
    const broken =
      'owner: team-statements\nservices:\n  - name: statements\n    hosts: [statements.example]\n    realm: statements-api\n    bogus: 1\n    routes: []\n';
    const { code, stdout } = await checkDirectory({
      'statements.yaml': broken,
      'extra.yaml': 'owner: team-x\nservices: []\n',
    });
    expect(code).toBe(1);
    const lines = stdout.split('\n');
    expect(lines.slice(0, 6)).toEqual([
      'DIR/_gateway.yaml: root, owner platform: in force',
      'DIR/bank.yaml: service file, owner team-bank, services bank: in force',
      'DIR/extra.yaml: service file, owner team-x, services none: not admitted [ERR_POLICY_FILE_NOT_ADMITTED]',
      "  DIR/extra.yaml: not admitted by _gateway.yaml's service_files: it serves nothing until the root lists it",
      'DIR/statements.yaml: service file, owner team-statements, services none: refused (serving nothing) [ERR_POLICY_INVALID]',
      expect.stringMatching(/^ {2}DIR\/statements\.yaml:6:5: services\[0\]\.bogus: unknown key "bogus"/),
    ]);
    expect(lines.at(-2)).toBe(
      'DIR: 1 service, 2 routes, 1 warning, 1 notice, 2 of 4 files refused or not admitted: the directory fails the check',
    );
  });

  it('--json: the verdicts in files, each finding with its file; ok false for a refused file', async () => {
    const good = await checkDirectory({}, '--json');
    const report = JSON.parse(good.stdout) as CheckPolicyReport;
    expect(good.code).toBe(0);
    expect(report.ok).toBe(true);
    expect(report.files?.map((f) => [f.name, f.role, f.owner, f.outcome, f.services])).toEqual([
      ['_gateway.yaml', 'root', 'platform', 'accepted', []],
      ['bank.yaml', 'service', 'team-bank', 'accepted', ['bank']],
      ['statements.yaml', 'service', 'team-statements', 'accepted', ['statements']],
    ]);
    expect(report.warnings.map((w) => [w.file, w.code])).toEqual([['DIR/bank.yaml', 'public_any_method']]);

    const refused = await checkDirectory({ 'bank.yaml': 'owner: team-bank\nservices: [' }, '--json');
    expect(refused.code).toBe(1);
    expect((JSON.parse(refused.stdout) as CheckPolicyReport).ok).toBe(false);
  });

  it('a directory whose root cannot be used: the errors, as for a file that cannot be used; exit 1', async () => {
    const { code, stdout, folder } = await checkDirectory({
      '_gateway.yaml': 'version: 1\nowner: platform\n',
    });
    expect(code).toBe(1);
    expect(stdout).toMatch(/^DIR\/_gateway\.yaml/);
    expect(stdout).toMatch(/\nDIR: \d+ errors?: the policy cannot be used\n$/);
    expect(basename(folder)).toBe('policy.d');
  });

  it('a key file the root names must exist, as for serve', async () => {
    const root = `version: 1\nservice_files: [bank.yaml]\nissuers:\n  - issuer: https://idp.example/\n    audiences: [a]\n    jwks_file: missing.json\n    algorithms: [RS256]\n`;
    const { code, stdout } = await checkDirectory({ '_gateway.yaml': root, 'statements.yaml': null });
    expect(code).toBe(1);
    expect(stdout).toContain('jwks_file of issuer "https://idp.example/" does not exist');
  });
});
