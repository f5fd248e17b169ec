import { mkdir } from 'node:fs/promises';
import * as path from 'node:path';
import { policyYaml, writeTextFile } from './authz-harness.js';
import { startCliAndWait, type CliOptions, type KitProcess, type LogLine } from './process.js';
import { generateTestKey, type TestKey } from './tokens.js';

/*
 * The built `authz serve` as the integration tests run it: on the shared test policy, trusting a key of
 * their own from a JWKS file, listening on a port the system picks.
 */

/** A test key, its JWKS file and the shared test policy trusting it, written in one folder. */
export interface KeyAndPolicy {
  readonly key: TestKey;
  readonly jwksFile: string;
  readonly policyFile: string;
}

/** Writes `jwks.json` (a fresh key named `keyName`) and `policy.yaml` (the test policy trusting it) in `dir`. */
export async function writeKeyAndPolicy(dir: string, keyName: string): Promise<KeyAndPolicy> {
  const key = await generateTestKey(keyName);
  const jwksFile = await writeTextFile(dir, 'jwks.json', JSON.stringify({ keys: [key.publicJwk] }));
  const policyFile = await writeTextFile(dir, 'policy.yaml', policyYaml({ keys: { jwksFile } }));
  return { key, jwksFile, policyFile };
}

/** A running `authz serve`, as its `started` line describes it. */
export interface ServeProcess {
  readonly process: KitProcess;
  readonly started: LogLine;
  /** The port it listens on (`--listen 127.0.0.1:0`: the system picked it). */
  readonly port: number;
}

/**
 * Starts the built `authz serve --policy POLICY --listen 127.0.0.1:0 ARGS` and waits for its `started` line.
 * @throws Error with its output when it exits first or does not start (it is stopped)
 */
export async function startServe(
  policyFile: string,
  args: readonly string[],
  options: CliOptions,
): Promise<ServeProcess> {
  const { process, started } = await startCliAndWait(
    ['serve', '--policy', policyFile, '--listen', '127.0.0.1:0', ...args],
    options,
  );
  return { process, started, port: started['port'] as number };
}

let runs = 0;

/**
 * {@link startServe} in a new folder `run-N` under `parent`, its working directory (where relative paths
 * and files it writes go); `policy` names its policy file, written in that folder or anywhere else.
 */
export async function startServeInNewDir(
  parent: string,
  policy: (dir: string) => Promise<string> | string,
  args: readonly string[] = [],
): Promise<ServeProcess & { readonly dir: string; readonly policyFile: string }> {
  const dir = path.join(parent, `run-${++runs}`);
  await mkdir(dir);
  const policyFile = await policy(dir);
  return { ...(await startServe(policyFile, args, { cwd: dir })), dir, policyFile };
}

/** The `/metrics` address of a serve started with `--metrics-listen 127.0.0.1:0`, from its metrics_started line. */
export async function metricsUrlOf(run: KitProcess): Promise<string> {
  const line = await run.logLine(
    (logged) => logged['event'] === 'metrics_started',
    'the metrics_started line',
    10_000,
  );
  return `http://127.0.0.1:${String(line['port'])}/metrics`;
}

/** The value of an unlabelled sample on a `/metrics` page, as a scrape reads it (NaN when there is none). */
export async function scrapeMetric(metricsUrl: string, name: string): Promise<number> {
  const text = await (await fetch(metricsUrl)).text();
  return Number(new RegExp(`^${name} (\\d+)$`, 'm').exec(text)?.[1]);
}
