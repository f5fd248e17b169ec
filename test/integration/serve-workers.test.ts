import { setTimeout as delay } from 'node:timers/promises';
import { beforeAll, describe, expect, it } from 'vitest';
import { httpCheckRequest, policyYaml, TOKEN_DEFAULTS, writeTextFile } from '../kit/authz-harness.js';
import { startKeyServer } from '../kit/key-server.js';
import { saveByRename } from '../kit/policy-file-edits.js';
import { outcomeOf } from '../kit/policy-server.js';
import { connectionsByProcess } from '../kit/process-connections.js';
import { parseJsonLines, requireBuild, runCli, type KitProcess } from '../kit/process.js';
import { openSeparateConnection, type SeparateConnection } from '../kit/separate-connection.js';
import { startServeInNewDir } from '../kit/serve-process.js';
import { cleanupAfterEach, suiteTempDir } from '../kit/test-hooks.js';
import { generateTestKey, signTestToken, type TestKey } from '../kit/tokens.js';
import { waitUntil } from '../kit/wait-until.js';

/*
 * `authz serve --workers 2` through the built command line: a primary and two worker processes sharing one
 * port (node:cluster). Each test opens several connections of its own, as Envoy opens one per worker
 * thread, and checks in /proc that they were handed to both workers (a decision line does not say which
 * worker decided: its fields are a fixed interface).
 */

const CONNECTIONS = 4; // handed to the two workers in turn

const temp = suiteTempDir('authz-workers-');
let key: TestKey;
let jwksFile: string;
let token: string;

beforeAll(async () => {
  requireBuild();
  key = await generateTestKey('workers-key');
  jwksFile = await writeTextFile(temp.dir, 'jwks.json', JSON.stringify({ keys: [key.publicJwk] }));
  token = await signTestToken(key, TOKEN_DEFAULTS, { claims: { scope: 'view:balance' } });
});

const defer = cleanupAfterEach();

/** A running `authz serve --workers 2`, as its `started` line describes it. */
interface Workers {
  readonly run: KitProcess;
  readonly policyFile: string;
  readonly port: number;
  /** The workers' process ids, worker 1 first. */
  readonly pids: readonly number[];
  /** The log lines (of all three processes) with `event` set to this value. */
  events(event: string): Record<string, unknown>[];
  /**
   * The same, for a probe that waits for lines still to come: throws, with the primary's exit and standard
   * error, once the primary has exited (no line can come then, and its stderr says why).
   */
  liveEvents(event: string): Record<string, unknown>[];
}

async function startWorkers(options: { policy?: string; args?: readonly string[] } = {}): Promise<Workers> {
  const serving = await startServeInNewDir(
    temp.dir,
    (dir) => writeTextFile(dir, 'policy.yaml', options.policy ?? policyYaml({ keys: { jwksFile } })),
    ['--workers', '2', ...(options.args ?? [])],
  );
  const { process: run, started: line, policyFile } = serving;
  defer(() => run.stop(12_000));
  expect(line).toMatchObject({ workers: 2, listen: '127.0.0.1:0', policy: policyFile });
  // Every line parsed, as a log collector would: a cut or merged line fails.
  const events = (event: string) =>
    parseJsonLines(run.stdout()).filter((logged) => logged['event'] === event);
  return {
    run,
    policyFile,
    port: serving.port,
    pids: line['worker_pids'] as number[],
    events,
    liveEvents: (event) => {
      const exit = run.exitReason();
      if (exit !== undefined) {
        throw new Error(
          `the primary exited (${exit}) while "${event}" lines were awaited; stderr:\n${run.stderr()}`,
        );
      }
      return events(event);
    },
  };
}

/** `count` connections of their own, closed after the test. */
function connect(workers: Workers, count = CONNECTIONS): SeparateConnection[] {
  const connections = Array.from({ length: count }, () => openSeparateConnection(workers.port));
  defer(() => connections.forEach((connection) => connection.close()));
  return connections;
}

/** Waits until every one of `pids` holds at least one connection on the port: both workers serve. */
async function connectionsHeldBy(pids: readonly number[], port: number): Promise<Map<number, number>> {
  return waitUntil(
    () => connectionsByProcess(pids, port),
    (counts) => [...counts.values()].every((count) => count > 0),
    { timeoutMs: 10_000, what: 'connections held by every worker' },
  );
}

let requestIds = 0;
const balance = (authorization?: string) =>
  httpCheckRequest({
    id: `workers-${++requestIds}`,
    method: 'GET',
    path: '/balance',
    ...(authorization === undefined ? {} : { authorization }),
  });

describe('authz serve --workers 2', () => {
  it('answers allowed and denied Checks on one port, over connections held by both workers', async () => {
    const workers = await startWorkers();
    const connections = connect(workers);

    const outcomes = await Promise.all(
      connections.map(async (connection) => [
        outcomeOf(await connection.check(balance(`Bearer ${token}`))),
        outcomeOf(await connection.check(balance())),
      ]),
    );

    expect(outcomes).toEqual(Array.from({ length: CONNECTIONS }, () => ['allow', 'deny 401']));
    const held = await connectionsHeldBy(workers.pids, workers.port);
    expect([...held.values()].reduce((sum, count) => sum + count, 0)).toBe(CONNECTIONS);
    expect(workers.events('worker_started').map((line) => line['worker'])).toEqual(
      expect.arrayContaining([1, 2]),
    );
  });

  it('reports health SERVING on every connection, on both workers, once both have ended their start-up', async () => {
    // Worker 1 starts first, and its first fetch is held. Whether every connection is NOT_SERVING while it
    // waits holds only within its start-up bound (the 5 s read budget), a time a loaded machine may pass;
    // the primary's rule (SERVING only when every worker is) is test/unit/server/worker-cluster.test.ts's.
    const jwks = await startKeyServer([key.publicJwk], { hold: 'first' });
    defer(() => jwks.close());
    const workers = await startWorkers({ policy: policyYaml({ keys: { jwksUri: jwks.url } }) });
    const connections = connect(workers);
    await waitUntil(
      () => workers.liveEvents('jwks_fetch').filter((line) => line['outcome'] === 'ok'),
      (fetched) => fetched.length === 1,
      { timeoutMs: 10_000, what: "worker 2's keys" },
    );
    const everyHealth = () =>
      Promise.all(
        connections.map(async (connection) => [
          await connection.health(''),
          await connection.health('envoy.service.auth.v3.Authorization'),
        ]),
      );
    await everyHealth(); // opens every connection (the answers depend on how far worker 1's start-up is)
    await connectionsHeldBy(workers.pids, workers.port);

    jwks.release();
    await waitUntil(everyHealth, (statuses) => statuses.flat().every((status) => status === 'SERVING'), {
      timeoutMs: 12_000,
      intervalMs: 100,
      what: 'SERVING on every connection',
    });
  });

  it('adds up both workers in /metrics: authz_decisions_total is the number of Checks made on all connections', async () => {
    const workers = await startWorkers({ args: ['--metrics-listen', '127.0.0.1:0'] });
    const [metricsLine] = await waitUntil(
      () => workers.liveEvents('metrics_started'),
      (lines) => lines.length === 1,
      { timeoutMs: 10_000, what: 'the metrics_started line' },
    );
    const connections = connect(workers);
    const perConnection = { allowed: 3, denied: 2 };
    for (const connection of connections) {
      for (let i = 0; i < perConnection.allowed; i++) await connection.check(balance(`Bearer ${token}`));
      for (let i = 0; i < perConnection.denied; i++) await connection.check(balance());
    }
    await connectionsHeldBy(workers.pids, workers.port);

    const response = await fetch(`http://127.0.0.1:${String(metricsLine!['port'])}/metrics`);
    expect(response.status).toBe(200);
    const text = await response.text();
    const samples = (name: string) =>
      [...text.matchAll(new RegExp(`^${name}(\\{[^}]*\\})? (\\S+)$`, 'gm'))].map((match) => ({
        labels: match[1] ?? '',
        value: Number(match[2]),
      }));
    const total = (name: string, labelPart = '') =>
      samples(name)
        .filter((sample) => sample.labels.includes(labelPart))
        .reduce((sum, sample) => sum + sample.value, 0);

    expect(total('authz_decisions_total')).toBe(CONNECTIONS * (perConnection.allowed + perConnection.denied));
    expect(total('authz_decisions_total', 'outcome="allow"')).toBe(CONNECTIONS * perConnection.allowed);
    expect(total('authz_decisions_total', 'outcome="deny"')).toBe(CONNECTIONS * perConnection.denied);
    // Both workers hold the same policy: shown once, as 1, not summed.
    expect(samples('authz_policy_info')).toEqual([
      {
        labels: `{version="${String(workers.events('started')[0]!['policy_version'])}",source="${workers.policyFile}"}`,
        value: 1,
      },
    ]);
    expect(total('authz_decision_duration_seconds_count')).toBe(
      CONNECTIONS * (perConnection.allowed + perConnection.denied),
    );
  });

  it('passes SIGHUP on to both workers: each reloads, and decisions on every connection name the new policy_version', async () => {
    const workers = await startWorkers();
    const v1 = workers.events('started')[0]!['policy_version'];

    // A new valid policy, and SIGHUP: both workers reload (by the signal or by watching the file).
    await saveByRename(workers.policyFile, `${policyYaml({ keys: { jwksFile } })}# v2\n`);
    workers.run.signal('SIGHUP');
    const reloads = await waitUntil(
      () => workers.liveEvents('policy_reload').filter((line) => line['result'] === 'ok'),
      (lines) => lines.length >= 2,
      { timeoutMs: 10_000, what: 'two policy reloads' },
    );
    const v2 = reloads[0]!['policy_version'];
    expect(v2).not.toBe(v1);
    expect(reloads.map((line) => line['policy_version'])).toEqual([v2, v2]);

    const connections = connect(workers);
    const ids = await Promise.all(
      connections.map(async (connection) => {
        const request = balance();
        await connection.check(request);
        return (request['attributes'] as { request: { http: { id: string } } }).request.http.id;
      }),
    );
    await connectionsHeldBy(workers.pids, workers.port);
    const decided = await waitUntil(
      () => workers.liveEvents('decision').filter((line) => ids.includes(line['request_id'] as string)),
      (lines) => lines.length === ids.length,
      { timeoutMs: 10_000, what: 'the decision lines' },
    );
    expect(new Set(decided.map((line) => line['policy_version']))).toEqual(new Set([v2]));

    // An unchanged file is re-read only on SIGHUP: an invalid one, refused by both workers once it is
    // written, is refused again by both, with trigger "signal", only if the primary passes the signal on.
    await saveByRename(workers.policyFile, 'version: 1\nroutes: [\n');
    const refusals = () => workers.liveEvents('policy_reload').filter((line) => line['result'] === 'error');
    await waitUntil(refusals, (lines) => lines.length === 2, { timeoutMs: 10_000, what: 'two refusals' });
    await delay(300); // nothing more comes of the edit itself
    expect(refusals()).toHaveLength(2);
    workers.run.signal('SIGHUP');
    const again = await waitUntil(refusals, (lines) => lines.length === 4, {
      timeoutMs: 10_000,
      what: 'two more refusals',
    });
    expect(again.slice(2).map((line) => line['trigger'])).toEqual(['signal', 'signal']);
  });

  it('restarts a worker that is killed, on the same port, and keeps answering', async () => {
    const workers = await startWorkers();
    const [victim, survivor] = workers.pids as [number, number];

    process.kill(victim, 'SIGKILL');

    const [exited] = await waitUntil(
      () => workers.liveEvents('worker_exited'),
      (lines) => lines.length === 1,
      { timeoutMs: 10_000, what: 'the worker_exited line' },
    );
    expect(exited).toMatchObject({ worker: 1, pid: victim, signal: 'SIGKILL', restart: true, level: 50 });
    const [restarted] = await waitUntil(
      () => workers.liveEvents('worker_restarted'),
      (lines) => lines.length === 1,
      { timeoutMs: 30_000, what: 'the worker_restarted line' },
    );
    expect(restarted).toMatchObject({ worker: 1 });
    const replacement = restarted!['pid'] as number;
    expect([victim, survivor]).not.toContain(replacement);

    const connections = connect(workers);
    expect(
      await Promise.all(
        connections.map(async (connection) => outcomeOf(await connection.check(balance(`Bearer ${token}`)))),
      ),
    ).toEqual(Array.from({ length: CONNECTIONS }, () => 'allow'));
    await connectionsHeldBy([replacement, survivor], workers.port);
    await waitUntil(
      () => Promise.all(connections.map((connection) => connection.health(''))),
      (statuses) => statuses.every((status) => status === 'SERVING'),
      { timeoutMs: 10_000, what: 'SERVING again on every connection' },
    );

    expect((await workers.run.stop(12_000)).code).toBe(0);
  });

  // Six worker starts one after another: a few seconds on a quiet machine, far more on a loaded one.
  it(
    'gives up after 5 restarts within a minute: the 6th death stops the other worker, and the primary exits 1',
    { timeout: 180_000 },
    async () => {
      const workers = await startWorkers();
      let victim = workers.pids[0]!;
      for (let restart = 1; restart <= 5; restart++) {
        process.kill(victim, 'SIGKILL');
        const restarted = await waitUntil(
          () => workers.liveEvents('worker_restarted'),
          (lines) => lines.length === restart,
          { timeoutMs: 30_000, what: `restart ${restart}` },
        );
        victim = restarted.at(-1)!['pid'] as number;
      }
      process.kill(victim, 'SIGKILL');

      const finished = await workers.run.finished;
      expect(finished.code).toBe(1);
      expect(workers.events('worker_exited').map((line) => [line['level'], line['restart']])).toEqual([
        ...Array.from({ length: 5 }, () => [50, true]),
        [60, false],
      ]);
      // The survivor was stopped as on SIGTERM: drained, closed, its lines written.
      expect(workers.events('stopped')).toHaveLength(1);
      expect(workers.events('workers_stopped')).toEqual([
        expect.objectContaining({ workers: 1, unclean: [] }),
      ]);
    },
  );

  it('drains both workers on SIGTERM and exits 0, every decision line of a burst written out, whole', async () => {
    const workers = await startWorkers();
    const connections = connect(workers);
    const sent: string[] = [];
    /** A denial (always logged), sent on `connection`; resolves with its outcome. */
    const deny = (connection: SeparateConnection) => {
      const request = balance();
      sent.push((request['attributes'] as { request: { http: { id: string } } }).request.http.id);
      return connection.check(request).then(outcomeOf);
    };
    await Promise.all(connections.map(deny));
    await connectionsHeldBy(workers.pids, workers.port);

    // A burst on every connection at once; SIGTERM as soon as the last answer is in.
    const burst = await Promise.all(
      connections.flatMap((connection) => Array.from({ length: 100 }, () => deny(connection))),
    );
    const finished = await workers.run.stop(12_000);

    expect(new Set(burst)).toEqual(new Set(['deny 401']));
    expect(finished.code).toBe(0);
    expect(finished.stderr).toBe('');
    // Every line of the three processes' shared stdout is one whole JSON object (logLines parses each).
    const lines = parseJsonLines(finished.stdout);
    const decisions = lines.filter((line) => line['event'] === 'decision');
    expect(decisions).toHaveLength(sent.length);
    expect(new Set(decisions.map((line) => line['request_id']))).toEqual(new Set(sent));
    expect(workers.events('draining')).toHaveLength(2);
    expect(workers.events('stopped')).toHaveLength(2);
    expect(workers.events('workers_stopped')).toEqual([expect.objectContaining({ workers: 2, unclean: [] })]);
  });

  it.each([
    [['--workers', '0'], {}, '--workers: "0" is not a number of workers from 1 to 64, or auto'],
    [['--workers', '65'], {}, '--workers: "65" is not a number of workers from 1 to 64, or auto'],
    [['--workers', 'two'], {}, '--workers: "two" is not a number of workers from 1 to 64, or auto'],
    [[], { AUTHZ_WORKERS: '-1' }, 'AUTHZ_WORKERS: "-1" is not a number of workers from 1 to 64, or auto'],
  ])('refuses %j %j as a usage error (exit 2), naming the flag or variable', async (args, env, message) => {
    const { code, stdout, stderr } = await runCli(['serve', '--policy', 'policy.yaml', ...args], {
      cwd: temp.dir,
      env,
    });
    expect(code).toBe(2);
    expect(stdout).toBe('');
    expect(stderr).toContain(`authz: ${message}\n`);
    expect(stderr).toContain('usage: authz serve');
  });
});
