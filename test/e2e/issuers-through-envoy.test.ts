import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AUTHORIZATION_SERVICE } from '../../src/server/authz-server.js';
import { connectHealthClient, type HealthClient } from '../kit/authz-harness.js';
import { writeDemoPolicy } from '../kit/demo-policy.js';
import { startEnvoyStack, type EnvoyStack } from '../kit/envoy-stack.js';
import { startServedIssuer, type ServedIssuer } from '../kit/served-issuer.js';
import { generateTestKey, signTestToken, type TestKey } from '../kit/tokens.js';
import { waitUntil } from '../kit/wait-until.js';

// Readiness per issuer (issue 21, docs/operations.md "Health"), through real Envoy on envoy/envoy.yaml: the
// demo policy trusts two issuers for GET /balance. A is served; B's jwks_uri is 127.0.0.1's port 4,
// where nothing listens, from the start. A's traffic all succeeds, B's tokens are answered 503 keys_unavailable, and
// health stays SERVING: one identity provider down is not the gateway's outage.

const AUDIENCE = 'https://my-banking-api';
const ISSUER_A = 'https://issuer-a.e2e.test/';
const ISSUER_B = 'https://issuer-b.e2e.test/';
const BATCH = 20;
/** Deadlines for a loaded machine, not measures: each wait ends as soon as its condition holds. */
const DEADLINE_MS = 15_000;

let stack: EnvoyStack;
let issuerA: ServedIssuer;
let keyB: TestKey;
let health: HealthClient;
/** Every token sent through Envoy: none may show up in authz's output. */
const sent: string[] = [];

async function balance(token: string): Promise<Response> {
  sent.push(token);
  return fetch(`${stack.envoy.baseUrl}/balance`, {
    headers: { authorization: `Bearer ${token}` },
    signal: AbortSignal.timeout(5_000),
  });
}

/** Both health services' statuses, e.g. `['SERVING', 'SERVING']`. */
const healthStatuses = async () =>
  Promise.all(['', AUTHORIZATION_SERVICE].map(async (service) => (await health.check(service)).status));

const waitForServing = () =>
  waitUntil(healthStatuses, (statuses) => statuses.every((status) => status === 'SERVING'), {
    timeoutMs: DEADLINE_MS,
    what: 'health SERVING for "" and the Authorization service',
  });

beforeAll(async () => {
  issuerA = await startServedIssuer('issuer-a-key', { issuer: ISSUER_A, audience: AUDIENCE });
  keyB = await generateTestKey('issuer-b-key');
  // B's entry is A's (same audience, RS256) but for its issuer and key set URL: 127.0.0.1 port 4, where no
  // test listens and no stack port can be (those come from the ephemeral range), so its fetches are refused
  // (cause `connect`) on every run. Not port 9: fetch refuses the ports of its bad-port list before trying.
  const jwksB = 'http://127.0.0.1:4/.well-known/jwks.json';
  const issuerB = { ...issuerA.policyEntry(), issuer: ISSUER_B, jwks_uri: jwksB };
  stack = await startEnvoyStack({
    policyFile: () => writeDemoPolicy({ issuers: [issuerA.policyEntry(), issuerB] }),
  });
  const started = await stack.authz.logLine((l) => l['event'] === 'started', 'authz started');
  health = connectHealthClient(started['port'] as number);
});

afterAll(async () => {
  health?.close();
  await stack?.stop();
  await issuerA?.close();
});

describe('two issuers, one unreachable from the start', () => {
  it('health is SERVING once start-up is over, naming B as serving without keys', async () => {
    expect(await waitForServing()).toEqual(['SERVING', 'SERVING']);
    const without = await stack.authz.logLine(
      (l) => l['event'] === 'serving_without_keys',
      'serving_without_keys',
    );
    expect(without['issuers']).toEqual([ISSUER_B]);
  });

  it(`answers ${BATCH} GET /balance with A's tokens 200, every one`, async () => {
    const tokens = await Promise.all(
      Array.from({ length: BATCH }, (_, i) => issuerA.token({ claims: { sub: `alice-${i}` } })),
    );
    const statuses = await Promise.all(tokens.map(async (token) => (await balance(token)).status));
    expect(statuses, stack.envoy.output()).toEqual(Array<number>(BATCH).fill(200));
  });

  it(`answers ${BATCH} GET /balance with B's tokens 503 temporarily_unavailable, none 200 or 401`, async () => {
    const tokens = await Promise.all(
      Array.from({ length: BATCH }, (_, i) =>
        signTestToken(keyB, { issuer: ISSUER_B, audience: AUDIENCE }, { claims: { sub: `bob-${i}` } }),
      ),
    );
    const answers = await Promise.all(
      tokens.map(async (token) => {
        const response = await balance(token);
        return {
          status: response.status,
          contentType: response.headers.get('content-type'),
          cacheControl: response.headers.get('cache-control'),
          challenge: response.headers.get('www-authenticate'),
          body: (await response.json()) as Record<string, unknown>,
        };
      }),
    );
    for (const answer of answers) {
      expect(answer).toEqual({
        status: 503,
        contentType: expect.stringMatching(/^application\/json/),
        cacheControl: 'no-store',
        challenge: null,
        body: { error: 'temporarily_unavailable', error_description: expect.any(String) },
      });
    }
  });

  it('logs B unusable (cause connect), keeps failing B’s fetches, stays SERVING, and logs no token', async () => {
    const unusable = await stack.authz.logLine(
      (l) => l['event'] === 'jwks_usability' && l['issuer'] === ISSUER_B,
      'jwks_usability for B',
    );
    expect(unusable).toMatchObject({
      state: 'unusable',
      reason: 'fetch_failed',
      cause: 'connect',
      fetched_at: null,
    });
    // A later retry of B's keys, failing as well: health after it, not after a sleep.
    await stack.authz.nextLogLine(
      (l) => l['event'] === 'jwks_fetch' && l['issuer'] === ISSUER_B && l['outcome'] === 'error',
      'a further failed fetch of B’s keys',
      DEADLINE_MS,
    );
    expect(await healthStatuses()).toEqual(['SERVING', 'SERVING']);
    const aChanges = stack.authz
      .logLines()
      .filter((l) => l['event'] === 'jwks_usability' && l['issuer'] === ISSUER_A);
    expect(aChanges).toEqual([]);

    expect(sent).toHaveLength(2 * BATCH);
    const output = stack.authz.output();
    const leaked = sent.filter((token) => output.includes(token) || output.includes(token.split('.')[2]!));
    expect(leaked, 'tokens (or their signatures) in authz’s output').toEqual([]);
  });
});
