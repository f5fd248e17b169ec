import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { setTimeout as delay } from 'node:timers/promises';

/** Which core the load generators use and which the measured servers use. */
export interface CpuPlan {
  /** The bench itself, ghz and h2load. */
  readonly load: number;
  /** The server under test (and, through Envoy, Envoy, authz and the bank together). */
  readonly server: number;
}

function hasTaskset(): boolean {
  try {
    execFileSync('taskset', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/**
 * Load on CPU 0 and servers on CPU 1 when this process may use at least 2 cores and `taskset` exists;
 * undefined otherwise (everything shares the cores, and the figures say less).
 */
export function planCpus(): CpuPlan | undefined {
  return availableParallelism() >= 2 && hasTaskset() ? { load: 0, server: 1 } : undefined;
}

/**
 * Pins every thread of this process to `cpu` (`taskset -a`): threads started later inherit it, and so do
 * the load generators it spawns.
 */
export function pinThisProcess(cpu: number): void {
  execFileSync('taskset', ['-a', '-p', '-c', String(cpu), String(process.pid)], { stdio: 'ignore' });
}

/** A child process of the bench whose output goes to a file. */
export interface BenchProcess {
  readonly name: string;
  readonly pid: number;
  /** Everything it printed so far. */
  output(): string;
  /** Whether it has exited. */
  exited(): boolean;
  /** Resident set size now, in MiB (VmRSS in /proc/PID/status). */
  rssMegabytes(): number;
  /** CPU time used so far by all its threads, user and system, in seconds (/proc/PID/stat). */
  cpuSeconds(): number;
  /** SIGTERM, then SIGKILL after 5 s. */
  stop(): Promise<void>;
}

let ticksPerSecond: number | undefined;
function clockTicksPerSecond(): number {
  ticksPerSecond ??= Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  return ticksPerSecond;
}

const running = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});

/**
 * Starts `command args` with stdout and stderr appended to `logFile` (a file rather than a pipe, so the
 * bench reads nothing while it measures), pinned to `cpu` with `taskset -c` when given. taskset execs the
 * command, so the pid is the command's own.
 */
export function startProcess(options: {
  name: string;
  command: string;
  args: readonly string[];
  logFile: string;
  cpu: number | undefined;
  cwd?: string;
}): BenchProcess {
  const fd = openSync(options.logFile, 'a');
  const [command, args] =
    options.cpu === undefined
      ? [options.command, options.args]
      : ['taskset', ['-c', String(options.cpu), options.command, ...options.args]];
  const child = spawn(command, args, { cwd: options.cwd, stdio: ['ignore', fd, fd] });
  closeSync(fd);
  running.add(child);
  let exited = false;
  const closed = new Promise<void>((resolve) =>
    child.once('exit', () => {
      exited = true;
      running.delete(child);
      resolve();
    }),
  );
  if (child.pid === undefined) throw new Error(`${options.name}: could not start ${options.command}`);
  const pid = child.pid;
  return {
    name: options.name,
    pid,
    output: () => readFileSync(options.logFile, 'utf8'),
    exited: () => exited,
    rssMegabytes: () => {
      const match = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
      if (match === null) throw new Error(`${options.name}: no VmRSS in /proc/${pid}/status`);
      return Number(match[1]) / 1024;
    },
    cpuSeconds: () => {
      // Fields after the command name (which is in parentheses and may hold spaces): utime and stime are
      // fields 14 and 15 of the line, in clock ticks.
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      return (Number(fields[11]) + Number(fields[12])) / clockTicksPerSecond();
    },
    stop: async () => {
      if (exited) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
      await closed;
      clearTimeout(timer);
    },
  };
}

/** The last `length` characters of a process's output, for error messages. */
export function outputTail(child: BenchProcess, length = 4_000): string {
  return child.output().slice(-length);
}

/**
 * Polls `ready` every 50 ms until it is true.
 * @throws Error with the process's output when it exits first or `timeoutMs` passes.
 */
export async function waitUntilReady(
  child: BenchProcess,
  what: string,
  ready: () => boolean | Promise<boolean>,
  timeoutMs = 20_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await ready())) {
    if (child.exited()) throw new Error(`${child.name} exited before ${what}:\n${outputTail(child)}`);
    if (Date.now() > deadline) {
      await child.stop();
      throw new Error(`${child.name}: no ${what} within ${timeoutMs / 1000} s:\n${outputTail(child)}`);
    }
    await delay(50);
  }
}

/** The first `"event":"started"` JSON line a process printed (pino's, or the limit server's). */
export function startedLine(child: BenchProcess): Record<string, unknown> | undefined {
  for (const line of child.output().split('\n')) {
    if (!line.startsWith('{') || !line.includes('"started"')) continue;
    const parsed = JSON.parse(line) as Record<string, unknown>;
    if (parsed['event'] === 'started') return parsed;
  }
  return undefined;
}
