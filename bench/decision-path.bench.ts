import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, bench, describe } from 'vitest';
import { parse, stringify } from 'yaml';
import { createKeyRing } from '../src/authn/key-ring.js';
import { fetchKeySetOverHttp } from '../src/authn/read-key-set.js';
import { bearerTokenVerifier } from '../src/authn/verify-access-token.js';
import { createCheckHandler } from '../src/envoy/check-handler.js';
import type { CheckRequestMessage } from '../src/envoy/check-messages.js';
import { loadPolicy } from '../src/policy/load-policy.js';
import { startCli, type RunningCli } from '../test/e2e/cli-process.js';
import { repoRoot } from '../test/e2e/envoy-binary.js';
import { freePorts, startEnvoy, type RunningEnvoy } from '../test/e2e/envoy-process.js';
import {
  generateTestKey,
  signTestToken,
  startJwksServer,
  type JwksServer,
} from '../test/support/test-issuer.js';

// `npm run bench`: side-by-side figures in one run, read as ratios (this machine has 2 cores and runs the
// load generator, Envoy, authz and the bank at once, so absolute numbers say little). Two groups:
// 1. the in-process decision path (CheckRequest -> authorize() -> CheckResponse) for an allow with a verified RS256 token,
//    against a denial that needs no token work (no credentials): what JWT verification costs;
// 2. HTTP through real Envoy, one request at a time: a route with ext_authz disabled (/healthz: Envoy and
//    the bank only) against an allowed /balance (plus the gRPC Check) and a denied /transfer (Check, no
//    upstream): what the authorization hop adds to a request.

const ISSUER = 'https://bench.example/';
const AUDIENCE = 'https://my-banking-api';

let jwks: JwksServer;
let token: string;
let policyFile: string;
let envoy: RunningEnvoy;
let authz: RunningCli;
let bank: RunningCli;
let check: ReturnType<typeof createCheckHandler>;

const checkRequest = (method: string, pathname: string, authorization?: string): CheckRequestMessage => ({
  attributes: {
    request: {
      http: {
        id: 'bench',
        method,
        path: pathname,
        host: 'bank',
        headers: authorization === undefined ? {} : ({ authorization } as Record<string, string>),
      },
    },
  },
});

beforeAll(async () => {
  const key = await generateTestKey('bench-key');
  jwks = await startJwksServer([key.publicJwk]);
  token = await signTestToken(
    key,
    { issuer: ISSUER, audience: AUDIENCE },
    { claims: { scope: 'view:balance' }, now: Math.floor(Date.now() / 1000) + 0 },
  );
  const demo = parse(await readFile(path.join(repoRoot, 'policy.yaml'), 'utf8')) as Record<string, unknown>;
  const dir = await mkdtemp(path.join(tmpdir(), 'authz-bench-'));
  policyFile = path.join(dir, 'policy.yaml');
  await writeFile(
    policyFile,
    stringify({
      ...demo,
      issuers: [{ issuer: ISSUER, audiences: [AUDIENCE], jwks_uri: jwks.url, algorithms: ['RS256'] }],
    }),
  );

  // In process: the same handler the gRPC server uses, logging to nowhere.
  const policy = await loadPolicy(policyFile);
  const keyRing = createKeyRing(policy, { fetchKeySet: fetchKeySetOverHttp, now: Date.now });
  await keyRing.prefetch();
  const verifier = bearerTokenVerifier({
    policy,
    keysFor: (issuer) => keyRing.keysFor(issuer),
    now: Date.now,
  });
  check = createCheckHandler({
    active: () => ({ policy, verifier }),
    logger: pino({ level: 'silent' }),
    now: Date.now,
  });

  const [listen, admin, authzPort, bankPort] = await freePorts(4);
  authz = await startCli([
    'serve',
    '--policy',
    policyFile,
    '--listen',
    `127.0.0.1:${authzPort}`,
    '--log-allowed-sample',
    '0',
  ]);
  bank = await startCli(['bank', '--listen', `127.0.0.1:${bankPort}`]);
  envoy = await startEnvoy({ listen: listen!, admin: admin!, authz: authzPort!, bank: bankPort! });
}, 60_000);

afterAll(async () => {
  await envoy?.stop();
  await Promise.all([authz?.stop(), bank?.stop()]);
  await jwks?.close();
});

describe('decision path in process (CheckRequest -> CheckResponse)', () => {
  bench('deny: no credentials (401, no token work)', async () => {
    await check(checkRequest('GET', '/balance'));
  });
  bench('allow: verify an RS256 token, check scopes', async () => {
    await check(checkRequest('GET', '/balance', `Bearer ${token}`));
  });
  bench('deny: verified token without transfer:funds (403)', async () => {
    await check(checkRequest('POST', '/transfer', `Bearer ${token}`));
  });
});

describe('one HTTP request through real Envoy', () => {
  bench('GET /healthz: Envoy -> bank, ext_authz disabled', async () => {
    await (await fetch(`${envoy.baseUrl}/healthz`)).arrayBuffer();
  });
  bench('GET /balance: Envoy -> Check (allow) -> bank', async () => {
    await (
      await fetch(`${envoy.baseUrl}/balance`, { headers: { authorization: `Bearer ${token}` } })
    ).arrayBuffer();
  });
  bench('POST /transfer: Envoy -> Check (403), no upstream', async () => {
    await (
      await fetch(`${envoy.baseUrl}/transfer`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: '{"to":"bob","amount":1}',
      })
    ).arrayBuffer();
  });
});
