import { randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import { status as GrpcStatus } from '@grpc/grpc-js';
import { beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import {
  AUDIENCE,
  headerValue,
  httpCheckRequest,
  ISSUER,
  REALM,
  TOKEN_DEFAULTS,
  writeTextFile,
  type CheckResponseView,
} from '../kit/authz-harness.js';
import { dpopProof, generateDpopKey, type DpopKey } from '../kit/dpop-proofs.js';
import { outcomeOf } from '../kit/policy-server.js';
import { connectionsByProcess } from '../kit/process-connections.js';
import { parseJsonLines, requireBuild, runCli, type KitProcess } from '../kit/process.js';
import { openSeparateConnection, type SeparateConnection } from '../kit/separate-connection.js';
import { startServeInNewDir } from '../kit/serve-process.js';
import { cleanupAfterEach, suiteTempDir } from '../kit/test-hooks.js';
import { generateTestKey, signTestToken, type TestKey } from '../kit/tokens.js';
import { waitUntil } from '../kit/wait-until.js';

/*
 * DPoP server nonces (RFC 9449 section 9) across processes, through the built command line
 * (docs/sender-constraints.md, "Replays, workers and replicas"): a nonce is an HMAC tag over its issue time
 * and the service's name, so every worker of `authz serve --workers N` (the primary hands them one key) and
 * every replica given the same `--dpop-nonce-key` file accepts the nonces of the others; replicas with other
 * keys refuse them. Which worker holds a connection is read from /proc (a decision line does not say which
 * worker decided).
 */

/** The service's host and public origin: the proofs' htu is this origin plus the request path. */
const HOST = 'bank.example';
const PUBLIC_ORIGIN = `https://${HOST}`;
const PATH = '/balance';
const HTU = `${PUBLIC_ORIGIN}${PATH}`;
/** What issue() writes: 24 bytes (issue time and truncated HMAC) in base64url. */
const NONCE_SHAPE = /^[A-Za-z0-9_-]{32}$/;
/** Connections opened, one after another, after the one a nonce was first obtained on. */
const MORE_CONNECTIONS = 20;

const temp = suiteTempDir('authz-dpop-nonce-');
let issuerKey: TestKey;
let holder: DpopKey;
/** A view:balance token bound to the holder's key (cnf.jkt = its RFC 7638 thumbprint). */
let boundToken: string;
let policyFile: string;

beforeAll(async () => {
  requireBuild();
  issuerKey = await generateTestKey('dpop-nonce-key');
  holder = await generateDpopKey('ES256');
  boundToken = await signTestToken(issuerKey, TOKEN_DEFAULTS, {
    claims: { scope: 'view:balance', cnf: { jkt: holder.jkt } },
  });
  const jwksFile = await writeTextFile(
    temp.dir,
    'jwks.json',
    JSON.stringify({ keys: [issuerKey.publicJwk] }),
  );
  const policy = {
    version: 1,
    realm: REALM,
    issuers: [{ issuer: ISSUER, audiences: [AUDIENCE], jwks_file: jwksFile, algorithms: ['RS256'] }],
    services: [
      {
        name: 'bank',
        hosts: [HOST],
        public_origin: PUBLIC_ORIGIN,
        dpop: { nonce: 'required' },
        routes: [
          {
            methods: ['GET'],
            path: PATH,
            scopes: ['view:balance'],
            sender_constraint: { dpop: 'required' },
          },
        ],
      },
    ],
  };
  policyFile = await writeTextFile(temp.dir, 'policy.yaml', stringify(policy));
});

const defer = cleanupAfterEach();

/** A running `authz serve`, as its `started` line describes it. */
interface Serving {
  readonly run: KitProcess;
  readonly port: number;
  /** Under `--workers N`, the workers' process ids. */
  readonly workerPids: readonly number[];
  /** Its decision line for the request `id`, once logged. */
  decision(id: string): Promise<Record<string, unknown>>;
}

/** Starts `authz serve` on the test policy with `args` added; stopped after the test. */
async function serve(args: readonly string[] = []): Promise<Serving> {
  const { process: run, started, port } = await startServeInNewDir(temp.dir, () => policyFile, args);
  defer(() => run.stop(12_000));
  return {
    run,
    port,
    workerPids: (started['worker_pids'] as number[] | undefined) ?? [],
    decision: async (id) => {
      const [line] = await waitUntil(
        () =>
          parseJsonLines(run.stdout()).filter(
            (logged) => logged['event'] === 'decision' && logged['request_id'] === id,
          ),
        (lines) => lines.length === 1,
        { timeoutMs: 10_000, what: `the decision line of ${id}` },
      );
      return line!;
    },
  };
}

/** A connection of its own to `serving` (no other client shares it), closed after the test. */
function connect(serving: Serving): SeparateConnection {
  const connection = openSeparateConnection(serving.port);
  defer(() => connection.close());
  return connection;
}

let keyFiles = 0;

/** A key file of `bytes` random bytes. */
async function keyFile(name: string, bytes: number): Promise<string> {
  const file = path.join(temp.dir, name);
  await writeFile(file, randomBytes(bytes));
  return file;
}

let requestIds = 0;

/**
 * A Check of `GET /balance` on the service's host with `Authorization: DPoP <bound token>` and a fresh proof
 * (new jti, htm GET, htu the public origin plus the path, iat now, ath of the token, typ dpop+jwt, jwk),
 * carrying `nonce` when given. Resolves with the answer and the request id.
 */
async function dpopCheck(
  connection: SeparateConnection,
  nonce?: string,
): Promise<{ response: CheckResponseView; id: string }> {
  const id = `dpop-nonce-${++requestIds}`;
  const proof = await dpopProof(holder, {
    method: 'GET',
    url: HTU,
    accessToken: boundToken,
    ...(nonce === undefined ? {} : { claims: { nonce } }),
  });
  const request = httpCheckRequest({
    id,
    method: 'GET',
    path: PATH,
    host: HOST,
    authorization: `DPoP ${boundToken}`,
  });
  const http = (request['attributes'] as { request: { http: { headers: Record<string, string> } } }).request
    .http;
  http.headers['dpop'] = proof;
  return { response: await connection.check(request), id };
}

/** Asserts a 401 `use_dpop_nonce` answer (RFC 9449 section 8) and returns the nonce its `DPoP-Nonce` carries. */
function nonceAsked(response: CheckResponseView): string {
  expect(outcomeOf(response)).toBe('deny 401');
  expect(response.status?.code).toBe(GrpcStatus.UNAUTHENTICATED);
  const headers = response.denied_response?.headers ?? [];
  const challenges = headers
    .filter((option) => option.header?.key === 'www-authenticate')
    .map((option) => option.header?.value);
  expect(challenges).toHaveLength(1);
  expect(challenges[0]).toMatch(/^DPoP (.*, )?error="use_dpop_nonce"(,|$)/);
  const nonce = headerValue(headers, 'dpop-nonce');
  expect(nonce).toMatch(NONCE_SHAPE);
  return nonce!;
}

/** Asserts that a Check was allowed: gRPC OK with an ok_response. */
function expectAllowed(response: CheckResponseView): void {
  expect(response.status?.code).toBe(GrpcStatus.OK);
  expect(outcomeOf(response)).toBe('allow');
}

/**
 * Runs `send` on a new connection and returns, with its result, which of `pids` took that connection: the
 * one whose count of established connections on `port` grew by one.
 */
async function onNewConnection<T>(
  serving: Serving,
  send: (connection: SeparateConnection) => Promise<T>,
): Promise<{ connection: SeparateConnection; result: T; pid: number }> {
  const { workerPids: pids, port } = serving;
  const before = await connectionsByProcess(pids, port);
  const total = (counts: Map<number, number>) => [...counts.values()].reduce((sum, count) => sum + count, 0);
  const connection = connect(serving);
  const result = await send(connection);
  const after = await waitUntil(
    () => connectionsByProcess(pids, port),
    (counts) => total(counts) === total(before) + 1,
    { timeoutMs: 10_000, what: 'one more connection held by a worker' },
  );
  const grown = pids.filter((pid) => (after.get(pid) ?? 0) === (before.get(pid) ?? 0) + 1);
  expect(grown).toHaveLength(1);
  return { connection, result, pid: grown[0]! };
}

describe('DPoP server nonces under authz serve --workers 2', () => {
  it('accepts on either worker a nonce the other issued, over fresh connections', async () => {
    const serving = await serve(['--workers', '2']);
    expect(serving.workerPids).toHaveLength(2);

    // A proof without a nonce: 401 use_dpop_nonce, and a nonce from the worker that took this connection.
    const first = await onNewConnection(serving, (connection) => dpopCheck(connection));
    const nonce = nonceAsked(first.result.response);
    expect(await serving.decision(first.result.id)).toMatchObject({
      decision: 'deny',
      reason: 'dpop_nonce_missing',
    });

    // That nonce, in a fresh proof on each of many new connections: every one allowed, whichever worker.
    const later: { connection: SeparateConnection; pid: number; outcome: string }[] = [];
    for (let i = 0; i < MORE_CONNECTIONS; i++) {
      const { connection, result, pid } = await onNewConnection(serving, (c) => dpopCheck(c, nonce));
      later.push({ connection, pid, outcome: outcomeOf(result.response) });
    }
    expect(later.map(({ outcome }) => outcome)).toEqual(
      Array.from({ length: MORE_CONNECTIONS }, () => 'allow'),
    );
    const other = serving.workerPids.find((pid) => pid !== first.pid)!;
    // Both workers were reached, the one that did not issue the nonce included.
    expect(new Set(later.map(({ pid }) => pid))).toEqual(new Set(serving.workerPids));
    expect(later.filter(({ pid }) => pid === other).length).toBeGreaterThan(0);

    // And the other way round: a nonce the other worker issues, used on the first worker's connection.
    const onOther = later.find(({ pid }) => pid === other)!.connection;
    const asked = await dpopCheck(onOther);
    const otherNonce = nonceAsked(asked.response);
    expect(await serving.decision(asked.id)).toMatchObject({ reason: 'dpop_nonce_missing' });
    expectAllowed((await dpopCheck(first.connection, otherNonce)).response);
    // Both connections are still held by the workers they were handed to.
    const held = await connectionsByProcess(serving.workerPids, serving.port);
    expect(held.get(first.pid)).toBeGreaterThan(0);
    expect(held.get(other)).toBeGreaterThan(0);
  });

  it("hands the workers the nonce key over IPC: no worker's environment holds it (/proc/PID/environ)", async () => {
    const serving = await serve(['--workers', '2']);
    for (const pid of serving.workerPids) {
      const environment = (await readFile(`/proc/${pid}/environ`, 'utf8')).split('\0');
      const names = environment.map((entry) => entry.slice(0, entry.indexOf('=')));
      // The tests start authz with no AUTHZ_* variable of their own: the primary adds the worker's number.
      expect(names.filter((name) => name.startsWith('AUTHZ_'))).toEqual(['AUTHZ_CLUSTER_WORKER']);
    }
  });
});

describe('DPoP server nonces across replicas (--dpop-nonce-key)', () => {
  it('two replicas given the same key file accept each other’s nonces', async () => {
    const shared = await keyFile('shared.key', 32);
    const [a, b] = await Promise.all([
      serve(['--dpop-nonce-key', shared]),
      serve(['--dpop-nonce-key', shared]),
    ]);
    const [toA, toB] = [connect(a), connect(b)];

    const fromA = nonceAsked((await dpopCheck(toA)).response);
    expectAllowed((await dpopCheck(toB, fromA)).response);
    const fromB = nonceAsked((await dpopCheck(toB)).response);
    expectAllowed((await dpopCheck(toA, fromB)).response);
  });

  it('replicas with different key files refuse each other’s nonces: use_dpop_nonce, dpop_nonce_invalid', async () => {
    const [keyA, keyC] = await Promise.all([keyFile('a.key', 32), keyFile('c.key', 64)]);
    const [a, c] = await Promise.all([serve(['--dpop-nonce-key', keyA]), serve(['--dpop-nonce-key', keyC])]);
    const [toA, toC] = [connect(a), connect(c)];

    const fromA = nonceAsked((await dpopCheck(toA)).response);
    const refused = await dpopCheck(toC, fromA);
    const fromC = nonceAsked(refused.response);
    expect(fromC).not.toBe(fromA);
    expect(await c.decision(refused.id)).toMatchObject({
      decision: 'deny',
      status: 401,
      reason: 'dpop_nonce_invalid',
    });
    // Each accepts its own nonce; the other way round is refused too.
    expectAllowed((await dpopCheck(toC, fromC)).response);
    expectAllowed((await dpopCheck(toA, fromA)).response);
    const back = await dpopCheck(toA, fromC);
    nonceAsked(back.response);
    expect(await a.decision(back.id)).toMatchObject({ reason: 'dpop_nonce_invalid' });
  });
});

describe('--dpop-nonce-key that cannot be used', () => {
  it.each([
    ['a missing file', undefined, [] as string[], 'cannot read'],
    ['a file of 31 bytes', 31, [] as string[], 'must hold 32 to 4096 bytes'],
    ['a missing file, under --workers 2', undefined, ['--workers', '2'], 'cannot read'],
    ['a file of 31 bytes, under --workers 2', 31, ['--workers', '2'], 'must hold 32 to 4096 bytes'],
  ])('%s: exit 2 before listening, the message naming the flag', async (_, bytes, args, problem) => {
    const file =
      bytes === undefined
        ? path.join(temp.dir, 'no-such.key')
        : await keyFile(`short-${++keyFiles}.key`, bytes);
    const { code, stdout, stderr } = await runCli(
      ['serve', '--policy', policyFile, '--listen', '127.0.0.1:0', '--dpop-nonce-key', file, ...args],
      { cwd: temp.dir },
    );
    expect(code).toBe(2);
    expect(stdout).toBe(''); // no `started` line, nor any other
    expect(stderr).toContain(`authz: --dpop-nonce-key: `);
    expect(stderr).toContain(file);
    expect(stderr).toContain(problem);
  });
});
