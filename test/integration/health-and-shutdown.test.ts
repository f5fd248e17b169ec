import { status as GrpcStatus, type ServiceError } from '@grpc/grpc-js';
import { setTimeout as delay } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { AUTHORIZATION_SERVICE } from '../../src/server/authz-server.js';
import {
  connectCheckClient,
  createTempDir,
  deniedBody,
  httpCheckRequest,
  TOKEN_DEFAULTS,
  writeTextFile,
  type CheckResponseView,
} from '../kit/authz-harness.js';
import { freePort } from '../kit/free-port.js';
import { startKeyServer } from '../kit/key-server.js';
import { saveByRename } from '../kit/policy-file-edits.js';
import {
  bankRoutes,
  outcomeOf,
  policyText,
  startPolicyServer,
  type PolicyServer,
  type PolicyServerOptions,
} from '../kit/policy-server.js';
import { startCliAndWait } from '../kit/process.js';
import { metricsUrlOf, scrapeMetric } from '../kit/serve-process.js';
import { cleanupAfterEach } from '../kit/test-hooks.js';
import { generateTestKey, signTestToken } from '../kit/tokens.js';
import { waitUntil } from '../kit/wait-until.js';

/*
 * Health, graceful shutdown, decision-log sampling and the metrics hooks of the production server:
 * in-process (startAuthzServer on 127.0.0.1, logs and a recording `metrics` captured), and once through
 * the real command line (`node dist/cli/main.js serve`) for SIGTERM.
 */

const SECOND_ISSUER = 'https://second-idp.example/';

const defer = cleanupAfterEach();

async function jwksServer(options: { held?: boolean } = {}) {
  const key = await generateTestKey(`key-${Math.random().toString(36).slice(2)}`);
  const jwks = await startKeyServer([key.publicJwk], options.held === true ? { hold: 'every' } : {});
  defer(() => jwks.close());
  return { key, jwks };
}

async function start(options: PolicyServerOptions): Promise<PolicyServer> {
  const server = await startPolicyServer(options);
  defer(() => server.stop());
  return server;
}

/** The health of both services reported: "" and the Authorization service. */
async function healthOf(authz: PolicyServer): Promise<string> {
  const overall = (await authz.health.check('')).status;
  const authorization = (await authz.health.check(AUTHORIZATION_SERVICE)).status;
  return overall === authorization ? overall : `"" ${overall}, Authorization ${authorization}`;
}

const healthBecomes = (authz: PolicyServer, expected: string, timeoutMs: number) =>
  waitUntil(
    () => healthOf(authz),
    (status) => status === expected,
    { timeoutMs, intervalMs: 100, what: `health ${expected}` },
  );

/** The gRPC status code a call failed with, or the outcome it was answered with. */
const settle = (call: Promise<CheckResponseView>): Promise<string> =>
  call.then(
    (response) => outcomeOf(response),
    (error: ServiceError) => `error ${GrpcStatus[error.code] ?? error.code}`,
  );

describe('gRPC health', () => {
  it("stays SERVING while one issuer's key set cannot be fetched: that issuer's tokens get 503 temporarily_unavailable, the other's are allowed, and each change of its state is logged with its cause", async () => {
    const first = await jwksServer();
    const second = await jwksServer();
    second.jwks.behave('http-500');
    const authz = await start({
      policy: policyText(
        [{ jwksUri: first.jwks.url }, { issuer: SECOND_ISSUER, jwksUri: second.jwks.url }],
        bankRoutes(['view:balance']),
      ),
    });

    // Start-up is over once both first fetches have ended; then SERVING, the issuer without keys named.
    await healthBecomes(authz, 'SERVING', 10_000);
    expect(authz.metrics.keySetFetches).toContainEqual({
      issuer: TOKEN_DEFAULTS.issuer,
      outcome: 'ok',
      trigger: 'initial',
    });
    expect(authz.events('serving_without_keys')).toEqual([
      expect.objectContaining({ issuers: [SECOND_ISSUER] }),
    ]);
    expect(authz.events('jwks_usability')).toEqual([
      expect.objectContaining({
        issuer: SECOND_ISSUER,
        state: 'unusable',
        reason: 'fetch_failed',
        cause: 'status',
        status: 500,
        fetched_at: null,
      }),
    ]);
    expect(authz.events('jwks_fetch').filter((line) => line['outcome'] === 'error')[0]).toMatchObject({
      issuer: SECOND_ISSUER,
      cause: 'status',
      status: 500,
    });
    const firstToken = await signTestToken(first.key, TOKEN_DEFAULTS);
    const secondToken = await signTestToken(second.key, { ...TOKEN_DEFAULTS, issuer: SECOND_ISSUER });
    const balance = (token: string) =>
      authz.check({ method: 'GET', path: '/balance', authorization: `Bearer ${token}` });
    expect(outcomeOf((await balance(firstToken)).response)).toBe('allow');
    const refused = (await balance(secondToken)).response;
    expect(outcomeOf(refused)).toBe('deny 503');
    expect(deniedBody(refused)['error']).toBe('temporarily_unavailable');

    // Failed fetches are retried after at most 5 s; the recovery is said once, health never changed.
    second.jwks.behave('keys');
    await waitUntil(
      () => authz.events('jwks_usability'),
      (lines) => lines.length === 2,
      { timeoutMs: 10_000, what: "the second issuer's keys usable again" },
    );
    expect(authz.events('jwks_usability')[1]).toMatchObject({ issuer: SECOND_ISSUER, state: 'usable' });
    expect(outcomeOf((await balance(secondToken)).response)).toBe('allow');
    expect(await healthOf(authz)).toBe('SERVING');
    expect(authz.events('health').map((line) => [line['status'], line['reason']])).toEqual([
      ['SERVING', 'ready'],
    ]);
  });

  type Unreachable = 'connect' | 'status' | 'timeout' | 'body';
  /** A key set URL that fails from the start with the given cause. */
  async function unreachableKeys(cause: Unreachable): Promise<string> {
    if (cause === 'connect') return `http://127.0.0.1:${await freePort()}/.well-known/jwks.json`; // nothing listens
    const { jwks } = await jwksServer();
    jwks.behave(cause === 'status' ? 'http-500' : cause === 'timeout' ? 'hang' : 'garbage');
    return jwks.url;
  }

  it.each<[Unreachable, Record<string, unknown>]>([
    ['connect', { cause: 'connect' }],
    ['status', { cause: 'status', status: 500 }],
    ['timeout', { cause: 'timeout' }],
    ['body', { cause: 'body' }],
  ])(
    "with two issuers, one unreachable from the start (%s): SERVING, and all of the other one's traffic allowed",
    async (cause, fields) => {
      const first = await jwksServer();
      const downKey = await generateTestKey('down-key');
      const authz = await start({
        policy: policyText(
          [{ jwksUri: first.jwks.url }, { issuer: SECOND_ISSUER, jwksUri: await unreachableKeys(cause) }],
          bankRoutes(['view:balance']),
        ),
      });

      await healthBecomes(authz, 'SERVING', 10_000);
      expect(authz.events('jwks_usability')).toEqual([
        expect.objectContaining({
          issuer: SECOND_ISSUER,
          state: 'unusable',
          reason: 'fetch_failed',
          ...fields,
        }),
      ]);
      const firstToken = await signTestToken(first.key, TOKEN_DEFAULTS);
      const downToken = await signTestToken(downKey, { ...TOKEN_DEFAULTS, issuer: SECOND_ISSUER });
      const outcomes = await Promise.all(
        Array.from({ length: 20 }, (_, i) =>
          authz.outcome({
            method: 'GET',
            path: '/balance',
            authorization: `Bearer ${i % 4 === 3 ? downToken : firstToken}`,
          }),
        ),
      );
      expect(outcomes.filter((outcome) => outcome === 'allow')).toHaveLength(15);
      expect(outcomes.filter((outcome) => outcome === 'deny 503')).toHaveLength(5);
      expect(await healthOf(authz)).toBe('SERVING');
    },
  );
});

describe('graceful shutdown: close()', () => {
  it('close({ drainMs: 2000 }) turns health NOT_SERVING at once, keeps answering Checks during the drain, then refuses new calls with UNAVAILABLE', async () => {
    const { key, jwks } = await jwksServer();
    const authz = await start({ policy: policyText([{ jwksUri: jwks.url }], bankRoutes(['view:balance'])) });
    await healthBecomes(authz, 'SERVING', 3000);
    const balance = {
      method: 'GET',
      path: '/balance',
      authorization: `Bearer ${await signTestToken(key, TOKEN_DEFAULTS)}`,
    };

    let closed = false;
    // A drain long enough for the three calls below on a loaded machine (each takes milliseconds when idle).
    const closing = authz.server.close({ drainMs: 2000, graceMs: 2000 }).then(() => {
      closed = true;
    });
    expect(await healthOf(authz)).toBe('NOT_SERVING');
    expect(await authz.outcome(balance)).toBe('allow');
    expect(closed).toBe(false); // that answer came during the drain

    await closing;
    expect(await settle(authz.client.check(httpCheckRequest(balance)))).toBe('error UNAVAILABLE');
    expect(
      await authz.health.check('').then(
        (answer) => answer.status,
        (error: ServiceError) => GrpcStatus[error.code],
      ),
    ).toBe('UNAVAILABLE');
    expect(authz.events('draining')).toEqual([expect.objectContaining({ drain_ms: 2000, grace_ms: 2000 })]);
    expect(authz.events('stopped')).toHaveLength(1);
  });

  it('loses no call in flight: 50 concurrent Checks waiting for the keys are all answered when close({ graceMs: 5000 }) starts', async () => {
    // The key set server holds its answer: every Check waits for the issuer's keys inside the server, for
    // up to jwks_fetch_wait (the most allowed, so that the wait outlasts anything a slow machine does here).
    const { key, jwks } = await jwksServer({ held: true });
    const authz = await start({
      policy: policyText(
        [{ jwksUri: jwks.url, settings: { jwks_fetch_wait: '10s' } }],
        bankRoutes(['view:balance']),
      ),
      awaitStartupFetches: false,
    });
    await jwks.arrivals(1); // the start-up fetch, now held
    const token = await signTestToken(key, TOKEN_DEFAULTS);

    const calls = Array.from({ length: 50 }, () =>
      settle(
        authz.client.check(
          httpCheckRequest({ method: 'GET', path: '/balance', authorization: `Bearer ${token}` }),
        ),
      ),
    );
    // Every call is inside the server, waiting for the keys, before shutdown starts.
    await waitUntil(
      () => authz.metrics.checksInFlight(),
      (inFlight) => inFlight === 50,
      { timeoutMs: 10_000, what: '50 Checks in flight' },
    );
    const closing = authz.server.close({ graceMs: 5000 });
    expect(authz.events('draining')).toHaveLength(1); // logged as close() starts
    jwks.release(); // the keys arrive after shutdown started

    expect(await Promise.all(calls)).toEqual(Array.from({ length: 50 }, () => 'allow'));
    await closing;
    expect(authz.events('shutdown_forced')).toEqual([]);
    expect(authz.events('check_failed')).toEqual([]);
    expect(authz.events('decision')).toHaveLength(50);
    expect(jwks.requests).toBe(1); // all 50 shared the one fetch
  });
});

describe('graceful shutdown: SIGTERM through the real command line', () => {
  /*
   * `authz serve --drain-delay 0` under load from one gRPC client, with SIGTERM in the middle. The policy
   * trusts two issuers. Issuer A's keys are served at once: four workers send Checks with A's tokens back
   * to back. Issuer B's key set server holds its answer until authz has started draining: four more Checks,
   * with B's tokens, are sent at the start and wait inside the server for B's keys.
   *
   * So that "in flight at SIGTERM" is unambiguous, the A workers pause while the signal is sent (their
   * calls each take a millisecond or so), and the signal is sent only once /metrics says exactly four
   * Checks are in flight: the calls in flight at SIGTERM are then exactly the four B calls, each known to
   * be inside the server. Each step waits for the condition it needs, not for a time. Asserted:
   *   - the process exits 0 and logs no forced shutdown and no internal error;
   *   - every call in flight at SIGTERM (the B calls) is answered with a proper CheckResponse (allow);
   *   - every call answered at all is answered with a proper CheckResponse (allow: all tokens are valid);
   *   - every call that failed was started after SIGTERM, and failed with UNAVAILABLE: never INTERNAL,
   *     CANCELLED, DEADLINE_EXCEEDED or anything else;
   *   - calls started after the process had exited all failed with UNAVAILABLE (and there were some).
   */
  it('answers every call in flight, refuses later calls with UNAVAILABLE only, and exits 0', async () => {
    const a = await jwksServer();
    const b = await jwksServer({ held: true });
    const temp = await createTempDir('authz-sigterm-');
    defer(() => temp.remove());
    const policyFile = await writeTextFile(
      temp.dir,
      'policy.yaml',
      policyText(
        [
          // A's calls wait for its start-up fetch (if they come first) at most this long: ample.
          { jwksUri: a.jwks.url, settings: { jwks_fetch_wait: '10s' } },
          // B's first fetch is held: its calls wait for it (up to jwks_fetch_wait), in flight at SIGTERM.
          { issuer: SECOND_ISSUER, jwksUri: b.jwks.url, settings: { jwks_fetch_wait: '10s' } },
        ],
        bankRoutes(['view:balance']),
      ),
    );
    const port = await freePort();
    const { process: cli } = await startCliAndWait([
      'serve',
      '--policy',
      policyFile,
      '--listen',
      `127.0.0.1:${port}`,
      '--drain-delay',
      '0',
      '--metrics-listen',
      '127.0.0.1:0',
    ]);
    defer(() => cli.stop());
    const metricsUrl = await metricsUrlOf(cli);
    const checksInFlight = () => scrapeMetric(metricsUrl, 'authz_checks_in_flight');
    const client = connectCheckClient(port);
    defer(() => client.close());

    const tokenA = await signTestToken(a.key, TOKEN_DEFAULTS);
    const tokenB = await signTestToken(b.key, { issuer: SECOND_ISSUER, audience: TOKEN_DEFAULTS.audience });
    const request = (token: string) =>
      httpCheckRequest({ method: 'GET', path: '/balance', authorization: `Bearer ${token}` });

    interface CallRecord {
      readonly issuer: 'A' | 'B';
      readonly startedAt: number;
      endedAt: number;
      result: string;
    }
    const records: CallRecord[] = [];
    const call = async (issuer: 'A' | 'B') => {
      const record: CallRecord = { issuer, startedAt: performance.now(), endedAt: 0, result: '' };
      records.push(record);
      record.result = await settle(client.check(request(issuer === 'A' ? tokenA : tokenB)));
      record.endedAt = performance.now();
      return record;
    };

    let loading = true; // until some calls have been refused after the process exited
    let paused: Promise<void> | undefined;
    const inFlightA = new Set<Promise<CallRecord>>();
    const workerA = async () => {
      while (loading) {
        if (paused !== undefined) await paused;
        const pending = call('A');
        inFlightA.add(pending);
        const { result } = await pending;
        inFlightA.delete(pending);
        if (result.startsWith('error')) await delay(20); // refused: do not spin
      }
    };
    const callsB = Array.from({ length: 4 }, () => call('B'));
    const workersA = Array.from({ length: 4 }, () => workerA());

    // Real load first: some A calls answered.
    await waitUntil(
      () => records.filter((r) => r.issuer === 'A' && r.result === 'allow').length,
      (answered) => answered > 10,
      { timeoutMs: 15_000, what: 'more than 10 answered A calls' },
    );
    let resume!: () => void;
    paused = new Promise<void>((resolve) => (resume = resolve));
    await Promise.all([...inFlightA]);
    // Only the four B calls are in flight now, each inside the server.
    await waitUntil(checksInFlight, (inFlight) => inFlight === 4, {
      timeoutMs: 10_000,
      what: 'the four B calls in flight',
    });
    const sigtermAt = performance.now();
    const exited = cli.stop(); // SIGTERM
    paused = undefined;
    resume();
    // B's keys arrive once the server drains: its calls were in flight across SIGTERM.
    await cli.logLine((line) => line['event'] === 'draining', 'the draining line', 10_000);
    b.jwks.release();

    const exitCode = (await exited).code;
    const exitedAt = performance.now();
    await waitUntil(
      () => records.filter((r) => r.startedAt > exitedAt && r.endedAt > 0).length,
      (refused) => refused >= 4,
      { timeoutMs: 10_000, what: 'four calls answered after the process exited' },
    );
    loading = false;
    await Promise.all([...callsB, ...workersA]);

    expect(exitCode).toBe(0);
    const logged = cli.logLines();
    expect(logged.filter((line) => line['event'] === 'shutdown_forced')).toEqual([]);
    expect(logged.filter((line) => line['event'] === 'check_failed')).toEqual([]);
    expect(logged.map((line) => line['event'])).toEqual(expect.arrayContaining(['draining', 'stopped']));

    const inFlightAtSigterm = records.filter((r) => r.startedAt < sigtermAt && r.endedAt > sigtermAt);
    expect(inFlightAtSigterm.map((r) => `${r.issuer} ${r.result}`)).toEqual([
      'B allow',
      'B allow',
      'B allow',
      'B allow',
    ]);

    const answered = records.filter((r) => !r.result.startsWith('error'));
    expect(answered.filter((r) => r.startedAt < sigtermAt).length).toBeGreaterThan(10); // real load before
    expect(new Set(answered.map((r) => r.result))).toEqual(new Set(['allow']));

    const failed = records.filter((r) => r.result.startsWith('error'));
    expect(new Set(failed.map((r) => r.result))).toEqual(new Set(['error UNAVAILABLE']));
    expect(failed.filter((r) => r.startedAt < sigtermAt)).toEqual([]);
    const afterExit = records.filter((r) => r.startedAt > exitedAt);
    expect(afterExit.length).toBeGreaterThan(0);
    expect(new Set(afterExit.map((r) => r.result))).toEqual(new Set(['error UNAVAILABLE']));
  });
});

describe('decision log sampling (logAllowedSample)', () => {
  async function logsWith(logAllowedSample: number) {
    const { key, jwks } = await jwksServer();
    const authz = await start({
      policy: policyText(
        [{ jwksUri: jwks.url }],
        [
          ...bankRoutes(['view:balance']),
          '{ methods: [GET], path: /statements, scopes: [view:statements], mode: report-only }',
        ],
      ),
      logAllowedSample,
    });
    const token = await signTestToken(key, TOKEN_DEFAULTS, { claims: { scope: 'view:balance' } });
    const sent = {
      allowed: await authz.check({ method: 'GET', path: '/balance', authorization: `Bearer ${token}` }),
      denied: await authz.check({ method: 'POST', path: '/transfer', authorization: `Bearer ${token}` }),
      wouldDeny: await authz.check({ method: 'GET', path: '/statements', authorization: `Bearer ${token}` }),
      publicAllowed: await authz.check({ method: 'GET', path: '/healthz' }),
    };
    expect(Object.values(sent).map(({ response }) => outcomeOf(response))).toEqual([
      'allow',
      'deny 403',
      'allow',
      'allow',
    ]);
    const loggedIds = new Set(authz.events('decision').map((line) => line['request_id']));
    return Object.fromEntries(Object.entries(sent).map(([name, { id }]) => [name, loggedIds.has(id)]));
  }

  it('0: allow decisions are not logged; denials and report-only would-denials still are', async () => {
    expect(await logsWith(0)).toEqual({
      allowed: false,
      denied: true,
      wouldDeny: true,
      publicAllowed: false,
    });
  });

  it('1: every decision is logged', async () => {
    expect(await logsWith(1)).toEqual({ allowed: true, denied: true, wouldDeny: true, publicAllowed: true });
  });
});

describe('metrics hooks (ServerMetrics)', () => {
  it('recordDecision is called once per Check, with outcome allow / deny / would_deny, the route and the reason', async () => {
    const { key, jwks } = await jwksServer();
    const authz = await start({
      policy: policyText(
        [{ jwksUri: jwks.url }],
        [
          '{ methods: [GET], path: /balance, scopes: [view:balance] }',
          '{ methods: [POST], path: /transfer, scopes: [transfer:funds], mode: report-only }',
        ],
      ),
      logAllowedSample: 0, // metrics see every decision, logged or not
    });
    const token = await signTestToken(key, TOKEN_DEFAULTS, { claims: { scope: 'view:balance' } });
    const bearer = `Bearer ${token}`;

    await authz.check({ method: 'GET', path: '/balance', authorization: bearer });
    await authz.check({ method: 'POST', path: '/transfer', authorization: bearer });
    await authz.check({ method: 'GET', path: '/balance' });
    await authz.check({ method: 'GET', path: '/nowhere', authorization: bearer });

    const recorded = authz.metrics.decisions;
    expect(recorded.map(({ durationSeconds: _, ...rest }) => rest)).toEqual([
      { service: 'default', route: 'GET /balance', outcome: 'allow', reason: 'allowed' },
      { service: 'default', route: 'POST /transfer', outcome: 'would_deny', reason: 'insufficient_scope' },
      { service: 'default', route: 'GET /balance', outcome: 'deny', reason: 'credentials_missing' },
      { service: 'default', route: '(none)', outcome: 'deny', reason: 'no_route' },
    ]);
    for (const { durationSeconds } of recorded) {
      expect(Number.isFinite(durationSeconds)).toBe(true);
      expect(durationSeconds).toBeGreaterThanOrEqual(0);
    }
  });

  it('recordKeySetFetch is called for every fetch attempt, with its outcome and trigger', async () => {
    const { key, jwks } = await jwksServer();
    jwks.behave('http-500');
    let clock = Date.now(); // stands still unless moved: retries and cooldowns happen when the test says
    const authz = await start({
      policy: policyText(
        [{ jwksUri: jwks.url, settings: { jwks_refresh_cooldown: '30s' } }],
        bankRoutes(['view:balance']),
      ),
      now: () => clock,
    });
    const balance = async (token: string) =>
      authz.outcome({ method: 'GET', path: '/balance', authorization: `Bearer ${token}` });
    await waitUntil(
      () => authz.metrics.keySetFetches.length,
      (count) => count === 1,
      { timeoutMs: 10_000, what: 'the start-up fetch' },
    );
    const token = await signTestToken(key, TOKEN_DEFAULTS);
    expect(await balance(token)).toBe('deny 503'); // no keys yet, and no retry before 5 s

    jwks.behave('keys');
    clock += 6000;
    expect(await balance(token)).toBe('allow');

    const rotated = await generateTestKey('metrics-rotated');
    jwks.publish([key.publicJwk, rotated.publicJwk]);
    clock += 31_000;
    expect(await balance(await signTestToken(rotated, TOKEN_DEFAULTS))).toBe('allow');

    const issuer = TOKEN_DEFAULTS.issuer;
    expect(authz.metrics.keySetFetches).toEqual([
      { issuer, outcome: 'error', trigger: 'initial' },
      { issuer, outcome: 'ok', trigger: 'initial' },
      { issuer, outcome: 'ok', trigger: 'unknown_key' },
    ]);
    expect(jwks.requests).toBe(3);
  });

  it('setPolicyInfo is called on start and after each successful reload, and recordPolicyReload counts reloads', async () => {
    const { jwks } = await jwksServer();
    const authz = await start({ policy: policyText([{ jwksUri: jwks.url }], bankRoutes(['view:balance'])) });
    const v1 = authz.events('started')[0]?.['policy_version'];
    expect(authz.metrics.policyInfo).toEqual([{ version: v1, source: authz.policyFile }]);

    await saveByRename(
      authz.policyFile,
      policyText([{ jwksUri: jwks.url }], bankRoutes(['view:balance', 'audit:read'])),
    );
    expect(await authz.server.reload()).toBe('ok');
    const v2 = authz.events('policy_reload').at(-1)?.['policy_version'];
    expect(v2).not.toBe(v1);
    expect(authz.metrics.policyInfo).toEqual([
      { version: v1, source: authz.policyFile },
      { version: v2, source: authz.policyFile },
    ]);
    expect(authz.metrics.policyReloads).toEqual(['ok']);
  });
});
