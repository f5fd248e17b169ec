import { rm, writeFile } from 'node:fs/promises';
import { setTimeout as delay } from 'node:timers/promises';
import type { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAuthzMetrics, type AuthzMetrics } from '../../src/metrics/authz-metrics.js';
import { PolicyWatcher } from '../../src/policy/policy-watcher.js';
import type { RunningAuthzServer } from '../../src/server/authz-server.js';
import { createLogSink, createTempDir, ISSUER, writeTextFile, type LogSink } from '../kit/authz-harness.js';
import { startKeyServer, type KeyServer } from '../kit/key-server.js';
import { saveByRename, truncateAndWrite } from '../kit/policy-file-edits.js';
import { bankRoutes, policyText, startPolicyServer } from '../kit/policy-server.js';
import { cleanupAfterEach } from '../kit/test-hooks.js';
import { generateTestKey } from '../kit/tokens.js';
import { waitUntil } from '../kit/wait-until.js';

/*
 * Issue 13: every reload attempt is visible. The production server in this process, with the production
 * metrics (read back as a scrape would) and every log line captured; the policy file is edited the ways
 * editors and operators do. A refused file is judged only after it has stayed the same for 1 s; the
 * deadlines here are for a loaded machine. What must happen while a reload waits for the file to settle is
 * played on the PolicyWatcher itself, with a settle wait the test ends, never as a race with the clock.
 * The tests of reload() alone run with the watcher off, so that it never races them to an edit.
 */

const DEADLINE_MS = 10_000;

let jwks: KeyServer;

beforeAll(async () => {
  const key = await generateTestKey('visibility-key');
  jwks = await startKeyServer([key.publicJwk]);
});

afterAll(async () => {
  await jwks?.close();
});

interface VisibleServer {
  readonly policyFile: string;
  readonly sink: LogSink;
  readonly metrics: AuthzMetrics;
  readonly server: RunningAuthzServer;
  /** The `policy_reload` lines so far. */
  reloads(): Record<string, unknown>[];
  /** The value of a metric sample with these labels (undefined: no such sample). */
  metric(name: string, labels?: Record<string, string>): Promise<number | undefined>;
}

const defer = cleanupAfterEach();

async function start(policy: string, options: { watchPolicy?: boolean } = {}): Promise<VisibleServer> {
  const { policyFile, sink, metrics, server, stop } = await startPolicyServer({
    policy,
    tempPrefix: 'authz-visibility-',
    metrics: createAuthzMetrics(),
    watchPolicy: options.watchPolicy ?? true,
    awaitStartupFetches: false,
  });
  defer(stop);
  return {
    policyFile,
    sink,
    metrics,
    server,
    reloads: () => sink.records().filter((line) => line['event'] === 'policy_reload'),
    metric: (name, labels = {}) => sampleValue(metrics.registry, name, labels),
  };
}

async function sampleValue(
  registry: Registry,
  name: string,
  labels: Record<string, string>,
): Promise<number | undefined> {
  const metric = (await registry.getMetricsAsJSON()).find((entry) => entry.name === name);
  return metric?.values.find((sample) =>
    Object.entries(labels).every(([key, value]) => sample.labels[key] === value),
  )?.value;
}

/** A PolicyWatcher on its own (not watching: the test calls reload() as the watcher would), with its settle wait in the test's hands. */
interface HeldWatcher {
  readonly policyFile: string;
  readonly watcher: PolicyWatcher;
  reloads(): Record<string, unknown>[];
  /** Resolves once a reload waits for the file to settle. */
  settling(): Promise<void>;
  /** Ends that wait. */
  endSettle(): void;
}

async function startWatcher(policy: string, onReload?: (result: string) => void): Promise<HeldWatcher> {
  const temp = await createTempDir('authz-watcher-');
  defer(temp.remove);
  const policyFile = await writeTextFile(temp.dir, 'policy.yaml', policy);
  const sink = createLogSink();
  let entered!: () => void;
  const waiting = new Promise<void>((resolve) => (entered = resolve));
  let end!: () => void;
  const ended = new Promise<void>((resolve) => (end = resolve));
  const watcher = await PolicyWatcher.start({
    policyFile,
    logger: sink.logger,
    onPolicy: () => undefined,
    ...(onReload === undefined ? {} : { onReload }),
    settleWait: () => {
      entered();
      return ended;
    },
  });
  return {
    policyFile,
    watcher,
    reloads: () => sink.records().filter((line) => line['event'] === 'policy_reload'),
    settling: () => waiting,
    endSettle: end,
  };
}

/** Waits until `count` policy_reload lines have been logged; returns them. */
const reloadLines = (authz: VisibleServer, count: number) =>
  waitUntil(
    () => authz.reloads(),
    (lines) => lines.length >= count,
    { timeoutMs: DEADLINE_MS, what: `${count} policy_reload lines` },
  );

/** The issuer and the bank's routes, GET /balance needing `scopes`; `extra` lines are added at the top. */
const bank = (scopes: readonly string[], extra: readonly string[] = []) =>
  [...extra, policyText([{ jwksUri: jwks.url }], bankRoutes(scopes))].join('\n');
const loose = () => bank(['view:balance']);
const tightened = () => bank(['view:balance', 'audit:read']);

describe('every reload attempt ends in one policy_reload line', () => {
  it('restoring the version in force after a refused edit logs `restored`, and the file-in-force gauge goes 1, 0, 1', async () => {
    const authz = await start(loose());
    expect(await authz.metric('authz_policy_file_in_force')).toBe(1);

    await truncateAndWrite(authz.policyFile, 'routes: [');
    const [refused] = await reloadLines(authz, 1);
    expect(refused).toMatchObject({ result: 'error', code: 'ERR_POLICY_SYNTAX' });
    expect(await authz.metric('authz_policy_file_in_force')).toBe(0);

    await truncateAndWrite(authz.policyFile, loose());
    const lines = await reloadLines(authz, 2);
    expect(lines[1]).toMatchObject({ event: 'policy_reload', result: 'restored', level: 30 });
    expect(await authz.metric('authz_policy_file_in_force')).toBe(1);
    await delay(1500); // the poll sees the same content: nothing more
    expect(authz.reloads()).toHaveLength(2);
    expect(await authz.metric('authz_policy_reloads_total', { result: 'error' })).toBe(1);
    expect(await authz.metric('authz_policy_reloads_total', { result: 'ok' })).toBe(0);
  });

  it('a SIGHUP (reload) with the content in force logs `unchanged`, each time', async () => {
    const authz = await start(loose(), { watchPolicy: false });
    expect(await authz.server.reload()).toBe('unchanged');
    expect(await authz.server.reload()).toBe('unchanged');
    expect(authz.reloads()).toEqual([
      expect.objectContaining({ result: 'unchanged', trigger: 'signal' }),
      expect.objectContaining({ result: 'unchanged', trigger: 'signal' }),
    ]);
    expect(await authz.metric('authz_policy_reloads_total', { result: 'ok' })).toBe(0);
  });

  it('a SIGHUP while a file-event reload waits for the file to settle is answered by a line of its own', async () => {
    const watched = await startWatcher(loose());
    await truncateAndWrite(watched.policyFile, 'routes: [');
    const fileEvent = watched.watcher.reload('watch'); // what the watcher calls on a file event
    await watched.settling(); // it has read the file and waits before judging it
    const signal = watched.watcher.reload('signal');
    watched.endSettle();

    expect(await fileEvent).toBe('error');
    expect(await signal).toBe('error');
    expect(watched.reloads().map((line) => [line['result'], line['trigger']])).toEqual([
      ['error', 'watch'],
      ['error', 'signal'],
    ]);
  });

  it('a save in two steps (truncate, then the full text before the settle wait ends) is one `ok` reload, with no error counted', async () => {
    const results: string[] = [];
    const watched = await startWatcher(loose(), (result) => results.push(result));
    await writeFile(watched.policyFile, '');
    const fileEvent = watched.watcher.reload('watch');
    await watched.settling(); // the empty file would be refused: read again after the wait
    await writeFile(watched.policyFile, tightened());
    watched.endSettle();

    expect(await fileEvent).toBe('ok');
    expect(watched.reloads().map((entry) => entry['result'])).toEqual(['ok']);
    expect(results).toEqual(['ok']); // what the reload metrics count
  });

  it('deleting the file is one refusal; the file coming back is a reload', async () => {
    const authz = await start(loose());
    await rm(authz.policyFile);
    const [refused] = await reloadLines(authz, 1);
    expect(refused).toMatchObject({ result: 'error', code: 'ERR_POLICY_READ' });
    await delay(2000); // the poll keeps seeing a missing file
    expect(authz.reloads()).toHaveLength(1);
    expect(await authz.metric('authz_policy_reloads_total', { result: 'error' })).toBe(1);

    await writeFile(authz.policyFile, tightened());
    const lines = await reloadLines(authz, 2);
    expect(lines[1]).toMatchObject({ result: 'ok' });
    expect(await authz.metric('authz_policy_file_in_force')).toBe(1);
  });

  it('an applied reload says what changed: routes added, removed and changed, issuers changed', async () => {
    const authz = await start(loose(), { watchPolicy: false });
    const edited = policyText(
      [{ jwksUri: jwks.url, settings: { jwks_cache_ttl: '60s' } }],
      [
        '{ methods: [GET], path: /balance, scopes: [view:balance, audit:read] }',
        '{ path: /healthz, public: true }',
        '{ methods: [GET], path: /statements, scopes: [view:statements] }',
      ],
    );
    await saveByRename(authz.policyFile, edited);
    expect(await authz.server.reload()).toBe('ok');
    const line = authz.reloads().at(-1)!;
    expect(line['changes']).toEqual([
      'route added: GET /statements',
      'route removed: POST /transfer',
      'route changed: GET /balance',
      `issuer changed: ${ISSUER}`,
    ]);
    expect(line).toMatchObject({ result: 'ok', trigger: 'signal' });
    expect(line['previous']).not.toBe(line['policy_version']);
  });
});

describe('policy metrics from the start', () => {
  it('the last-success timestamp is set by the start-up load, not 0 until a reload', async () => {
    const before = Date.now() / 1000;
    const authz = await start(loose());
    const stamp = await authz.metric('authz_policy_last_reload_success_timestamp_seconds');
    expect(stamp).toBeGreaterThanOrEqual(Math.floor(before));
    expect(stamp).toBeLessThanOrEqual(Date.now() / 1000);
  });
});

describe('reload_guard', () => {
  const CATCH_ALL = '{ path: /**, public: true }';
  const withCatchAll = (extra: readonly string[] = []) =>
    [...extra, policyText([{ jwksUri: jwks.url }], [...bankRoutes(['view:balance']), CATCH_ALL])].join('\n');

  it('refuses a reload that adds a public catch-all (a new error-level finding) by default; the policy in force stays', async () => {
    const authz = await start(loose(), { watchPolicy: false });
    const findingLines = () => authz.sink.records().filter((entry) => entry['event'] === 'policy_finding');
    const atStart = findingLines().length;
    await saveByRename(authz.policyFile, withCatchAll());
    expect(await authz.server.reload()).toBe('error');
    const line = authz.reloads().at(-1)!;
    expect(line).toMatchObject({ result: 'error', code: 'ERR_POLICY_FINDINGS', level: 50 });
    expect((line['problems'] as string[]).join('\n')).toMatch(/reload_guard: error/);
    expect(await authz.metric('authz_policy_file_in_force')).toBe(0);
    expect(findingLines()).toHaveLength(atStart); // the refused version's findings are not logged as in force
  });

  it('applies it under `reload_guard: off`, and logs and counts its findings once', async () => {
    const authz = await start(bank(['view:balance'], ['reload_guard: off']), { watchPolicy: false });
    const atStart = authz.sink.records().filter((entry) => entry['event'] === 'policy_finding').length;
    await saveByRename(authz.policyFile, withCatchAll(['reload_guard: off']));
    expect(await authz.server.reload()).toBe('ok');
    const findings = authz.sink.records().filter((entry) => entry['event'] === 'policy_finding');
    const errors = findings.slice(atStart).filter((entry) => entry['finding_level'] === 'error');
    expect(errors.length).toBeGreaterThan(0);
    expect(errors[0]).toMatchObject({ level: 50, path: 'routes[3]' });
    expect(errors[0]!['file']).toBe(`${authz.policyFile}:13`);
    expect(await authz.metric('authz_policy_findings', { level: 'error' })).toBeGreaterThan(0);

    expect(await authz.server.reload()).toBe('unchanged'); // not logged again for the same version
    expect(authz.sink.records().filter((entry) => entry['event'] === 'policy_finding')).toHaveLength(
      findings.length,
    );
  });
});
