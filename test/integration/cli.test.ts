import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import * as path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { createLocalJWKSet, decodeJwt, decodeProtectedHeader, jwtVerify, type JWK } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  AUDIENCE,
  connectCheckClient,
  createTempDir,
  freePort,
  headerValue,
  httpCheckRequest,
  ISSUER,
  policyYaml,
  writeTextFile,
} from '../support/authz-harness.js';

/*
 * The built command line (`node dist/cli/main.js`), as a user or a container runs it. `npm test` builds
 * dist/ first (pretest); a missing build is a failure with a clear message, never a skip.
 */

const repoRoot = fileURLToPath(new URL('../../', import.meta.url));
const cliPath = path.join(repoRoot, 'dist', 'cli', 'main.js');
const MISSING_BUILD = `${cliPath} is missing: run "npm run build" first (npm test does so in pretest)`;

/** The environment without any AUTHZ_* / BANK_* setting of the machine running the tests. */
function cleanEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(process.env)) {
    if (!name.startsWith('AUTHZ_') && !name.startsWith('BANK_')) env[name] = value;
  }
  return { ...env, ...extra };
}

interface Finished {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

const children = new Set<ChildProcess>();

function startCli(args: readonly string[], cwd: string, env: Record<string, string> = {}) {
  if (!existsSync(cliPath)) throw new Error(MISSING_BUILD);
  const child = spawn(process.execPath, [cliPath, ...args], {
    cwd,
    env: cleanEnv(env),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.add(child);
  let stdout = '';
  let stderr = '';
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const finished = new Promise<Finished>((resolve) =>
    child.once('close', (code) => {
      children.delete(child);
      resolve({ code, stdout, stderr });
    }),
  );
  return { child, finished, stdout: () => stdout, stderr: () => stderr };
}

/** Runs a command that is expected to end by itself (killed after 15 s). */
async function runCli(args: readonly string[], cwd: string, env: Record<string, string> = {}) {
  const run = startCli(args, cwd, env);
  const timer = setTimeout(() => run.child.kill('SIGKILL'), 15_000);
  const result = await run.finished;
  clearTimeout(timer);
  return result;
}

describe('authz command line (dist/cli/main.js)', () => {
  let temp: { dir: string; remove: () => Promise<void> };
  let devDir: string;

  beforeAll(async () => {
    if (!existsSync(cliPath)) throw new Error(MISSING_BUILD);
    temp = await createTempDir('authz-cli-');
    devDir = path.join(temp.dir, 'dev'); // created by dev-token
  });

  afterAll(async () => {
    for (const child of children) child.kill('SIGKILL');
    await temp?.remove();
  });

  it('is built', () => {
    expect(existsSync(cliPath), MISSING_BUILD).toBe(true);
  });

  it('--help exits 0 and lists serve, bank and dev-token', async () => {
    for (const args of [['--help'], []]) {
      const { code, stdout, stderr } = await runCli(args, temp.dir);
      expect(code).toBe(0);
      expect(stderr).toBe('');
      expect(stdout).toMatch(/^usage: authz <command>/);
      for (const command of ['serve', 'bank', 'dev-token'])
        expect(stdout).toMatch(new RegExp(`^  ${command} `, 'm'));
    }
  });

  it('exits 2 on an unknown command', async () => {
    const { code, stdout, stderr } = await runCli(['frobnicate'], temp.dir);
    expect(code).toBe(2);
    expect(stdout).toBe('');
    expect(stderr).toContain('unknown command "frobnicate"');
    expect(stderr).toContain('usage: authz');
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
      // Only complete lines: the pipe may hand over half a line at a time.
      const logLines = () =>
        serve
          .stdout()
          .split('\n')
          .slice(0, -1)
          .filter((line) => line !== '')
          .map((line) => JSON.parse(line) as Record<string, unknown>);

      const deadline = Date.now() + 10_000;
      let exited: Finished | undefined;
      void serve.finished.then((result) => (exited = result));
      while (!logLines().some((line) => line['event'] === 'started')) {
        if (exited !== undefined)
          throw new Error(`serve exited (${exited.code}):\n${exited.stdout}${exited.stderr}`);
        if (Date.now() > deadline)
          throw new Error(`serve did not start in 10 s:\n${serve.stdout()}${serve.stderr()}`);
        await delay(25);
      }
      expect(logLines().find((line) => line['event'] === 'started')).toMatchObject({
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
      const logDeadline = Date.now() + 5_000;
      while (
        logLines().filter((line) => line['event'] === 'decision').length < 2 &&
        Date.now() < logDeadline
      ) {
        await delay(25);
      }
      expect(logLines().filter((line) => line['event'] === 'decision')).toEqual([
        expect.objectContaining({ request_id: 'cli-1', decision: 'allow', subject: 'alice' }),
        expect.objectContaining({ request_id: 'cli-2', decision: 'deny', reason: 'credentials_missing' }),
      ]);
      expect(serve.stdout()).not.toContain(token);
      expect(serve.stdout()).not.toContain(token.split('.')[2]);

      serve.child.kill('SIGTERM');
      const killer = setTimeout(() => serve.child.kill('SIGKILL'), 12_000);
      const result = await serve.finished;
      clearTimeout(killer);
      expect(result.code).toBe(0);
      expect(result.stderr).toBe('');
    });
  });
});

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
