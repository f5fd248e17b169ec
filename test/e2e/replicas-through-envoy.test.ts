import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { dpopProof, generateDpopKey, type DpopKey } from '../kit/dpop-proofs.js';
import { startDeployedEnvoy, type RunningEnvoy } from '../kit/envoy.js';
import { freePorts } from '../kit/free-port.js';
import { connectionsByProcess } from '../kit/process-connections.js';
import type { LogLine } from '../kit/process.js';
import { rawRequest } from '../kit/raw-http.js';
import { startRecordingUpstream, type RecordingUpstream } from '../kit/recording-upstream.js';
import { startRedisServer, type RedisServer } from '../kit/redis-server.js';
import { startServe, type ServeProcess } from '../kit/serve-process.js';
import { startServedIssuer, type ServedIssuer } from '../kit/served-issuer.js';
import { waitUntil } from '../kit/wait-until.js';

// A fleet behind one real Envoy (envoy/envoy.yaml, ports changed, its authz cluster given two endpoints
// balanced round robin): two replicas of `authz serve --workers 2`, sharing one real Redis as the DPoP replay
// store (`dpop.replay_store: {type: redis}`) and one nonce key (`--dpop-nonce-key`). A proof is accepted
// once across the fleet, a nonce of one replica is accepted by the other, and when Redis dies or stalls
// every DPoP request is refused 503 by the sidecar (never accepted without its replay check, never left to
// Envoy's own timeout) until Redis is back.
//
// Which replica decided is the process whose output has the decision line (each request carries a token of
// its own subject, so a line names its request); which worker held the connection is read from /proc (a
// decision line does not say which worker decided: its fields are a fixed interface).

const ISSUER = 'https://issuer.replicas-e2e.test/';
const AUDIENCE = 'https://my-banking-api';
const REALM = 'bank-api';
/** The nonce service's host and public origin (its proofs' htu is this origin plus the path). */
const NONCE_HOST = 'nonce.test';
const NONCE_ORIGIN = `https://${NONCE_HOST}`;
const REPLICAS = 2;
const WORKERS = 2;
/** Envoy's worker threads: each keeps its own connection to each replica, which spreads them over workers. */
const ENVOY_THREADS = 4;
/** dpop.replay_store.timeout: how long a claim waits for Redis before it is answered 503. */
const STORE_TIMEOUT_MS = 100;
/** The ext_authz gRPC timeout of envoy/envoy.yaml: past it, Envoy answers 503 itself. */
const ENVOY_AUTHZ_TIMEOUT_MS = 1_000;
/** The steady client's pace: one request every this many milliseconds. */
const STEADY_INTERVAL_MS = 25;
/** Requests the steady client sends while Redis is down (or paused), at least. */
const OUTAGE_REQUESTS = 40;
/** Reconnection backoff is at most 2 s plus 50 ms jitter (redis-replay-store.ts): Redis is used again within this. */
const RECOVERY_BOUND_MS = 5_000;
/** Deadlines for a loaded machine, not measures: each wait ends as soon as its condition holds. */
const DEADLINE_MS = 15_000;

/** One replica: its process, and the port its workers share. */
interface Replica extends ServeProcess {
  readonly name: string;
  readonly workerPids: readonly number[];
}

/** One request through Envoy, as the client saw it. */
interface Exchange {
  /** The token's subject: the key to the request's decision line. */
  readonly subject: string;
  readonly sentAt: number;
  readonly answeredAt: number;
  readonly status: number;
  readonly contentType: string | undefined;
  readonly challenge: string | undefined;
  readonly nonce: string | undefined;
  readonly body: string;
}

let dir: string;
let redis: RedisServer;
let issuer: ServedIssuer;
let upstream: RecordingUpstream;
let envoy: RunningEnvoy;
let origin: string;
const replicas: Replica[] = [];
let subjects = 0;

/** A view:balance token of a subject of its own, bound to `key` (cnf.jkt). */
async function boundToken(key: DpopKey, prefix: string): Promise<{ token: string; subject: string }> {
  const subject = `${prefix}-${++subjects}`;
  const token = await issuer.token({
    claims: { sub: subject, scope: 'view:balance', cnf: { jkt: key.jkt } },
  });
  return { token, subject };
}

/** A proof from `key` for GET /balance at `at` (an origin), with the token's `ath` and maybe a nonce. */
function proofFor(key: DpopKey, token: string, at = origin, nonce?: string): Promise<string> {
  return dpopProof(key, {
    method: 'GET',
    url: `${at}/balance`,
    accessToken: token,
    ...(nonce === undefined ? {} : { claims: { nonce } }),
  });
}

/** GET /balance through Envoy with `Authorization: DPoP <token>` and the proof, on a fresh connection. */
async function send(subject: string, token: string, proof: string, host?: string): Promise<Exchange> {
  const sentAt = performance.now();
  const answer = await rawRequest(envoy.baseUrl, '/balance', {
    headers: { authorization: `DPoP ${token}`, dpop: proof, ...(host === undefined ? {} : { host }) },
  });
  const header = (name: string) => {
    const value = answer.headers[name];
    return Array.isArray(value) ? value.join('\n') : value;
  };
  return {
    subject,
    sentAt,
    answeredAt: performance.now(),
    status: answer.status,
    contentType: header('content-type'),
    challenge: header('www-authenticate'),
    nonce: header('dpop-nonce'),
    body: answer.body,
  };
}

/** A fresh token and proof from `key`, sent. */
async function sendFresh(key: DpopKey, prefix: string): Promise<Exchange> {
  const { token, subject } = await boundToken(key, prefix);
  return send(subject, token, await proofFor(key, token));
}

/** The JSON body's `error`, or undefined for a body that is not JSON (Envoy's own 503 has none). */
function bodyError(exchange: Exchange): unknown {
  try {
    return (JSON.parse(exchange.body) as Record<string, unknown>)['error'];
  } catch {
    return undefined;
  }
}

/** Every decision line of the fleet so far, with the replica that logged it. */
function decisions(): Array<{ replica: string; line: LogLine }> {
  return replicas.flatMap((replica) =>
    replica.process
      .logLines()
      .filter((line) => line['event'] === 'decision')
      .map((line) => ({ replica: replica.name, line })),
  );
}

/**
 * The decision lines of these subjects, once each has `perSubject` of them (the lines are written within
 * milliseconds of the answer; the wait bounds a loaded machine, and a subject with more lines fails).
 */
async function decisionsOf(
  of: readonly string[],
  perSubject = 1,
): Promise<Map<string, Array<{ replica: string; line: LogLine }>>> {
  const wanted = new Set(of);
  const bySubject = await waitUntil(
    () => {
      const found = new Map<string, Array<{ replica: string; line: LogLine }>>();
      for (const decision of decisions()) {
        const subject = decision.line['subject'];
        if (typeof subject === 'string' && wanted.has(subject)) {
          found.set(subject, [...(found.get(subject) ?? []), decision]);
        }
      }
      return found;
    },
    (found) => of.every((subject) => (found.get(subject)?.length ?? 0) >= perSubject),
    { timeoutMs: DEADLINE_MS, what: `${perSubject} decision line(s) for each of ${of.length} subjects` },
  );
  for (const subject of of) expect(bySubject.get(subject), subject).toHaveLength(perSubject);
  return bySubject;
}

/** The `replay_store` lines a replica logged so far, of `state`. */
function storeLines(replica: Replica, state: 'available' | 'unavailable'): LogLine[] {
  return replica.process
    .logLines()
    .filter((line) => line['event'] === 'replay_store' && line['state'] === state);
}

/**
 * Waits until each replica has logged `more` `replay_store` lines of `state` (one per worker and change)
 * beyond the `before` counts (by replica).
 */
function storeLinesReach(state: 'available' | 'unavailable', more: number, before?: readonly number[]) {
  return waitUntil(
    () => replicas.map((replica, i) => storeLines(replica, state).length - (before?.[i] ?? 0)),
    (counts) => counts.every((logged) => logged >= more),
    { timeoutMs: DEADLINE_MS, what: `${more} more replay_store ${state} lines from each replica` },
  );
}

/** The worker processes holding an established connection (Envoy's) on their replica's port. */
async function workersWithConnections(): Promise<number> {
  let count = 0;
  for (const replica of replicas) {
    const held = await connectionsByProcess(replica.workerPids, replica.port);
    count += [...held.values()].filter((connections) => connections > 0).length;
  }
  return count;
}

/**
 * A client sending a fresh proof (and a token of its own subject) every {@link STEADY_INTERVAL_MS}, without
 * waiting for the answers: the pace of traffic does not slow down with a slow store.
 */
class SteadyClient {
  private readonly pending: Array<Promise<Exchange>> = [];
  private readonly answered: Exchange[] = [];
  private running = true;
  private readonly loop: Promise<void>;

  constructor(
    private readonly key: DpopKey,
    private readonly prefix: string,
  ) {
    this.loop = this.run();
  }

  private async run(): Promise<void> {
    while (this.running) {
      const request = sendFresh(this.key, this.prefix).then((exchange) => {
        this.answered.push(exchange);
        return exchange;
      });
      request.catch(() => undefined); // reported by stop()
      this.pending.push(request);
      await delay(STEADY_INTERVAL_MS); // the pace of the traffic, not a wait for anything
    }
  }

  /** What has been answered so far. */
  answers(): readonly Exchange[] {
    return this.answered;
  }

  /** Stops sending, waits for every answer, and returns them all in the order sent. */
  async stop(): Promise<Exchange[]> {
    this.running = false;
    await this.loop;
    return Promise.all(this.pending);
  }
}

/** Waits until the steady client has had an answer with `status` to a request sent at or after `since`. */
function answerSince(client: SteadyClient, since: number, status: number, timeoutMs: number) {
  return waitUntil(
    () => client.answers().find((answer) => answer.sentAt >= since && answer.status === status),
    (found) => found !== undefined,
    { timeoutMs, intervalMs: 5, what: `a ${status} to a request sent after ${since.toFixed(0)} ms` },
  ).then((found) => found!);
}

/** Waits until the steady client has had `count` answers to requests sent at or after `since`. */
function answeredSince(client: SteadyClient, since: number, count: number) {
  return waitUntil(
    () => client.answers().filter((answer) => answer.sentAt >= since).length,
    (answered) => answered >= count,
    {
      timeoutMs: DEADLINE_MS,
      intervalMs: 5,
      what: `${count} answers to requests sent after ${since.toFixed(0)} ms`,
    },
  );
}

/** A 503 answered by the sidecar: its JSON body, no challenge (never Envoy's own, empty-bodied 503). */
function expectSidecar503(exchange: Exchange): void {
  expect(
    {
      status: exchange.status,
      contentType: exchange.contentType,
      challenge: exchange.challenge,
      error: bodyError(exchange),
    },
    exchange.body,
  ).toEqual({
    status: 503,
    contentType: expect.stringMatching(/^application\/json/),
    challenge: undefined,
    error: 'temporarily_unavailable',
  });
}

function policy(redisUrl: string): Record<string, unknown> {
  const balance = { methods: ['GET'], path: '/balance', scopes: ['view:balance'] };
  return {
    version: 1,
    realm: REALM,
    dpop: {
      algorithms: ['ES256'],
      replay_store: { type: 'redis', url: redisUrl, timeout: `${STORE_TIMEOUT_MS}ms` },
    },
    issuers: [{ ...issuer.policyEntry(), require_typ: 'at+jwt' }],
    services: [
      {
        name: 'bank',
        hosts: ['127.0.0.1'],
        public_origin: origin,
        sender_constraint: { dpop: 'required' },
        routes: [balance],
      },
      {
        name: 'nonce',
        hosts: [NONCE_HOST],
        public_origin: NONCE_ORIGIN,
        sender_constraint: { dpop: 'required' },
        dpop: { nonce: 'required' },
        routes: [balance],
      },
    ],
  };
}

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'authz-replicas-e2e-'));
  const [listen, admin] = (await freePorts(2)) as [number, number];
  origin = `http://127.0.0.1:${listen}`;
  [redis, issuer, upstream] = await Promise.all([
    startRedisServer(),
    startServedIssuer('replicas-e2e-key', { issuer: ISSUER, audience: AUDIENCE }),
    startRecordingUpstream('{"ok":true}'),
  ]);
  const policyFile = path.join(dir, 'policy.yaml');
  await writeFile(policyFile, stringify(policy(redis.url)));
  const nonceKeyFile = path.join(dir, 'dpop-nonce.key');
  await writeFile(nonceKeyFile, randomBytes(32), { mode: 0o600 });
  const args = ['--workers', String(WORKERS), '--dpop-nonce-key', nonceKeyFile];
  const started = await Promise.all(
    Array.from({ length: REPLICAS }, (_, i) =>
      startServe(policyFile, args, { name: `authz serve replica ${i + 1}` }),
    ),
  );
  started.forEach((serve, i) =>
    replicas.push({
      ...serve,
      name: `replica-${i + 1}`,
      workerPids: serve.started['worker_pids'] as number[],
    }),
  );
  for (const replica of replicas) expect(replica.workerPids).toHaveLength(WORKERS);
  envoy = await startDeployedEnvoy(
    { listen, admin, authz: replicas.map((replica) => replica.port), bank: upstream.port },
    { concurrency: ENVOY_THREADS },
  );
  // Every worker connected to Redis ('ready') before the first proof.
  await storeLinesReach('available', WORKERS);
});

afterAll(async () => {
  await envoy?.stop();
  await Promise.all(replicas.map((replica) => replica.process.stop()));
  await redis?.stop();
  await upstream?.close();
  await issuer?.close();
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
});

describe('two replicas of `authz serve --workers 2` behind one Envoy, one Redis replay store', () => {
  it('accepts a proof once across the fleet: 40 proofs each sent twice, every first 200, every second 401', async () => {
    const key = await generateDpopKey('ES256');
    const PROOFS = 40;
    const requests = await Promise.all(
      Array.from({ length: PROOFS }, async () => {
        const { token, subject } = await boundToken(key, 'once');
        return { token, subject, proof: await proofFor(key, token) };
      }),
    );
    const first = await Promise.all(requests.map((r) => send(r.subject, r.token, r.proof)));
    expect(first.map((answer) => answer.status)).toEqual(Array<number>(PROOFS).fill(200));
    const second = await Promise.all(requests.map((r) => send(r.subject, r.token, r.proof)));
    for (const answer of second) {
      expect({ status: answer.status, error: bodyError(answer) }, answer.body).toEqual({
        status: 401,
        error: 'invalid_dpop_proof',
      });
      expect(answer.challenge).toMatch(/^DPoP realm="bank-api", error="invalid_dpop_proof"/);
    }

    const bySubject = await decisionsOf(
      requests.map((r) => r.subject),
      2,
    );
    let crossed = 0;
    for (const lines of bySubject.values()) {
      expect(lines.map(({ line }) => line['reason']).sort()).toEqual(['allowed', 'dpop_proof_replayed']);
      if (lines[0]!.replica !== lines[1]!.replica) crossed += 1;
    }
    const replicasSeen = new Set([...bySubject.values()].flat().map(({ replica }) => replica));
    expect([...replicasSeen].sort()).toEqual(replicas.map((replica) => replica.name));
    // Replays caught by the other replica than the one that accepted the proof: Redis, not a local store.
    expect(crossed).toBeGreaterThan(0);
    // Envoy connects to an endpoint when it has a Check to send there: a worker holding its connection answered.
    const workers = await workersWithConnections();
    console.log(
      `[replicas-e2e] once across the fleet: ${PROOFS} proofs, replays refused by the other replica: ${crossed}, ` +
        `workers with Envoy connections: ${workers} of ${REPLICAS * WORKERS}`,
    );
    expect(workers).toBeGreaterThan(1);
  });

  it('accepts a nonce of one replica at the other: the DPoP-Nonce of a 401 use_dpop_nonce, then 20 requests 200', async () => {
    const key = await generateDpopKey('ES256');
    const { token, subject } = await boundToken(key, 'nonce');
    const challenged = await send(subject, token, await proofFor(key, token, NONCE_ORIGIN), NONCE_HOST);
    expect({ status: challenged.status, error: bodyError(challenged) }).toEqual({
      status: 401,
      error: 'use_dpop_nonce',
    });
    expect(challenged.challenge).toMatch(/error="use_dpop_nonce"/);
    const nonce = challenged.nonce!;
    expect(nonce).toMatch(/^[A-Za-z0-9_-]+$/);
    const [issuedBy] = (await decisionsOf([subject])).get(subject)!;

    const REQUESTS = 20;
    const answers = await Promise.all(
      Array.from({ length: REQUESTS }, async () => {
        const fresh = await boundToken(key, 'nonce');
        const proof = await proofFor(key, fresh.token, NONCE_ORIGIN, nonce);
        return send(fresh.subject, fresh.token, proof, NONCE_HOST);
      }),
    );
    expect(
      answers.map((answer) => answer.status),
      answers.map((answer) => answer.body).join('\n'),
    ).toEqual(Array<number>(REQUESTS).fill(200));
    const bySubject = await decisionsOf(answers.map((answer) => answer.subject));
    const lines = [...bySubject.values()].flat();
    expect(new Set(lines.map(({ line }) => line['reason']))).toEqual(new Set(['allowed']));
    expect(new Set(lines.map(({ line }) => line['policy_service']))).toEqual(new Set(['nonce']));
    // Both replicas accepted it: the one that issued it, and the other.
    expect([...new Set(lines.map(({ replica }) => replica))].sort()).toEqual(
      replicas.map((replica) => replica.name),
    );
    expect(lines.some(({ replica }) => replica !== issuedBy!.replica)).toBe(true);
  });

  it('refuses every proof 503 while Redis is killed (kill -9), none accepted, and serves again once it is back', async () => {
    const key = await generateDpopKey('ES256');
    const unavailableBefore = replicas.map((replica) => storeLines(replica, 'unavailable').length);
    const availableBefore = replicas.map((replica) => storeLines(replica, 'available').length);
    const client = new SteadyClient(key, 'steady');
    try {
      await answerSince(client, 0, 200, DEADLINE_MS);

      await redis.kill();
      const killedAt = performance.now();
      // Every worker notices the connection drop by itself, with or without traffic.
      await storeLinesReach('unavailable', WORKERS, unavailableBefore);
      await answeredSince(client, killedAt, OUTAGE_REQUESTS);
      const restartAt = performance.now();
      await redis.restart();
      const upAt = performance.now();
      const firstBack = await answerSince(client, restartAt, 200, RECOVERY_BOUND_MS);
      // `available` is said with the first answer at least 5 s after `unavailable` (no line per flap): the
      // traffic goes on until every worker has said it.
      await storeLinesReach('available', WORKERS, availableBefore);

      const answers = await client.stop();
      // Sent once Redis was dead and answered before it was started again: nothing could check them.
      const outage = answers.filter((answer) => answer.sentAt >= killedAt && answer.answeredAt < restartAt);
      const outage503 = outage.filter((answer) => answer.status === 503);
      const outage200 = outage.filter((answer) => answer.status === 200);
      console.log(
        `[replicas-e2e] redis kill -9: sent and answered during the outage ${outage.length}, answered 503 ${outage503.length}, ` +
          `answered 200 ${outage200.length}; restart took ${(upAt - restartAt).toFixed(0)} ms; first 200 ` +
          `${(firstBack.answeredAt - upAt).toFixed(0)} ms after Redis answered PING again`,
      );
      expect(outage.length).toBeGreaterThanOrEqual(OUTAGE_REQUESTS);
      expect(outage200).toEqual([]);
      for (const answer of outage) expectSidecar503(answer);
      // Before, during and after: 200 or the sidecar's 503, nothing else (no Envoy timeout, no other refusal).
      for (const answer of answers) {
        if (answer.status !== 200) expectSidecar503(answer);
      }
      const bySubject = await decisionsOf(outage.map((answer) => answer.subject));
      expect(new Set([...bySubject.values()].flat().map(({ line }) => line['reason']))).toEqual(
        new Set(['dpop_replay_store_unavailable']),
      );
      expect(firstBack.answeredAt - upAt).toBeLessThan(RECOVERY_BOUND_MS);

      replicas.forEach((replica, i) => {
        const unavailable = storeLines(replica, 'unavailable').slice(unavailableBefore[i]);
        expect(unavailable, replica.name).toHaveLength(WORKERS);
        for (const line of unavailable) {
          expect(line).toMatchObject({
            store: 'redis',
            // The dropped connection; or a claim in flight at the kill, failed with it, if that came first.
            cause: expect.stringMatching(/^(disconnected|error)$/),
            address: redis.url,
            fallback: 'none',
          });
        }
        expect(storeLines(replica, 'available').slice(availableBefore[i]), replica.name).toHaveLength(
          WORKERS,
        );
      });
    } finally {
      await client.stop().catch(() => undefined); // already stopped, or failing the test already
    }
  });

  it(`refuses proofs 503 within the store timeout (${STORE_TIMEOUT_MS} ms) while Redis is paused, well before Envoy's 1 s, and serves again after resume`, async () => {
    const key = await generateDpopKey('ES256');
    const unavailableBefore = replicas.map((replica) => storeLines(replica, 'unavailable').length);
    const client = new SteadyClient(key, 'paused');
    try {
      await answerSince(client, 0, 200, DEADLINE_MS);

      redis.pause();
      const pausedAt = performance.now();
      await answeredSince(client, pausedAt, OUTAGE_REQUESTS);
      const resumeAt = performance.now();
      redis.resume();
      const firstBack = await answerSince(client, resumeAt, 200, RECOVERY_BOUND_MS);

      const answers = await client.stop();
      // Sent while Redis was stopped: their latency. Those answered before it went on must all be 503 (one
      // sent within the store timeout before the resume may be answered by Redis after it, rightly 200).
      const sentPaused = answers.filter((answer) => answer.sentAt >= pausedAt && answer.sentAt < resumeAt);
      const latencies = sentPaused.map((answer) => answer.answeredAt - answer.sentAt);
      const paused = sentPaused.filter((answer) => answer.answeredAt < resumeAt);
      const maxLatency = Math.max(...latencies);
      console.log(
        `[replicas-e2e] redis paused (SIGSTOP): sent and answered during the pause ${paused.length}, answered 503 ` +
          `${paused.filter((answer) => answer.status === 503).length}, answered 200 ` +
          `${paused.filter((answer) => answer.status === 200).length}; latency of the ${sentPaused.length} sent during it: max ${maxLatency.toFixed(0)} ms, ` +
          `median ${median(latencies).toFixed(0)} ms; first 200 ${(firstBack.answeredAt - resumeAt).toFixed(0)} ms after resume`,
      );
      expect(paused.length).toBeGreaterThanOrEqual(OUTAGE_REQUESTS);
      for (const answer of paused) expectSidecar503(answer);
      for (const answer of answers) {
        if (answer.status !== 200) expectSidecar503(answer);
      }
      const bySubject = await decisionsOf(paused.map((answer) => answer.subject));
      expect(new Set([...bySubject.values()].flat().map(({ line }) => line['reason']))).toEqual(
        new Set(['dpop_replay_store_unavailable']),
      );
      // A functional bound: the sidecar answers before Envoy would give up on it (its 1 s timeout).
      expect(maxLatency).toBeLessThan(ENVOY_AUTHZ_TIMEOUT_MS - 100);
      // Claims left unanswered by the paused server: said as a timeout by the workers that sent them.
      const said = replicas.flatMap((replica, i) =>
        storeLines(replica, 'unavailable').slice(unavailableBefore[i]),
      );
      expect(said.some((line) => line['cause'] === 'timeout')).toBe(true);
    } finally {
      redis.resume();
      await client.stop().catch(() => undefined); // already stopped, or failing the test already
    }
  });
});

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? NaN;
}
