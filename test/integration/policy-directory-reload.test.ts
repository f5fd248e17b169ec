import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { AUDIENCE, ISSUER, TOKEN_DEFAULTS } from '../kit/authz-harness.js';
import { startKeyServer, type KeyServer } from '../kit/key-server.js';
import { createProjectedVolume, saveByRename, truncateAndWrite } from '../kit/policy-file-edits.js';
import {
  rootText,
  serviceFileText,
  writePolicyDirectory,
  type RootOptions,
} from '../kit/policy-directory-files.js';
import { outcomeOf, startPolicyServer, type PolicyServer } from '../kit/policy-server.js';
import { generateTestKey, signTestToken, type TestKey } from '../kit/tokens.js';
import { waitUntil } from '../kit/wait-until.js';

/*
 * A policy directory served by the production server in this process (startAuthzServer, docs/policy.md, "A
 * policy directory"): a root file the platform owns, and one service file per team, edited as teams edit
 * them. Each team's service answers GET /<name> to a token with `view:<name>`; an edit that tightens a route
 * to also need `audit:read` is seen as the answer turning 403. "Takes effect" means Checks are sent until the
 * answer changes (the folder is watched and polled once a second); the deadlines are for a loaded machine.
 */

const EFFECT_DEADLINE_MS = 10_000;

let key: TestKey;
let jwks: KeyServer;
let token: string;
const running: PolicyServer[] = [];

beforeAll(async () => {
  key = await generateTestKey('teams-key');
  jwks = await startKeyServer([key.publicJwk]);
  token = await signTestToken(key, TOKEN_DEFAULTS, {
    claims: { scope: 'view:bank view:cards view:loans', email: 'ada@example.com' },
  });
});

afterEach(async () => {
  for (const server of running.splice(0)) await server.stop();
});

afterAll(async () => {
  await jwks?.close();
});

const root = (options: RootOptions = {}) =>
  rootText({
    serviceFiles: ['bank.yaml', 'cards.yaml'],
    ...options,
    issuers: [
      `  - issuer: ${ISSUER}`,
      `    audiences: [${AUDIENCE}]`,
      `    jwks_uri: ${jwks.url}`,
      '    algorithms: [RS256]',
    ],
  });

/** A team's file: its service `name` on `name.example` (and `hosts`), GET /<name> needing `scopes`. */
const team = (name: string, scopes = [`view:${name}`], hosts = [`${name}.example`]) =>
  serviceFileText(`team-${name}`, {
    name,
    hosts,
    routes: [`{ methods: [GET], path: /${name}, scopes: [${scopes.join(', ')}] }`],
  });

const TIGHT = (name: string) => [`view:${name}`, 'audit:read'];

async function start(files: Record<string, string>): Promise<PolicyServer> {
  const server = await startPolicyServer({
    tempPrefix: 'authz-teams-',
    prepare: async (dir) => {
      const policyDir = join(dir, 'policy.d');
      await writePolicyDirectory(policyDir, files);
      return policyDir;
    },
  });
  running.push(server);
  return server;
}

const get = (authz: PolicyServer, name: string, host = `${name}.example`) =>
  authz.outcome({ method: 'GET', path: `/${name}`, host, authorization: `Bearer ${token}` });

async function becomes(authz: PolicyServer, name: string, expected: string): Promise<void> {
  await waitUntil(
    () => get(authz, name),
    (outcome) => outcome === expected,
    { timeoutMs: EFFECT_DEADLINE_MS, what: `GET /${name} answered ${expected}` },
  );
}

/** The reload lines about one file, in order. */
const linesOf = (authz: PolicyServer, file: string) =>
  authz.events('policy_reload').filter((line) => line['file'] === join(authz.policyFile, file));

/** The first reload line about `file` with this `result`, once there is one. */
const lineWith = async (authz: PolicyServer, file: string, result: string) =>
  (await waitUntil(
    () => linesOf(authz, file).find((line) => line['result'] === result),
    (line) => line !== undefined,
    { timeoutMs: EFFECT_DEADLINE_MS, what: `a ${result} line for ${file}` },
  ))!;

describe('a policy directory served: one team’s save never touches another’s routes', () => {
  it('two teams saving at once: both edits take effect, each logged with its file and owner', async () => {
    const authz = await start({
      '_gateway.yaml': root(),
      'bank.yaml': team('bank'),
      'cards.yaml': team('cards'),
    });
    expect(await get(authz, 'bank')).toBe('allow');
    expect(await get(authz, 'cards')).toBe('allow');

    await Promise.all([
      saveByRename(join(authz.policyFile, 'bank.yaml'), team('bank', TIGHT('bank'))),
      truncateAndWrite(join(authz.policyFile, 'cards.yaml'), team('cards', TIGHT('cards'))),
    ]);
    await becomes(authz, 'bank', 'deny 403');
    await becomes(authz, 'cards', 'deny 403');
    await waitUntil(
      () => [linesOf(authz, 'bank.yaml').length, linesOf(authz, 'cards.yaml').length],
      ([bank, cards]) => bank! >= 1 && cards! >= 1,
      { timeoutMs: EFFECT_DEADLINE_MS, what: 'a reload line for each file' },
    );
    expect(linesOf(authz, 'bank.yaml').at(-1)).toMatchObject({
      result: 'ok',
      owner: 'team-bank',
      services: ['bank'],
    });
    expect(linesOf(authz, 'cards.yaml').at(-1)).toMatchObject({
      result: 'ok',
      owner: 'team-cards',
      services: ['cards'],
    });
    expect(authz.events('policy_reload').filter((line) => line['result'] === 'error')).toEqual([]);
  });

  it('one team’s broken save is refused alone, its last good version kept, while the other team’s edit applies', async () => {
    const authz = await start({
      '_gateway.yaml': root(),
      'bank.yaml': team('bank'),
      'cards.yaml': team('cards'),
    });
    expect(await get(authz, 'bank')).toBe('allow');

    await writePolicyDirectory(authz.policyFile, {
      'bank.yaml': team('bank', TIGHT('bank')).replace('routes:', 'routes: [oops'),
      'cards.yaml': team('cards', TIGHT('cards')),
    });
    await becomes(authz, 'cards', 'deny 403');
    const refused = await lineWith(authz, 'bank.yaml', 'error');
    expect(refused).toMatchObject({
      event: 'policy_reload',
      owner: 'team-bank',
      code: 'ERR_POLICY_SYNTAX',
      serving: 'last_good',
      services: ['bank'],
      msg: 'policy file refused (team-bank); its last good version stays in force',
    });
    expect((refused['problems'] as string[])[0]).toMatch(/policy\.d\/bank\.yaml:\d+:\d+: YAML syntax/);
    expect(await get(authz, 'bank')).toBe('allow'); // the last good version
    expect(authz.metrics.directoryFiles).toEqual([
      { name: '_gateway.yaml', owner: 'platform', inForce: true },
      { name: 'bank.yaml', owner: 'team-bank', inForce: false },
      { name: 'cards.yaml', owner: 'team-cards', inForce: true },
    ]);
    expect(authz.metrics.policyReloads).toEqual(expect.arrayContaining(['ok', 'error']));

    // Fixed: in force, and the gauge says so.
    await writePolicyDirectory(authz.policyFile, { 'bank.yaml': team('bank', TIGHT('bank')) });
    await becomes(authz, 'bank', 'deny 403');
    await waitUntil(
      () => authz.metrics.directoryFiles.every((file) => file.inForce),
      (all) => all,
      { timeoutMs: EFFECT_DEADLINE_MS, what: 'every file in force' },
    );
  });

  it('a refused file saved back as its version in force is restored: logged once, and in force again in the metrics', async () => {
    const authz = await start({
      '_gateway.yaml': root(),
      'bank.yaml': team('bank'),
      'cards.yaml': team('cards'),
    });
    await writePolicyDirectory(authz.policyFile, { 'bank.yaml': 'owner: team-bank\nservices: [' });
    await lineWith(authz, 'bank.yaml', 'error');
    await writePolicyDirectory(authz.policyFile, { 'bank.yaml': team('bank') });
    const restored = await lineWith(authz, 'bank.yaml', 'restored');
    expect(restored).toMatchObject({
      owner: 'team-bank',
      msg: 'policy file restored to the version in force (team-bank)',
    });
    expect(authz.metrics.directoryFiles.every((file) => file.inForce)).toBe(true);
    expect(await get(authz, 'bank')).toBe('allow');
  });

  it('a host stolen by a second file is refused, naming both files and lines; the holder keeps it', async () => {
    const authz = await start({
      '_gateway.yaml': root(),
      'bank.yaml': team('bank'),
      'cards.yaml': team('cards'),
    });
    await writePolicyDirectory(authz.policyFile, {
      'cards.yaml': team('cards', TIGHT('cards'), ['cards.example', 'bank.example']),
    });
    const refused = await lineWith(authz, 'cards.yaml', 'error');
    expect(refused).toMatchObject({ code: 'ERR_POLICY_CONFLICT', owner: 'team-cards', serving: 'last_good' });
    expect(refused['problems']).toEqual([
      `${join(authz.policyFile, 'cards.yaml')}:4:30: services[0].hosts[1]: host "bank.example" is held by ${join(authz.policyFile, 'bank.yaml')}:4 (owner team-bank, services[0].hosts[0])`,
    ]);
    expect(await get(authz, 'bank')).toBe('allow');
    expect(await get(authz, 'cards')).toBe('allow'); // its last good version, not the tightened one
  });

  it('a projected volume (one ConfigMap per team) swapping ..data for one team’s change applies it', async () => {
    let volume: Awaited<ReturnType<typeof createProjectedVolume>> | undefined;
    const server = await startPolicyServer({
      tempPrefix: 'authz-teams-',
      prepare: async (dir) => {
        volume = await createProjectedVolume(dir, {
          '_gateway.yaml': root(),
          'bank.yaml': team('bank'),
          'cards.yaml': team('cards'),
        });
        return dir;
      },
    });
    running.push(server);
    expect(await get(server, 'bank')).toBe('allow');
    await volume!.update({ 'cards.yaml': team('cards', TIGHT('cards')) });
    await becomes(server, 'cards', 'deny 403');
    expect(await get(server, 'bank')).toBe('allow');
    // A team added: its ConfigMap joins the volume and the root admits it, in one swap.
    await volume!.update({
      '_gateway.yaml': root({ serviceFiles: ['bank.yaml', 'cards.yaml', 'loans.yaml'] }),
      'loans.yaml': team('loans'),
    });
    await becomes(server, 'loans', 'allow');
  });

  it('a deleted file the root names stays in force until the root drops it; then its hosts are no one’s', async () => {
    const authz = await start({
      '_gateway.yaml': root(),
      'bank.yaml': team('bank'),
      'cards.yaml': team('cards'),
    });
    await writePolicyDirectory(authz.policyFile, { 'cards.yaml': undefined });
    const refused = await lineWith(authz, 'cards.yaml', 'error');
    expect(refused).toMatchObject({
      code: 'ERR_POLICY_FILE_MISSING',
      owner: 'team-cards',
      serving: 'last_good',
    });
    expect(await get(authz, 'cards')).toBe('allow');

    await writePolicyDirectory(authz.policyFile, { '_gateway.yaml': root({ serviceFiles: ['bank.yaml'] }) });
    await becomes(authz, 'cards', 'deny 403');
    expect(linesOf(authz, 'cards.yaml').at(-1)).toMatchObject({ result: 'removed', owner: 'team-cards' });
    expect(await get(authz, 'bank')).toBe('allow');
  });

  it('starts with a refused service file: the others are served, its hosts answered 503 until it is fixed', async () => {
    const authz = await start({
      '_gateway.yaml': root(),
      'bank.yaml': team('bank'),
      'cards.yaml': team('cards').replace('owner: team-cards\n', 'owner: team-cards\nissuers: []\n'),
    });
    expect(await get(authz, 'bank')).toBe('allow');
    expect(await get(authz, 'cards')).toBe('deny 503');
    const { response } = await authz.check({
      method: 'GET',
      path: '/cards',
      host: 'cards.example',
      authorization: `Bearer ${token}`,
    });
    expect(outcomeOf(response)).toBe('deny 503');
    expect(authz.events('policy_load')).toEqual([
      expect.objectContaining({
        result: 'error',
        file: join(authz.policyFile, 'cards.yaml'),
        owner: 'team-cards',
        code: 'ERR_POLICY_INVALID',
        serving: 'none',
        msg: 'policy file refused (team-cards); it has no version in force: its hosts are answered 503 until a good version is saved',
      }),
    ]);
    expect(await get(authz, 'nobody')).toBe('deny 403');
    await writePolicyDirectory(authz.policyFile, { 'cards.yaml': team('cards') });
    await becomes(authz, 'cards', 'allow');
  });

  it('a refused root keeps the whole policy in force; a team’s edit still applies against it', async () => {
    const authz = await start({
      '_gateway.yaml': root(),
      'bank.yaml': team('bank'),
      'cards.yaml': team('cards'),
    });
    await writePolicyDirectory(authz.policyFile, {
      '_gateway.yaml': root().replace('issuers:', 'issuers: [oops'),
      'cards.yaml': team('cards', TIGHT('cards')),
    });
    await becomes(authz, 'cards', 'deny 403');
    const refused = await lineWith(authz, '_gateway.yaml', 'error');
    expect(refused).toMatchObject({ role: 'root', owner: 'platform', code: 'ERR_POLICY_SYNTAX' });
    expect(refused['msg']).toBe(
      'policy file refused (platform); the root file in force stays; service files are judged against it',
    );
    expect(await get(authz, 'bank')).toBe('allow');
  });
});
