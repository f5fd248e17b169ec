import type * as fs from 'node:fs';
import { setTimeout as delay } from 'node:timers/promises';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { TOKEN_DEFAULTS } from '../kit/authz-harness.js';
import { startKeyServer, type KeyServer } from '../kit/key-server.js';
import { saveByRename, truncateAndWrite } from '../kit/policy-file-edits.js';
import {
  bankRoutes,
  outcomeOf,
  policyText,
  startPolicyServer,
  type PolicyServer,
} from '../kit/policy-server.js';
import { generateTestKey, signTestToken, type TestKey } from '../kit/tokens.js';
import { waitUntil } from '../kit/wait-until.js';

/*
 * Hot reload where file-system events are unavailable (some network and overlay mounts never deliver
 * them): `fs.watch` throws here, so the once-a-second poll is all the server has. Every change to the
 * file must still take effect, including one made right after start, and by the poll (within 2 s on a
 * quiet machine; the deadline below is for a loaded one).
 */

vi.mock('node:fs', async (importOriginal) => {
  const actual = await importOriginal<typeof fs>();
  return {
    ...actual,
    watch: () => {
      throw Object.assign(new Error('file events are not available on this mount'), { code: 'ENOSYS' });
    },
  };
});

let key: TestKey;
let jwks: KeyServer;
let viewToken: string;
const running: PolicyServer[] = [];

beforeAll(async () => {
  key = await generateTestKey('polling-key');
  jwks = await startKeyServer([key.publicJwk]);
  viewToken = await signTestToken(key, TOKEN_DEFAULTS, { claims: { scope: 'view:balance' } });
});

afterEach(async () => {
  for (const server of running.splice(0)) await server.stop();
});

afterAll(async () => {
  await jwks?.close();
});

const bankPolicy = (balanceScopes: readonly string[]) =>
  policyText([{ jwksUri: jwks.url }], bankRoutes(balanceScopes));

async function start(): Promise<PolicyServer> {
  const server = await startPolicyServer({ policy: bankPolicy(['view:balance']) });
  running.push(server);
  return server;
}

const balanceOutcome = async (authz: PolicyServer) =>
  outcomeOf(
    (await authz.check({ method: 'GET', path: '/balance', authorization: `Bearer ${viewToken}` })).response,
  );

const balanceBecomes = (authz: PolicyServer, expected: string) =>
  waitUntil(
    () => balanceOutcome(authz),
    (outcome) => outcome === expected,
    { timeoutMs: 10_000, what: `GET /balance answered ${expected}` },
  );

describe('hot policy reload without file-system events (poll only)', () => {
  it('says it is polling, and an edit takes effect through the poll', async () => {
    const authz = await start();
    expect(authz.events('policy_watch_unavailable')).toEqual([
      expect.objectContaining({ level: 40, file: authz.policyFile }), // a warning
    ]);
    await delay(1200); // past the first poll tick

    await truncateAndWrite(authz.policyFile, bankPolicy(['view:balance', 'audit:read']));
    await balanceBecomes(authz, 'deny 403');
    expect(authz.events('policy_reload').at(-1)).toMatchObject({ result: 'ok', trigger: 'poll' });

    await saveByRename(authz.policyFile, bankPolicy(['view:balance']));
    await balanceBecomes(authz, 'allow');
  });

  it('an edit made right after start (before the first poll tick) takes effect through the poll', async () => {
    const authz = await start();
    expect(await balanceOutcome(authz)).toBe('allow');

    await truncateAndWrite(authz.policyFile, bankPolicy(['view:balance', 'audit:read']));
    await balanceBecomes(authz, 'deny 403');
    expect(authz.events('policy_reload').at(-1)).toMatchObject({ result: 'ok', trigger: 'poll' });
  });
});
