import { createServer, type Server } from 'node:net';
import { setTimeout as delay } from 'node:timers/promises';
import { beforeAll, describe, expect, it } from 'vitest';
import { policyYaml, writeTextFile } from '../kit/authz-harness.js';
import { requireBuild, startCli, startCliAndWait } from '../kit/process.js';
import { startRedisServer, type RedisServer } from '../kit/redis-server.js';
import { cleanupAfterEach, suiteTempDir } from '../kit/test-hooks.js';
import { generateTestKey } from '../kit/tokens.js';

/*
 * `authz serve` with `dpop.replay_store: { type: redis }`: the process's side of the shared store (the
 * store itself: redis-replay-store.test.ts; through Envoy: e2e/replicas-through-envoy.test.ts). It connects
 * before it reports SERVING, says where (never with credentials), serves with a store that cannot be set
 * up (its DPoP proofs refused, everything else as usual), and ends promptly, the connection closed, on
 * SIGTERM or when it cannot listen.
 */

const temp = suiteTempDir('authz-serve-replay-store-');
const defer = cleanupAfterEach();
let jwksFile: string;

beforeAll(async () => {
  requireBuild();
  const key = await generateTestKey('replay-store-key');
  jwksFile = await writeTextFile(temp.dir, 'jwks.json', JSON.stringify({ keys: [key.publicJwk] }));
});

async function redis(): Promise<RedisServer> {
  const server = await startRedisServer({ password: 'very-secret-password' });
  defer(() => server.stop());
  return server;
}

/** The test policy keeping DPoP proofs in Redis, its URL in a file. */
async function policyWithUrlFile(name: string, url: string | undefined): Promise<string> {
  const urlFile =
    url === undefined ? `${temp.dir}/absent-${name}` : await writeTextFile(temp.dir, `${name}-url`, url);
  const text = `dpop:\n  replay_store: { type: redis, url_file: ${urlFile} }\n${policyYaml({ keys: { jwksFile } })}`;
  return writeTextFile(temp.dir, `${name}.yaml`, text);
}

/** How many connections the replay stores hold open to `server` (each names itself). */
async function replayConnections(server: RedisServer): Promise<number> {
  return String(await server.command('CLIENT', 'LIST'))
    .split('\n')
    .filter((line) => line.includes('name=authz-dpop-replay')).length;
}

describe('authz serve with a Redis replay store', () => {
  it('connects before SERVING, says where without the password, and closes the connection on SIGTERM', async () => {
    const server = await redis();
    const policy = await policyWithUrlFile('shared', server.urlWithPassword());
    const { process: run } = await startCliAndWait(['serve', '--policy', policy, '--listen', '127.0.0.1:0'], {
      cwd: temp.dir,
    });
    defer(() => run.stop());

    const health = await run.logLine(
      (line) => line['event'] === 'health' && line['status'] === 'SERVING',
      'health SERVING',
    );
    const available = run
      .logLines()
      .find((line) => line['event'] === 'replay_store' && line['state'] === 'available');
    expect(available).toMatchObject({ store: 'redis', address: server.url, fallback: 'none' });
    // Said before SERVING: start-up waited for the connection.
    expect(run.logLines().indexOf(available!)).toBeLessThan(run.logLines().indexOf(health));
    expect(await replayConnections(server)).toBe(1);

    const finished = await run.stop();
    expect(finished.code).toBe(0);
    expect(finished.stdout + finished.stderr).not.toContain('very-secret-password');
    expect(await replayConnections(server)).toBe(0);
  });

  it('serves when the URL file is missing, saying so once with the file and no content', async () => {
    const policy = await policyWithUrlFile('missing', undefined);
    const { process: run } = await startCliAndWait(['serve', '--policy', policy, '--listen', '127.0.0.1:0'], {
      cwd: temp.dir,
    });
    defer(() => run.stop());
    await run.logLine((line) => line['event'] === 'health' && line['status'] === 'SERVING', 'health SERVING');
    const lines = run.logLines().filter((line) => line['event'] === 'replay_store');
    expect(lines).toEqual([
      expect.objectContaining({
        level: 50, // error
        state: 'unavailable',
        cause: 'settings',
        detail: expect.stringMatching(/url_file .*absent-missing cannot be read \(ENOENT\)/),
      }),
    ]);
    expect((await run.stop()).code).toBe(0);
  });

  it('exits non-zero when it cannot listen, leaving no connection to Redis behind', async () => {
    const server = await redis();
    const policy = await policyWithUrlFile('busy-port', server.urlWithPassword());
    const taken: Server = createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    defer(() => new Promise((resolve) => taken.close(resolve)));
    const { port } = taken.address() as { port: number };

    const run = startCli(['serve', '--policy', policy, '--listen', `127.0.0.1:${port}`], { cwd: temp.dir });
    defer(() => run.stop());
    const finished = await Promise.race([run.finished, delay(15_000).then(() => 'still running' as const)]);
    if (finished === 'still running') throw new Error('authz serve did not exit after failing to listen');
    expect(finished.code).not.toBe(0);
    expect(finished.stdout + finished.stderr).toMatch(/cannot listen on 127\.0\.0\.1/);
    expect(await replayConnections(server)).toBe(0);
  });
});
