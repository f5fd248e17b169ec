import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import * as path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { repoRoot } from './envoy-binary.js';

/** The built CLI; `npm test` builds it first (pretest). */
export const cliPath: string = path.join(repoRoot, 'dist', 'cli', 'main.js');

/** A running `authz` subcommand. */
export interface RunningCli {
  /** Everything it printed so far (stdout and stderr, last 1 MiB). */
  output(): string;
  /** Parsed JSON log lines printed so far. */
  logLines(): Record<string, unknown>[];
  /** Whether the process has exited, and how. */
  exitCode(): number | null | undefined;
  /** SIGTERM, then SIGKILL after 5 s; resolves with the exit code (null when killed by a signal). */
  stop(): Promise<number | null>;
}

const OUTPUT_LIMIT = 1024 * 1024;
const children = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of children) child.kill('SIGKILL');
});

/**
 * Starts `node dist/cli/main.js ARGS` and waits until it logs its `started` line.
 * @throws Error with the process output if it exits or does not start within 30 s (a guard for a loaded machine).
 */
export async function startCli(
  args: readonly string[],
  env: Record<string, string> = {},
): Promise<RunningCli> {
  if (!existsSync(cliPath)) throw new Error(`${cliPath} is missing: run "npm run build" first`);
  const child = spawn(process.execPath, [cliPath, ...args], {
    cwd: repoRoot,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.add(child);
  let text = '';
  const collect = (chunk: string) => {
    text += chunk;
    if (text.length > OUTPUT_LIMIT) text = text.slice(-OUTPUT_LIMIT);
  };
  child.stdout!.setEncoding('utf8').on('data', collect);
  child.stderr!.setEncoding('utf8').on('data', collect);
  let code: number | null | undefined;
  const closed = new Promise<number | null>((resolve) =>
    child.once('close', (exit) => {
      code = exit;
      children.delete(child);
      resolve(exit);
    }),
  );

  const logLines = () =>
    text
      .split('\n')
      .slice(0, -1) // only complete lines: the pipe may hand over half a line at a time
      .filter((line) => line.startsWith('{'))
      .map((line) => JSON.parse(line) as Record<string, unknown>);

  const deadline = Date.now() + 30_000;
  while (!logLines().some((line) => line['event'] === 'started')) {
    if (code !== undefined) throw new Error(`authz ${args[0]} exited (${code}):\n${text}`);
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`authz ${args[0]} did not start within 30 s:\n${text}`);
    }
    await delay(50);
  }

  return {
    output: () => text,
    logLines,
    exitCode: () => code,
    stop: async () => {
      if (code !== undefined) return code;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
      const exit = await closed;
      clearTimeout(timer);
      return exit;
    },
  };
}
