import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { waitUntil } from './wait-until.js';

/*
 * The built command line in a child process, as a user or a container runs it. `npm run build` makes both
 * builds (`npm test` runs it in pretest); a missing build is a failure with a clear message, never a skip.
 */

export const repoRoot = fileURLToPath(new URL('../../', import.meta.url));

/** `authz` as built from all of src/ (`dist/`), and from the sidecar wing alone (`dist-sidecar/`). */
export const CLI_BUILDS = Object.freeze({
  full: path.join(repoRoot, 'dist', 'cli', 'main.js'),
  sidecar: path.join(repoRoot, 'dist-sidecar', 'cli', 'main.js'),
});

/** The message for a build that is not there. */
export function missingBuild(entry: string): string {
  return `${entry} is missing: run "npm run build" first (npm test does so in pretest)`;
}

export interface CliOptions {
  /** Working directory. */
  readonly cwd: string;
  /** Variables added to the cleaned environment (see cleanEnv). */
  readonly env?: Readonly<Record<string, string>>;
  /** Which build to run; default the full one. */
  readonly entry?: string;
  /** Node options before the script, e.g. `['--import', hook]`. */
  readonly nodeArgs?: readonly string[];
}

export interface Finished {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** A CLI child process, its output so far, and its end. */
export interface CliChild {
  readonly child: ChildProcess;
  readonly finished: Promise<Finished>;
  stdout(): string;
  stderr(): string;
  /** The complete JSON lines of stdout so far (the pipe may hand over half a line at a time). */
  logLines(): Record<string, unknown>[];
}

const children = new Set<ChildProcess>();

/** The environment without any AUTHZ_* / BANK_* setting of the machine running the tests. */
export function cleanEnv(extra: Readonly<Record<string, string>> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(process.env)) {
    if (!name.startsWith('AUTHZ_') && !name.startsWith('BANK_')) env[name] = value;
  }
  return { ...env, ...extra };
}

/** Starts `node [nodeArgs] ENTRY ARGS`. */
export function startCli(args: readonly string[], options: CliOptions): CliChild {
  const entry = options.entry ?? CLI_BUILDS.full;
  if (!existsSync(entry)) throw new Error(missingBuild(entry));
  const child = spawn(process.execPath, [...(options.nodeArgs ?? []), entry, ...args], {
    cwd: options.cwd,
    env: cleanEnv(options.env),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.add(child);
  let stdout = '';
  let stderr = '';
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const finished = new Promise<Finished>((resolve) =>
    child.once('close', (code) => {
      children.delete(child);
      resolve({ code, stdout, stderr });
    }),
  );
  return {
    child,
    finished,
    stdout: () => stdout,
    stderr: () => stderr,
    logLines: () =>
      stdout
        .split('\n')
        .slice(0, -1)
        .filter((line) => line !== '')
        .map((line) => JSON.parse(line) as Record<string, unknown>),
  };
}

/** Runs a command that is expected to end by itself (killed after 30 s: a guard, on a loaded machine). */
export async function runCli(args: readonly string[], options: CliOptions): Promise<Finished> {
  const run = startCli(args, options);
  const timer = setTimeout(() => run.child.kill('SIGKILL'), 30_000);
  const result = await run.finished;
  clearTimeout(timer);
  return result;
}

/**
 * Waits for a long-running command's `started` log line and returns it.
 * @throws Error with the output when the process exits first or does not start within 30 s (a process
 *   that starts in a second on a quiet machine, and several of them under --workers, on a loaded one).
 */
export async function waitForStarted(run: CliChild): Promise<Record<string, unknown>> {
  let exited: Finished | undefined;
  void run.finished.then((result) => (exited = result));
  const lines = await waitUntil(
    () => {
      if (exited !== undefined) {
        throw new Error(`the command exited (${exited.code}):\n${exited.stdout}${exited.stderr}`);
      }
      return run.logLines();
    },
    (seen) => seen.some((line) => line['event'] === 'started'),
    { timeoutMs: 30_000, intervalMs: 25, what: 'the "started" log line' },
  );
  return lines.find((line) => line['event'] === 'started')!;
}

/** SIGTERM, then SIGKILL after 12 s; resolves when the process has ended. */
export async function stopCli(run: CliChild): Promise<Finished> {
  run.child.kill('SIGTERM');
  const killer = setTimeout(() => run.child.kill('SIGKILL'), 12_000);
  const result = await run.finished;
  clearTimeout(killer);
  return result;
}

/** Kills every child still running (for afterAll). */
export function killAllClis(): void {
  for (const child of children) child.kill('SIGKILL');
}
