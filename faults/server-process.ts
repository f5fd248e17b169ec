import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { setTimeout as delay } from 'node:timers/promises';

/** A server the fault suite started: Envoy, `authz serve` or `authz bank`. */
export interface ServerProcess {
  readonly name: string;
  readonly pid: number;
  /** Whether it has exited, and how (`exit 1`, `SIGKILL`); undefined while it runs. */
  exitReason(): string | undefined;
  /** The last 64 KiB of its output (stdout and stderr). */
  output(): string;
  /**
   * Calls `listener` with every JSON log line printed from now on (pino's lines, one object each), until
   * the returned function is called.
   */
  onLogLine(listener: (entry: Record<string, unknown>) => void): () => void;
  /**
   * Resolves with the first log line from now on that `match` accepts.
   * @throws Error with the output's tail when none comes within `timeoutMs` or the process exits
   */
  nextLogLine(
    match: (entry: Record<string, unknown>) => boolean,
    what: string,
    timeoutMs?: number,
  ): Promise<Record<string, unknown>>;
  /** Resident set size now, in KiB (VmRSS in /proc/PID/status). */
  rssKib(): number;
  /** Open file descriptors now (entries of /proc/PID/fd). */
  openFds(): number;
  /** Sends a signal (SIGHUP, SIGKILL) and returns at once. */
  signal(signal: NodeJS.Signals): void;
  /** Resolves once it has exited and its output is read. */
  closed(): Promise<void>;
  /** SIGTERM, then SIGKILL after 5 s; resolves once it has exited. Safe to call more than once. */
  stop(): Promise<void>;
}

const OUTPUT_LIMIT = 64 * 1024; // 64 KiB
const KILL_AFTER_MS = 5_000; // 5 seconds

const running = new Set<ChildProcess>();
let exitHookInstalled = false;

/** Kills servers an interrupted run did not stop, so none outlives the suite. */
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once('exit', () => {
    for (const child of running) child.kill('SIGKILL');
  });
}

let plannedServerCpu: number | null | undefined;

/**
 * The core the servers run on, as the bench does it (bench/bench-process.ts): CPU 1 when this process may
 * use at least 2 cores and `taskset` exists, so the traffic generator and the JWKS server (this process)
 * do not take turns with Envoy, authz and the bank; undefined otherwise.
 */
export function serverCpu(): number | undefined {
  if (plannedServerCpu === undefined) {
    plannedServerCpu = null;
    if (availableParallelism() >= 2) {
      try {
        execFileSync('taskset', ['--version'], { stdio: 'ignore' });
        plannedServerCpu = 1;
      } catch {
        // no taskset: everything shares the cores
      }
    }
  }
  return plannedServerCpu ?? undefined;
}

/**
 * Starts `command args`, pinned to {@link serverCpu} with `taskset -c` (which execs the command, so the
 * pid is the server's own, for /proc and `kill -9`). Output is read as it comes, so a server logging a
 * line per request never blocks on a full pipe.
 */
export function startServerProcess(options: {
  name: string;
  command: string;
  args: readonly string[];
  cwd?: string;
}): ServerProcess {
  const cpu = serverCpu();
  const [command, args] =
    cpu === undefined
      ? [options.command, options.args]
      : ['taskset', ['-c', String(cpu), options.command, ...options.args]];
  installExitHook();
  const child = spawn(command, args, { cwd: options.cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  if (child.pid === undefined) throw new Error(`${options.name}: could not start ${options.command}`);
  const pid = child.pid;
  running.add(child);

  let tail = '';
  let partial = '';
  const listeners = new Set<(entry: Record<string, unknown>) => void>();
  const collect = (chunk: string): void => {
    tail += chunk;
    if (tail.length > OUTPUT_LIMIT) tail = tail.slice(-OUTPUT_LIMIT);
    if (listeners.size === 0) {
      partial = '';
      return;
    }
    const lines = (partial + chunk).split('\n');
    partial = lines.pop() ?? '';
    for (const line of lines) {
      if (!line.startsWith('{')) continue;
      let entry: Record<string, unknown>;
      try {
        entry = JSON.parse(line) as Record<string, unknown>;
      } catch {
        continue;
      }
      for (const listener of [...listeners]) listener(entry);
    }
  };
  child.stdout!.setEncoding('utf8').on('data', collect);
  child.stderr!.setEncoding('utf8').on('data', collect);

  let exitReason: string | undefined;
  const closed = new Promise<void>((resolve) => {
    child.once('close', (code, signal) => {
      exitReason ??= signal === null ? `exit ${code}` : signal;
      running.delete(child);
      resolve();
    });
    child.once('error', (error) => {
      exitReason ??= `spawn failed: ${error.message}`;
      running.delete(child);
      resolve();
    });
  });

  const onLogLine = (listener: (entry: Record<string, unknown>) => void): (() => void) => {
    listeners.add(listener);
    return () => listeners.delete(listener);
  };

  let stopping: Promise<void> | undefined;
  return {
    name: options.name,
    pid,
    exitReason: () => exitReason,
    output: () => tail,
    onLogLine,
    nextLogLine: (match, what, timeoutMs = 10_000) =>
      new Promise((resolve, reject) => {
        const finish = (error: Error | undefined, entry?: Record<string, unknown>) => {
          clearTimeout(timer);
          clearInterval(exitWatch);
          unsubscribe();
          if (error === undefined) resolve(entry!);
          else reject(error);
        };
        const failure = (problem: string) =>
          new Error(`${options.name}: ${problem} before ${what}:\n${tail.slice(-4_000)}`);
        const unsubscribe = onLogLine((entry) => {
          if (match(entry)) finish(undefined, entry);
        });
        const timer = setTimeout(() => finish(failure(`${timeoutMs} ms passed`)), timeoutMs);
        const exitWatch = setInterval(() => {
          if (exitReason !== undefined) finish(failure(`exited (${exitReason})`));
        }, 50);
      }),
    rssKib: () => {
      const match = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
      if (match === null) throw new Error(`${options.name}: no VmRSS in /proc/${pid}/status`);
      return Number(match[1]);
    },
    openFds: () => readdirSync(`/proc/${pid}/fd`).length,
    signal: (signal) => {
      if (exitReason === undefined) child.kill(signal);
    },
    closed: () => closed,
    stop: () =>
      (stopping ??= (async () => {
        if (exitReason !== undefined) return;
        child.kill('SIGTERM');
        const killer = setTimeout(() => child.kill('SIGKILL'), KILL_AFTER_MS);
        await closed;
        clearTimeout(killer);
      })()),
  };
}

/**
 * Polls `ready` every 50 ms until it is true.
 * @throws Error with the process's output when it exits first or `timeoutMs` passes
 */
export async function waitUntilReady(
  server: ServerProcess,
  what: string,
  ready: () => boolean | Promise<boolean>,
  timeoutMs = 20_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await ready())) {
    const exit = server.exitReason();
    if (exit !== undefined)
      throw new Error(`${server.name} exited (${exit}) before ${what}:\n${server.output()}`);
    if (Date.now() > deadline) {
      throw new Error(`${server.name}: no ${what} within ${timeoutMs / 1000} s:\n${server.output()}`);
    }
    await delay(50);
  }
}
