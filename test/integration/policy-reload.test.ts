import { writeFile } from 'node:fs/promises';
import { setTimeout as delay } from 'node:timers/promises';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { TOKEN_DEFAULTS } from '../kit/authz-harness.js';
import { startKeyServer, type KeyServer } from '../kit/key-server.js';
import { createConfigMapVolume, saveByRename, truncateAndWrite } from '../kit/policy-file-edits.js';
import {
  bankRoutes,
  outcomeOf,
  policyText,
  startPolicyServer,
  type IssuerEntry,
  type PolicyServer,
  type PolicyServerOptions,
} from '../kit/policy-server.js';
import { generateTestKey, signTestToken, type TestKey } from '../kit/tokens.js';
import { waitUntil } from '../kit/wait-until.js';

/*
 * Hot policy reload, against the production server in this process (startAuthzServer on 127.0.0.1) with a
 * real policy file in a temporary folder, a recording `metrics`, and every log line captured.
 *
 * The running example: GET /balance needs `view:balance`, and the token presented carries exactly that
 * scope. Edits tighten the route to also need `audit:read` (the token is then refused with 403) and loosen
 * it back. "Takes effect" means a Check sent after the edit is decided by the new rules: the tests send
 * Checks until the answer changes (the file is watched and also polled once a second, so on a quiet
 * machine it changes within 2 s; the deadline below is for a loaded one, and says that it never changed).
 * The tests of reload() itself run with the watcher off, so that it never races them to an edit.
 */

const TIGHTENED = ['view:balance', 'audit:read'];
const LOOSE = ['view:balance'];
const EFFECT_DEADLINE_MS = 10_000;
/** A refused file is judged once it has stayed the same for 1 s (REFUSAL_SETTLE_MS); the rest is slack. */
const REFUSAL_DEADLINE_MS = 10_000;

let key: TestKey;
let jwks: KeyServer;
let viewToken: string;
const running: PolicyServer[] = [];

beforeAll(async () => {
  key = await generateTestKey('reload-key');
  jwks = await startKeyServer([key.publicJwk]);
  viewToken = await signTestToken(key, TOKEN_DEFAULTS, { claims: { scope: 'view:balance' } });
});

afterEach(async () => {
  jwks.release();
  jwks.behave('keys');
  jwks.publish([key.publicJwk]);
  for (const server of running.splice(0)) await server.stop();
});

afterAll(async () => {
  await jwks?.close();
});

const issuer = (settings?: Record<string, string>): IssuerEntry => ({
  jwksUri: jwks.url,
  ...(settings === undefined ? {} : { settings }),
});

/** The policy of these tests: the demo issuer, and GET /balance requiring `balanceScopes`. */
const bankPolicy = (balanceScopes: readonly string[], settings?: Record<string, string>) =>
  policyText([issuer(settings)], bankRoutes(balanceScopes));

async function start(options: PolicyServerOptions): Promise<PolicyServer> {
  const server = await startPolicyServer(options);
  running.push(server);
  return server;
}

const getBalance = (authz: PolicyServer, token = viewToken) =>
  authz.check({ method: 'GET', path: '/balance', authorization: `Bearer ${token}` });

/** Sends GET /balance until it is answered `expected` (fails after EFFECT_DEADLINE_MS); resolves with that answer's id. */
async function balanceBecomes(authz: PolicyServer, expected: string): Promise<string> {
  const last = await waitUntil(
    async () => {
      const { response, id } = await getBalance(authz);
      return { outcome: outcomeOf(response), id };
    },
    (answer) => answer.outcome === expected,
    { timeoutMs: EFFECT_DEADLINE_MS, what: `GET /balance answered ${expected}` },
  );
  return last.id;
}

/** The `policy_version` of the policy the server started with. */
const startedVersion = (authz: PolicyServer) => authz.events('started')[0]?.['policy_version'] as string;

/** The `policy_version` of the last successful reload. */
const reloadedVersion = (authz: PolicyServer) =>
  authz
    .events('policy_reload')
    .filter((line) => line['result'] === 'ok')
    .at(-1)?.['policy_version'] as string;

/** The line number (1-based) of the first line of `text` containing `needle`. */
const lineOf = (text: string, needle: string) =>
  text.split('\n').findIndex((line) => line.includes(needle)) + 1;

describe('hot policy reload: edits take effect without a restart', () => {
  it('a truncate-and-write edit adding a scope to GET /balance takes effect, and decisions name the new policy_version; removing the scope restores allow', async () => {
    const authz = await start({ policy: bankPolicy(LOOSE) });
    const first = await getBalance(authz);
    expect(outcomeOf(first.response)).toBe('allow');
    const v1 = startedVersion(authz);
    expect(v1).toMatch(/^[0-9a-f]{16}$/);
    expect(authz.decisionLine(first.id)['policy_version']).toBe(v1);

    await truncateAndWrite(authz.policyFile, bankPolicy(TIGHTENED));
    const deniedId = await balanceBecomes(authz, 'deny 403');
    const v2 = reloadedVersion(authz);
    expect(v2).toMatch(/^[0-9a-f]{16}$/);
    expect(v2).not.toBe(v1);
    expect(authz.decisionLine(deniedId)).toMatchObject({
      decision: 'deny',
      reason: 'insufficient_scope',
      missing_scopes: ['audit:read'],
      policy_version: v2,
    });

    await truncateAndWrite(authz.policyFile, bankPolicy(LOOSE));
    const allowedId = await balanceBecomes(authz, 'allow');
    // The same text as at start: the same content hash.
    expect(authz.decisionLine(allowedId)['policy_version']).toBe(v1);
    expect(reloadedVersion(authz)).toBe(v1);
  });

  it('a save by rename (a temporary file in the same folder renamed over the policy) takes effect', async () => {
    const authz = await start({ policy: bankPolicy(LOOSE) });
    expect(outcomeOf((await getBalance(authz)).response)).toBe('allow');

    await saveByRename(authz.policyFile, bankPolicy(TIGHTENED));
    await balanceBecomes(authz, 'deny 403');

    await saveByRename(authz.policyFile, bankPolicy(LOOSE));
    await balanceBecomes(authz, 'allow');
  });

  it('a Kubernetes ConfigMap update (policy.yaml -> ..data/policy.yaml, ..data swapped by rename) takes effect', async () => {
    let volume: Awaited<ReturnType<typeof createConfigMapVolume>> | undefined;
    const authz = await start({
      prepare: async (dir) => {
        volume = await createConfigMapVolume(dir, bankPolicy(LOOSE));
        return volume.policyFile;
      },
    });
    expect(outcomeOf((await getBalance(authz)).response)).toBe('allow');

    await volume!.update(bankPolicy(TIGHTENED));
    await balanceBecomes(authz, 'deny 403');
    expect(authz.events('policy_reload').at(-1)).toMatchObject({ result: 'ok', file: authz.policyFile });

    await volume!.update(bankPolicy(LOOSE));
    await balanceBecomes(authz, 'allow');
  });
});

describe('hot policy reload: an invalid edit never takes effect', () => {
  /** Waits for the next `policy_reload` line with result error after `seen` of them. */
  const refusal = (authz: PolicyServer, seen: number) =>
    waitUntil(
      () => authz.events('policy_reload').filter((line) => line['result'] === 'error'),
      (lines) => lines.length > seen,
      { timeoutMs: REFUSAL_DEADLINE_MS, what: 'a policy_reload error line' },
    ).then((lines) => lines[seen]!);

  it('a YAML syntax error is refused: the old rules still apply, the refusal is logged with file:line, counted, and a later valid edit is picked up', async () => {
    const authz = await start({ policy: bankPolicy(LOOSE) });
    const v1 = startedVersion(authz);
    expect(outcomeOf((await getBalance(authz)).response)).toBe('allow');

    // Tightened, but the /balance flow mapping is never closed: not YAML.
    const broken = bankPolicy(TIGHTENED).replace('audit:read] }', 'audit:read]');
    await truncateAndWrite(authz.policyFile, broken);
    const line = await refusal(authz, 0);

    expect(line).toMatchObject({
      level: 50, // pino's "error"
      event: 'policy_reload',
      result: 'error',
      code: 'ERR_POLICY_SYNTAX',
      file: authz.policyFile,
      policy_version: v1, // the version still in force
    });
    const problems = line['problems'] as string[];
    expect(problems.length).toBeGreaterThan(0);
    for (const problem of problems) {
      expect(problem).toMatch(new RegExp(`^${escapeRegExp(authz.policyFile)}:[1-9][0-9]*:[0-9]+: `));
    }
    expect(authz.metrics.policyReloads).toContain('error');
    expect(authz.metrics.policyReloads).not.toContain('ok');

    // The old rules still apply, with the old version on their decision lines.
    const after = await getBalance(authz);
    expect(outcomeOf(after.response)).toBe('allow');
    expect(authz.decisionLine(after.id)['policy_version']).toBe(v1);

    await truncateAndWrite(authz.policyFile, bankPolicy(TIGHTENED));
    await balanceBecomes(authz, 'deny 403');
    expect(authz.metrics.policyReloads.at(-1)).toBe('ok');
  });

  it('a schema error is refused with file:line and the document path of the offending value', async () => {
    const authz = await start({ policy: bankPolicy(LOOSE) });
    const v1 = startedVersion(authz);

    // Tightened, but with `scopes` misspelt: a key the schema does not allow.
    const invalid = bankPolicy(TIGHTENED).replace(
      'scopes: [view:balance, audit:read]',
      'scopez: [view:balance, audit:read]',
    );
    await saveByRename(authz.policyFile, invalid);
    const line = await refusal(authz, 0);

    expect(line).toMatchObject({
      event: 'policy_reload',
      result: 'error',
      code: 'ERR_POLICY_INVALID',
      file: authz.policyFile,
      policy_version: v1,
    });
    const where = `${authz.policyFile}:${lineOf(invalid, 'scopez')}:`;
    expect(line['problems']).toEqual([
      expect.stringMatching(new RegExp(`^${escapeRegExp(where)}[0-9]+: routes\\[0\\]\\.scopez: unknown key`)),
    ]);
    expect(authz.metrics.policyReloads).toContain('error');
    expect(authz.metrics.policyReloads).not.toContain('ok');
    expect(authz.metrics.policyInfo.map((info) => info.version)).toEqual([v1]); // never announced

    expect(outcomeOf((await getBalance(authz)).response)).toBe('allow'); // the old rules

    await saveByRename(authz.policyFile, bankPolicy(TIGHTENED));
    await balanceBecomes(authz, 'deny 403');
  });

  it('each invalid edit is refused once, though both the file watcher and the once-a-second poll notice it', async () => {
    const authz = await start({ policy: bankPolicy(LOOSE) });
    await delay(1200); // the poll has taken note of the file as it was at start

    // Three distinct invalid edits, each given time to be seen by the watcher (150 ms settle) and by the
    // next poll tick (at most 1 s later): one refusal line and one error count each. (Three, so that the
    // outcome does not depend on where a poll tick happens to fall.)
    const invalidEdits = ['version: 2', 'version: 3', 'version: 4'];
    for (const [index, version] of invalidEdits.entries()) {
      await truncateAndWrite(authz.policyFile, bankPolicy(LOOSE).replace('version: 1', version));
      await refusal(authz, index);
      await delay(1500);
    }

    const refusals = authz.events('policy_reload').filter((line) => line['result'] === 'error');
    expect(refusals.map((line) => line['trigger'])).toHaveLength(invalidEdits.length);
    expect(authz.metrics.policyReloads).toEqual(['error', 'error', 'error']);
    expect(outcomeOf((await getBalance(authz)).response)).toBe('allow'); // the start-up policy throughout
  });
});

describe('reload() (what SIGHUP calls)', () => {
  it("answers 'unchanged' when the file did not change, 'ok' after a change, 'error' for an invalid file (after the file has settled)", async () => {
    const authz = await start({ policy: bankPolicy(LOOSE), watchPolicy: false });
    expect(await authz.server.reload()).toBe('unchanged');
    // Nothing new, but a SIGHUP is always answered by one line; only changed files are counted.
    expect(authz.events('policy_reload')).toEqual([
      expect.objectContaining({ result: 'unchanged', trigger: 'signal' }),
    ]);
    expect(authz.metrics.policyReloads).toEqual([]);

    // No watcher: reload() is the only one to see each write.
    await writeFile(authz.policyFile, bankPolicy(TIGHTENED));
    expect(await authz.server.reload()).toBe('ok');
    expect(authz.events('policy_reload').at(-1)).toMatchObject({ result: 'ok', trigger: 'signal' });
    expect(outcomeOf((await getBalance(authz)).response)).toBe('deny 403');
    expect(await authz.server.reload()).toBe('unchanged');

    await writeFile(authz.policyFile, 'routes: [');
    expect(await authz.server.reload()).toBe('error');
    expect(await authz.server.reload()).toBe('error'); // still invalid, still refused
    expect(outcomeOf((await getBalance(authz)).response)).toBe('deny 403');
  });

  it('concurrent reload() calls share one reload', async () => {
    const authz = await start({ policy: bankPolicy(LOOSE), watchPolicy: false });
    await writeFile(authz.policyFile, bankPolicy(TIGHTENED));
    const results = await Promise.all([authz.server.reload(), authz.server.reload(), authz.server.reload()]);
    // Had they run one after another, the second and third would have answered 'unchanged'.
    expect(results).toEqual(['ok', 'ok', 'ok']);
    // One reload read and swapped the policy; whatever ran after it found nothing new.
    expect(authz.events('policy_reload').filter((line) => line['result'] === 'ok')).toHaveLength(1);
    expect(authz.metrics.policyReloads).toEqual(['ok']);
  });

  it("answers 'unchanged' for an unchanged file that starts with a UTF-8 byte order mark", async () => {
    const authz = await start({ policy: '\uFEFF' + bankPolicy(LOOSE), watchPolicy: false });
    expect(outcomeOf((await getBalance(authz)).response)).toBe('allow');
    expect(await authz.server.reload()).toBe('unchanged');
    expect(authz.events('policy_reload').map((line) => line['result'])).toEqual(['unchanged']);
  });
});

describe('hot policy reload: issuers and their keys', () => {
  it('an issuer added by a reload is trusted after it: its key set is fetched and its tokens verify', async () => {
    const otherKey = await generateTestKey('second-issuer-key');
    const otherJwks = await startKeyServer([otherKey.publicJwk]);
    try {
      const otherIssuer = 'https://second-idp.example/';
      const otherToken = await signTestToken(
        otherKey,
        { issuer: otherIssuer, audience: TOKEN_DEFAULTS.audience },
        { claims: { scope: 'view:balance' } },
      );
      const authz = await start({ policy: bankPolicy(LOOSE), watchPolicy: false });
      expect(outcomeOf((await getBalance(authz, otherToken)).response)).toBe('deny 401');
      expect(otherJwks.requests).toBe(0);

      await saveByRename(
        authz.policyFile,
        policyText([issuer(), { issuer: otherIssuer, jwksUri: otherJwks.url }], bankRoutes(LOOSE)),
      );
      expect(await authz.server.reload()).not.toBe('error');

      expect(outcomeOf((await getBalance(authz, otherToken)).response)).toBe('allow');
      expect(outcomeOf((await getBalance(authz)).response)).toBe('allow'); // the first issuer still trusted
      expect(otherJwks.requests).toBe(1);
      expect(authz.metrics.keySetFetches).toContainEqual({
        issuer: otherIssuer,
        outcome: 'ok',
        trigger: 'initial',
      });
      // Health is SERVING (it never depends on an issuer's keys).
      await waitUntil(
        () => authz.health.check(''),
        (answer) => answer.status === 'SERVING',
        { timeoutMs: 10_000, what: 'health SERVING after the new issuer was fetched' },
      );
    } finally {
      await otherJwks.close();
    }
  });

  it("a reload that leaves an issuer's key settings unchanged does not refetch its keys; one that changes them does", async () => {
    const authz = await start({ policy: bankPolicy(LOOSE), watchPolicy: false });
    expect(outcomeOf((await getBalance(authz)).response)).toBe('allow');
    const before = jwks.requests;

    for (const scopes of [TIGHTENED, LOOSE, TIGHTENED]) {
      await saveByRename(authz.policyFile, bankPolicy(scopes));
      expect(await authz.server.reload()).not.toBe('error');
      await getBalance(authz);
    }
    expect(outcomeOf((await getBalance(authz)).response)).toBe('deny 403');
    expect(jwks.requests).toBe(before);
    expect(authz.metrics.keySetFetches).toHaveLength(1); // the start-up fetch only

    // A changed cache setting is a different key configuration: fresh keys for the new version.
    await saveByRename(authz.policyFile, bankPolicy(TIGHTENED, { jwks_cache_ttl: '60s' }));
    expect(await authz.server.reload()).toBe('ok');
    expect(outcomeOf((await getBalance(authz)).response)).toBe('deny 403');
    expect(jwks.requests).toBe(before + 1);
  });
});

describe('hot policy reload: requests in flight', () => {
  it('a request in flight finishes on the version it started with; a request started after the swap gets the new one', async () => {
    // The clock moves only when told, so the refetch cooldown (1 s) never depends on machine speed.
    let offsetMs = 0;
    const now = () => Date.now() + offsetMs;
    // A Check waits for a key set fetch up to jwks_fetch_wait: the most allowed, so that the steps taken
    // while the fetch is held below never outlast it. reload() alone swaps the policy.
    const settings = { jwks_refresh_cooldown: '1s', jwks_fetch_wait: '10s' };
    const authz = await start({ policy: bankPolicy(LOOSE, settings), now, watchPolicy: false });
    expect(outcomeOf((await getBalance(authz)).response)).toBe('allow');
    const v1 = startedVersion(authz);
    const fetchesBefore = jwks.requests;

    // The issuer rotates to a key the server has not seen: the next Check must fetch the key set first,
    // and the key set server holds that answer until told.
    const rotated = await generateTestKey('reload-rotated-key');
    const rotatedToken = await signTestToken(rotated, TOKEN_DEFAULTS, { claims: { scope: 'view:balance' } });
    jwks.publish([key.publicJwk, rotated.publicJwk]);
    jwks.hold();
    offsetMs += 60_000; // past the refetch cooldown

    const inFlight = getBalance(authz, rotatedToken);
    await jwks.arrivals(fetchesBefore + 1); // the Check is now waiting for the keys, on version 1

    await truncateAndWrite(authz.policyFile, bankPolicy(TIGHTENED, settings));
    expect(await authz.server.reload()).toBe('ok');
    const v2 = reloadedVersion(authz);
    expect(v2).not.toBe(v1);
    const startedAfter = getBalance(authz, rotatedToken);
    // The second Check is inside the server, waiting for the same fetch, before the keys arrive.
    await waitUntil(
      () => authz.metrics.checksInFlight(),
      (inFlight) => inFlight === 2,
      { timeoutMs: 10_000, what: 'both Checks in flight' },
    );
    jwks.release();

    const [old, fresh] = await Promise.all([inFlight, startedAfter]);
    expect(outcomeOf(old.response)).toBe('allow');
    expect(authz.decisionLine(old.id)).toMatchObject({ decision: 'allow', policy_version: v1 });
    expect(outcomeOf(fresh.response)).toBe('deny 403');
    expect(authz.decisionLine(fresh.id)).toMatchObject({
      decision: 'deny',
      reason: 'insufficient_scope',
      policy_version: v2,
    });
    expect(jwks.requests).toBe(fetchesBefore + 1); // one fetch served both
  });
});

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
