import { mkdtemp, readFile, rename, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { startJwksServer, type JwksServer } from '../kit/test-issuer.js';
import { generateTestKey, signTestToken } from '../kit/tokens.js';
import { waitUntil } from '../kit/wait-until.js';
import { startCli, type RunningCli } from '../kit/cli-process.js';
import { repoRoot } from '../kit/envoy-binary.js';
import { freePorts, startEnvoy, type RunningEnvoy } from '../kit/envoy-process.js';

// Policy operations while real Envoy serves traffic: edits take effect without a restart and without a
// failed request, a bad edit never takes effect, and a report-only rule allows and logs. (How soon an edit
// takes effect, within 2 s by the watcher's settle time and the poll, is pinned by the in-process reload
// tests against the file watcher and an injected poll; here, on a machine that may be loaded, each step
// waits for what it needs, with generous deadlines.)

const ISSUER = 'https://issuer.ops.test/';
const AUDIENCE = 'https://my-banking-api';

let envoy: RunningEnvoy;
let authz: RunningCli;
let bank: RunningCli;
let jwks: JwksServer;
let policyFile: string;
let dir: string;
let demoRoutes: Record<string, unknown>[];
/** The demo's top-level sender constraints (DPoP allowed; required by its POST /transfer route). */
let demoSenderConstraint: unknown;
/** This run's Envoy: the policy's public_origin (a DPoP proof's htu names it, RFC 9449 section 4.3). */
let publicOrigin: string;
let viewToken: string;
let metricsUrl: string;

/**
 * The demo policy with this suite's issuer, public_origin this run's Envoy (the demo routes accept DPoP,
 * which needs one), and GET /balance changed as given.
 */
function policyWith(balance: Record<string, unknown>): string {
  const routes = demoRoutes.map((route) => (route['path'] === '/balance' ? { ...route, ...balance } : route));
  return stringify({
    version: 1,
    realm: 'bank-api',
    public_origin: publicOrigin,
    sender_constraint: demoSenderConstraint,
    issuers: [{ issuer: ISSUER, audiences: [AUDIENCE], jwks_uri: jwks.url, algorithms: ['RS256'] }],
    routes,
  });
}

/** Saves the way editors do: write a temporary file beside it, then rename over the original. */
async function saveByRename(text: string): Promise<void> {
  const temporary = path.join(dir, `.policy.yaml.${Date.now()}.tmp`);
  await writeFile(temporary, text);
  await rename(temporary, policyFile);
}

const balanceStatus = async () =>
  (await fetch(`${envoy.baseUrl}/balance`, { headers: { authorization: `Bearer ${viewToken}` } })).status;

/**
 * Sends GET /balance continuously until `until` says stop, recording every status. Each answer must be an
 * answer of some policy version: 200 (allowed) or 403 (the tighter rule); anything else is a failure.
 * @throws Error when `until` has not said stop within `timeoutMs`, with the last statuses seen.
 */
async function trafficUntil(until: (statuses: number[]) => boolean, timeoutMs: number): Promise<number[]> {
  const statuses: number[] = [];
  const deadline = Date.now() + timeoutMs;
  while (!until(statuses)) {
    if (Date.now() > deadline) {
      throw new Error(
        `traffic: not done within ${timeoutMs} ms (last statuses: ${statuses.slice(-10).join(' ')})`,
      );
    }
    statuses.push(await balanceStatus().catch(() => -1));
  }
  return statuses;
}

/** How long a step may take on a loaded machine before the test says it did not happen. */
const STEP_DEADLINE_MS = 15_000;

async function metricValue(name: string, labels: string): Promise<number> {
  const text = await (await fetch(metricsUrl)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name}{`) && l.includes(labels));
  return line === undefined ? 0 : Number(line.split(' ').pop());
}

beforeAll(async () => {
  const key = await generateTestKey('ops-key');
  jwks = await startJwksServer([key.publicJwk]);
  viewToken = await signTestToken(
    key,
    { issuer: ISSUER, audience: AUDIENCE },
    { claims: { scope: 'view:balance' } },
  );
  const demo = parse(await readFile(path.join(repoRoot, 'policy.yaml'), 'utf8')) as {
    routes: Record<string, unknown>[];
    sender_constraint: unknown;
  };
  demoRoutes = demo.routes;
  demoSenderConstraint = demo.sender_constraint;

  const [listen, admin, authzPort, bankPort, metricsPort] = await freePorts(5);
  publicOrigin = `http://127.0.0.1:${listen}`;
  dir = await mkdtemp(path.join(tmpdir(), 'authz-ops-'));
  policyFile = path.join(dir, 'policy.yaml');
  await writeFile(policyFile, policyWith({}));
  metricsUrl = `http://127.0.0.1:${metricsPort}/metrics`;
  authz = await startCli([
    'serve',
    '--policy',
    policyFile,
    '--listen',
    `127.0.0.1:${authzPort}`,
    '--metrics-listen',
    `127.0.0.1:${metricsPort}`,
  ]);
  bank = await startCli(['bank', '--listen', `127.0.0.1:${bankPort}`]);
  envoy = await startEnvoy({ listen: listen!, admin: admin!, authz: authzPort!, bank: bankPort! });
});

afterAll(async () => {
  await envoy?.stop();
  await Promise.all([authz?.stop(), bank?.stop()]);
  await jwks?.close();
});

describe('editing policy.yaml while Envoy serves traffic', () => {
  it('takes a tighter rule, then its removal, with no failed request in between', async () => {
    expect(await balanceStatus()).toBe(200);

    await writeFile(policyFile, policyWith({ scopes: ['view:balance', 'audit:read'] })); // truncate and write
    const tightening = await trafficUntil((s) => s.at(-1) === 403, STEP_DEADLINE_MS);
    expect(tightening.every((status) => status === 200 || status === 403)).toBe(true);

    await saveByRename(policyWith({}));
    const loosening = await trafficUntil((s) => s.at(-1) === 200, STEP_DEADLINE_MS);
    expect(loosening.every((status) => status === 200 || status === 403)).toBe(true);

    // Both edits were reloads: their lines come through authz's standard output, which may be read a moment
    // after an answer that Envoy already relayed.
    await waitUntil(
      () => authz.logLines().filter((l) => l['event'] === 'policy_reload' && l['result'] === 'ok'),
      (reloads) => reloads.length >= 2,
      { timeoutMs: STEP_DEADLINE_MS, what: 'two policy_reload ok lines' },
    );
  });

  it('refuses an invalid edit: the old rules stay, the error is logged, the metric moves', async () => {
    const errorsBefore = await metricValue('authz_policy_reloads_total', 'result="error"');
    await writeFile(policyFile, policyWith({ methods: ['get'] })); // lower-case method: invalid
    // The refusal of this content (a read between the truncation and the write may first refuse an empty
    // file: the watcher judges a broken file again once it has settled).
    const methodProblem =
      /policy\.yaml:\d+:\d+: routes\[0\]\.methods\[0\]: HTTP methods are case-sensitive: write "GET"$/;
    const [refused] = await waitUntil(
      () =>
        authz
          .logLines()
          .filter(
            (l) =>
              l['event'] === 'policy_reload' &&
              l['result'] === 'error' &&
              (l['problems'] as string[] | undefined)?.some((problem) => methodProblem.test(problem)),
          ),
      (lines) => lines.length > 0,
      { timeoutMs: STEP_DEADLINE_MS, what: 'the refusal of the lower-case method' },
    );
    expect(refused!['problems']).toEqual([expect.stringMatching(methodProblem)]);
    expect(await balanceStatus()).toBe(200);
    expect(await metricValue('authz_policy_reloads_total', 'result="error"')).toBeGreaterThan(errorsBefore);

    await writeFile(policyFile, policyWith({})); // a good file again
  });

  it('allows a request a report-only rule would deny, and logs would_deny', async () => {
    await saveByRename(policyWith({ scopes: ['view:balance', 'premium:read'], mode: 'report-only' }));
    await trafficUntil(() => authz.logLines().some((l) => l['would_deny'] === true), STEP_DEADLINE_MS);

    expect(await balanceStatus()).toBe(200);
    const line = authz
      .logLines()
      .filter((l) => l['event'] === 'decision' && l['would_deny'] === true)
      .at(-1);
    expect(line).toMatchObject({
      decision: 'allow',
      status: 200,
      reason: 'insufficient_scope',
      mode: 'report-only',
      missing_scopes: ['premium:read'],
    });
    expect(await metricValue('authz_decisions_total', 'outcome="would_deny"')).toBeGreaterThan(0);
  });
});
