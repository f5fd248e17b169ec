import { existsSync } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import * as path from 'node:path';
import { createLocalJWKSet, decodeJwt, decodeProtectedHeader, jwtVerify, type JWK } from 'jose';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  AUDIENCE,
  connectCheckClient,
  headerValue,
  httpCheckRequest,
  ISSUER,
  policyYaml,
  writeTextFile,
} from '../kit/authz-harness.js';
import { freePort } from '../kit/free-port.js';
import {
  CLI_BUILDS,
  missingBuild,
  requireBuild,
  runCli as runBuiltCli,
  startCli as startBuiltCli,
  startedLine,
} from '../kit/process.js';
import { suiteTempDir } from '../kit/test-hooks.js';
import { waitUntil } from '../kit/wait-until.js';

/*
 * The built command line (`node dist/cli/main.js`), as a user or a container runs it. `npm test` builds
 * dist/ first (pretest); a missing build is a failure with a clear message, never a skip.
 */

const cliPath = CLI_BUILDS.full;
const MISSING_BUILD = missingBuild(cliPath);

/** The documented commands (docs/cli.md): the sidecar's, then the demo's. */
const SIDECAR_COMMANDS = ['serve', 'check-policy', 'explain', 'test', 'diff', 'owners'];
const DEMO_COMMANDS = ['bank', 'statements', 'dev-token', 'dev-idp', 'demo-client'];

const startCli = (args: readonly string[], cwd: string, env: Record<string, string> = {}) =>
  startBuiltCli(args, { cwd, env });
const runCli = (args: readonly string[], cwd: string, env: Record<string, string> = {}) =>
  runBuiltCli(args, { cwd, env });

describe('authz command line (dist/cli/main.js)', () => {
  const temp = suiteTempDir('authz-cli-');
  let devDir: string;

  beforeAll(() => {
    requireBuild(cliPath);
    devDir = path.join(temp.dir, 'dev'); // created by dev-token
  });

  it('is built', () => {
    expect(existsSync(cliPath), MISSING_BUILD).toBe(true);
  });

  it('lists every command, sidecar and demo, on --help, -h, help and no command (exit 0, stdout)', async () => {
    for (const args of [['--help'], ['-h'], ['help'], []]) {
      const { code, stdout, stderr } = await runCli(args, temp.dir);
      expect(code).toBe(0);
      expect(stderr).toBe('');
      expect(stdout).toMatch(/^usage: authz <command>/);
      const listed = [...stdout.matchAll(/^ {2}([a-z-]+)/gm)].map((match) => match[1]);
      expect(listed).toEqual([...SIDECAR_COMMANDS, ...DEMO_COMMANDS]);
    }
  });

  it.each([...SIDECAR_COMMANDS, ...DEMO_COMMANDS])(
    'prints the usage of %s for --help, -h and help COMMAND (exit 0, stdout)',
    async (command) => {
      const answers = await Promise.all([
        runCli([command, '--help'], temp.dir),
        runCli([command, '-h'], temp.dir),
        runCli(['help', command], temp.dir),
      ]);
      for (const { code, stdout, stderr } of answers) {
        expect(stderr).toBe('');
        expect(code).toBe(0);
        expect(stdout.startsWith(`usage: authz ${command}`)).toBe(true);
        expect(stdout).toBe(answers[0]!.stdout);
      }
      // The same words as in the general listing: both come from the command table.
      const { stdout: listing } = await runCli(['--help'], temp.dir);
      const summary = answers[0]!.stdout.split('\n\n')[1]!.trim().split('\n')[0]!.trim();
      expect(listing).toContain(summary);
    },
  );

  it('takes --help as a request for help wherever it is, before a -- terminator', async () => {
    const { code, stdout } = await runCli(['serve', '--policy', 'x.yaml', '--help'], temp.dir);
    expect(code).toBe(0);
    expect(stdout).toMatch(/^usage: authz serve --policy FILE/);

    const after = await runCli(['test', '--', '--help'], temp.dir);
    expect(after.code).toBe(1); // a policy test file named "--help", which does not exist
    expect(after.stdout).not.toMatch(/^usage:/);
  });

  it('exits 2 on an unknown command, with the message then the usage on stderr', async () => {
    const { code, stdout, stderr } = await runCli(['frobnicate'], temp.dir);
    expect(code).toBe(2);
    expect(stdout).toBe('');
    expect(stderr).toMatch(/^authz: unknown command "frobnicate"\n\nusage: authz <command>/);
    expect(stderr).not.toContain('did you mean');
    for (const command of [...SIDECAR_COMMANDS, ...DEMO_COMMANDS])
      expect(stderr).toMatch(new RegExp(`^  ${command} `, 'm'));

    const unknownTopic = await runCli(['help', 'frobnicate'], temp.dir);
    expect(unknownTopic.code).toBe(2);
    expect(unknownTopic.stderr).toContain('unknown command "frobnicate"');
  });

  it.each([
    ['servee', 'serve'],
    ['tset', 'test'],
    ['dev-tokn', 'dev-token'],
    ['check-polcy', 'check-policy'],
  ])('suggests the nearest command for %s', async (typed, meant) => {
    const { code, stderr } = await runCli([typed], temp.dir);
    expect(code).toBe(2);
    expect(stderr.split('\n')[0]).toBe(`authz: unknown command "${typed}"; did you mean "${meant}"?`);
  });

  it("prints the command's own usage after a usage error", async () => {
    const { code, stdout, stderr } = await runCli(['bank', '--listen'], temp.dir);
    expect(code).toBe(2);
    expect(stdout).toBe('');
    expect(stderr).toMatch(/^authz: .*--listen.*\n\nusage: authz bank \[--listen HOST:PORT\]/);
  });

  it('exits 2 naming --policy when serve has no policy', async () => {
    const { code, stderr } = await runCli(['serve'], temp.dir);
    expect(code).toBe(2);
    expect(stderr).toContain('--policy');

    const badListen = await runCli(['serve', '--policy', 'policy.yaml', '--listen', 'everywhere'], temp.dir);
    expect(badListen.code).toBe(2);
    expect(badListen.stderr).toContain('--listen: "everywhere" is not HOST:PORT');
  });

  it('exits 1 and names file:line:column of each problem when the policy is invalid', async () => {
    const file = await writeTextFile(
      temp.dir,
      'broken.yaml',
      [
        'version: 1',
        'realm: bank-api',
        'issuers:',
        `  - issuer: ${ISSUER}`,
        `    audiences: [${AUDIENCE}]`,
        '    jwks_uri: https://idp.example/.well-known/jwks.json',
        '    algorithms: [RS256, HS256]',
        'routes:',
        '  - { methods: [GET], path: /balance, scope: [view:balance] }',
        '',
      ].join('\n'),
    );
    const { code, stdout, stderr } = await runCli(
      ['serve', '--policy', file, '--listen', '127.0.0.1:0'],
      temp.dir,
    );
    expect(code).toBe(1);
    expect(stdout).toBe(''); // never started, so never logged "started"
    expect(stderr).toContain('ERR_POLICY_INVALID');
    expect(stderr).toContain(`${file}:7:`);
    expect(stderr).toMatch(
      new RegExp(`${escapeRegExp(file)}:7:\\d+: issuers\\[0\\]\\.algorithms\\[1\\]: must be one of`),
    );
    expect(stderr).toMatch(
      new RegExp(`${escapeRegExp(file)}:9:\\d+: routes\\[0\\]\\.scope: unknown key "scope"`),
    );

    const missing = path.join(temp.dir, 'no-such-policy.yaml');
    const absent = await runCli(['serve', '--policy', missing], temp.dir);
    expect(absent.code).toBe(1);
    expect(absent.stderr).toContain('ERR_POLICY_READ');
    expect(absent.stderr).toContain(missing);
  });

  describe('dev-token', () => {
    let token: string;

    beforeAll(async () => {
      const { code, stdout, stderr } = await runCli(
        ['dev-token', '--scope', 'view:balance', '--ttl', '5m'],
        temp.dir,
        {
          AUTHZ_DEV_DIR: devDir,
        },
      );
      expect(stderr).toBe('');
      expect(code).toBe(0);
      expect(stdout).toMatch(/^[\w-]+\.[\w-]+\.[\w-]+\n$/);
      token = stdout.trim();
    });

    it('prints an RS256 JWT for the development issuer and audience, with the scope and ttl asked for', async () => {
      const header = decodeProtectedHeader(token);
      expect(header).toMatchObject({ alg: 'RS256', typ: 'at+jwt' });
      expect(header.kid).toEqual(expect.any(String));
      expect(header.kid).not.toBe('');

      const payload = decodeJwt(token);
      expect(payload).toMatchObject({ scope: 'view:balance', sub: 'alice', iss: ISSUER, aud: AUDIENCE });
      expect((payload.exp ?? 0) - (payload.iat ?? 0)).toBe(300);
      expect(Math.abs((payload.iat ?? 0) - Date.now() / 1000)).toBeLessThan(60);

      // It verifies against the public key set written next to the private key.
      const jwks = JSON.parse(await readFile(path.join(devDir, 'jwks.json'), 'utf8')) as { keys: JWK[] };
      expect(jwks.keys.map((jwk) => jwk.kid)).toEqual([header.kid]);
      const verified = await jwtVerify(token, createLocalJWKSet(jwks), {
        issuer: ISSUER,
        audience: AUDIENCE,
      });
      expect(verified.payload.sub).toBe('alice');
    });

    it('keeps the private key to its owner (0600) and publishes only the public half', async () => {
      const keyFile = path.join(devDir, 'signing-key.json');
      expect((await stat(keyFile)).mode & 0o777).toBe(0o600);
      expect((await stat(devDir)).mode & 0o077).toBe(0);
      const jwks = JSON.parse(await readFile(path.join(devDir, 'jwks.json'), 'utf8')) as { keys: JWK[] };
      for (const jwk of jwks.keys) {
        for (const member of ['d', 'p', 'q', 'dp', 'dq', 'qi']) expect(jwk).not.toHaveProperty(member);
      }
    });

    it('reuses the key on the next run (same kid, same key files)', async () => {
      const keyFile = path.join(devDir, 'signing-key.json');
      const before = {
        key: await readFile(keyFile, 'utf8'),
        jwks: await readFile(path.join(devDir, 'jwks.json'), 'utf8'),
      };
      const again = await runCli(['dev-token', '--scope', 'transfer:funds', '--sub', 'bob'], temp.dir, {
        AUTHZ_DEV_DIR: devDir,
      });
      expect(again.code).toBe(0);
      const second = again.stdout.trim();
      expect(decodeProtectedHeader(second).kid).toBe(decodeProtectedHeader(token).kid);
      expect(decodeJwt(second)).toMatchObject({ scope: 'transfer:funds', sub: 'bob' });
      expect(await readFile(keyFile, 'utf8')).toBe(before.key);
      expect(await readFile(path.join(devDir, 'jwks.json'), 'utf8')).toBe(before.jwks);
    });

    it('serve: starts on the given port, logs a JSON "started" line, allows a dev token, exits 0 on SIGTERM', async () => {
      const policyFile = await writeTextFile(
        temp.dir,
        'policy.yaml',
        policyYaml({ keys: { jwksFile: path.relative(temp.dir, path.join(devDir, 'jwks.json')) } }),
      );
      const port = await freePort();
      const serve = startCli(['serve', '--policy', policyFile, '--listen', `127.0.0.1:${port}`], temp.dir);
      const started = await startedLine(serve);
      expect(started).toMatchObject({
        level: 30,
        service: 'authz',
        port,
        listen: `127.0.0.1:${port}`,
        policy: policyFile,
        policy_version: expect.stringMatching(/^[0-9a-f]{16}$/),
      });

      const client = connectCheckClient(port);
      try {
        const response = await client.check(
          httpCheckRequest({
            id: 'cli-1',
            method: 'GET',
            path: '/balance',
            authorization: `Bearer ${token}`,
          }),
        );
        expect(response.status?.code).toBe(0);
        expect(headerValue(response.ok_response?.headers ?? [], 'x-auth-subject')).toBe('alice');
        const denied = await client.check(
          httpCheckRequest({ id: 'cli-2', method: 'POST', path: '/transfer' }),
        );
        expect(denied.denied_response?.status?.code).toBe(401);
      } finally {
        client.close();
      }
      // The log lines travel through a pipe and may arrive after the gRPC answers.
      const decisions = await waitUntil(
        () => serve.logLines().filter((line) => line['event'] === 'decision'),
        (lines) => lines.length >= 2,
        { timeoutMs: 5_000, intervalMs: 25, what: 'two decision log lines' },
      );
      expect(decisions).toEqual([
        expect.objectContaining({ request_id: 'cli-1', decision: 'allow', subject: 'alice' }),
        expect.objectContaining({ request_id: 'cli-2', decision: 'deny', reason: 'credentials_missing' }),
      ]);
      expect(serve.stdout()).not.toContain(token);
      expect(serve.stdout()).not.toContain(token.split('.')[2]);

      const result = await serve.stop(12_000);
      expect(result.code).toBe(0);
      expect(result.stderr).toBe('');
    });
  });
});

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
