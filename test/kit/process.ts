import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, openSync, readdirSync, readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import * as path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';

/*
 * The one process runner of the test kit: every test project, the bench and the fault suite start Envoy,
 * `authz`, the bank or a tool through it. It keeps what a process printed (bounded), parses its JSON log
 * lines, waits for a line or a condition with the process's output in the error, measures the process from
 * /proc, pins it to a core, and kills every process it started when this one exits.
 */

/** Absolute path of the repository root. */
export const repoRoot: string = fileURLToPath(new URL('../../', import.meta.url));

/** How a process ended: `exit 1`, `SIGKILL`, `spawn failed: …`. */
export type ExitReason = string;

/** What a process printed when it ended. */
export interface Finished {
  /** Exit code; null when a signal ended it. */
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** One JSON log line (pino's, or any tool's that prints one object per line). */
export type LogLine = Record<string, unknown>;

export interface ProcessOptions {
  /** For error messages: `envoy`, `authz serve`, `bank`. */
  readonly name: string;
  readonly command: string;
  readonly args: readonly string[];
  readonly cwd?: string;
  /** The whole environment of the child (default: this process's). */
  readonly env?: NodeJS.ProcessEnv;
  /** Pin to this core with `taskset -c` (which execs the command, so the pid is the command's own). */
  readonly cpu?: number;
  /**
   * Append stdout and stderr to this file instead of reading them through pipes (the bench: nothing is read
   * while it measures). Log lines and output are then read from the file when asked.
   */
  readonly logFile?: string;
  /** How much of stdout and of stderr is kept, each (the newest part); default 4 MiB. */
  readonly keepBytes?: number;
  /**
   * How many parsed log lines are kept for {@link KitProcess.logLines} (the newest); default 100,000. With 0,
   * a line is parsed only while someone listens (`onLogLine`, a wait): a server logging a line per request
   * under load (the fault suite) then costs the process reading it, which also generates the load, nothing.
   */
  readonly keepLogLines?: number;
}

/** A process the kit started. */
export interface KitProcess {
  readonly name: string;
  readonly pid: number;
  /** stdout so far (its newest `keepBytes`). */
  stdout(): string;
  /** stderr so far (its newest `keepBytes`). */
  stderr(): string;
  /** stdout then stderr so far, for error messages. */
  output(): string;
  /** The last `length` characters of {@link output}. */
  outputTail(length?: number): string;
  /** Every complete JSON line printed on stdout so far (other lines are skipped). */
  logLines(): LogLine[];
  /** Calls `listener` with every JSON line printed on stdout from now on, until the returned function is called. */
  onLogLine(listener: (line: LogLine) => void): () => void;
  /**
   * Resolves with the first JSON line, already printed or printed later, that `match` accepts.
   * @throws Error with the output's tail when none comes within `timeoutMs` (default 30 s) or the process exits
   */
  logLine(match: (line: LogLine) => boolean, what: string, timeoutMs?: number): Promise<LogLine>;
  /**
   * Resolves with the first JSON line printed from now on that `match` accepts.
   * @throws Error with the output's tail when none comes within `timeoutMs` (default 10 s) or the process exits
   */
  nextLogLine(match: (line: LogLine) => boolean, what: string, timeoutMs?: number): Promise<LogLine>;
  /** How it ended; undefined while it runs. */
  exitReason(): ExitReason | undefined;
  /** Resolves once it has ended and its output is read. */
  readonly finished: Promise<Finished>;
  /** Resident set size now, in KiB (VmRSS in /proc/PID/status). */
  rssKib(): number;
  /** Open file descriptors now (entries of /proc/PID/fd). */
  openFds(): number;
  /** CPU time used so far by all its threads, user and system, in seconds (/proc/PID/stat). */
  cpuSeconds(): number;
  /** Sends a signal and returns at once (nothing when it has ended). */
  signal(signal: NodeJS.Signals): void;
  /**
   * Stops reading its stdout (piped output only): once the pipe and this side's buffer are full, its
   * writes wait, as under a log collector that stalls. {@link resumeStdout} reads on.
   */
  pauseStdout(): void;
  resumeStdout(): void;
  /** SIGTERM, then SIGKILL after `killAfterMs` (default 5 s); resolves once it has ended. Safe to call twice. */
  stop(killAfterMs?: number): Promise<Finished>;
}

const DEFAULT_KEEP_BYTES = 4 * 1024 * 1024; // 4 MiB
const DEFAULT_KEEP_LOG_LINES = 100_000;
const DEFAULT_KILL_AFTER_MS = 5_000;
const LOG_LINE_TIMEOUT_MS = 30_000; // a process that logs in a second on a quiet machine, on a loaded one
const NEXT_LINE_TIMEOUT_MS = 10_000;

const running = new Set<ChildProcess>();
let exitHookInstalled = false;

/** Kills what an interrupted run did not stop, so no process outlives the suite. */
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once('exit', killAllProcesses);
}

/** Kills every process the kit started that is still running (for afterAll, and on exit). */
export function killAllProcesses(): void {
  for (const child of running) child.kill('SIGKILL');
}

/** Bounded text: keeps the newest `limit` characters. */
class Tail {
  private text = '';
  constructor(private readonly limit: number) {}
  add(chunk: string): void {
    this.text += chunk;
    if (this.text.length > this.limit) {
      this.text = this.text.slice(-this.limit);
    }
  }
  get value(): string {
    return this.text;
  }
}

function parseLine(line: string): LogLine | undefined {
  if (!line.startsWith('{')) return undefined;
  try {
    const parsed: unknown = JSON.parse(line);
    return typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed)
      ? (parsed as LogLine)
      : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Every complete line of `text` (a process's stdout) as JSON; the last, unterminated, is left out (it may
 * be half written).
 * @throws Error naming the first line that is not a JSON object: a cut or merged line
 */
export function parseJsonLines(text: string): LogLine[] {
  const complete = text.split('\n');
  complete.pop();
  return complete
    .filter((line) => line !== '')
    .map((line) => {
      const parsed = parseLine(line);
      if (parsed === undefined) throw new Error(`not a JSON log line: ${line.slice(0, 500)}`);
      return parsed;
    });
}

let ticksPerSecond: number | undefined;
function clockTicksPerSecond(): number {
  ticksPerSecond ??= Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  return ticksPerSecond;
}

/** Starts `command args` and returns at once; see {@link KitProcess}. */
export function startProcess(options: ProcessOptions): KitProcess {
  const [command, args] =
    options.cpu === undefined
      ? [options.command, options.args]
      : ['taskset', ['-c', String(options.cpu), options.command, ...options.args]];
  installExitHook();
  const keep = options.keepBytes ?? DEFAULT_KEEP_BYTES;
  const stdout = new Tail(keep);
  const stderr = new Tail(keep);
  const keepLines = options.keepLogLines ?? DEFAULT_KEEP_LOG_LINES;
  const lines: LogLine[] = [];
  const listeners = new Set<(line: LogLine) => void>();
  let partial = '';

  let child: ChildProcess;
  if (options.logFile !== undefined) {
    const fd = openSync(options.logFile, 'a');
    child = spawn(command, args, { cwd: options.cwd, env: options.env, stdio: ['ignore', fd, fd] });
    closeSync(fd);
  } else {
    child = spawn(command, args, { cwd: options.cwd, env: options.env, stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
      stdout.add(chunk);
      if (keepLines === 0 && listeners.size === 0) {
        partial = '';
        return;
      }
      const complete = (partial + chunk).split('\n');
      partial = complete.pop() ?? '';
      if (partial.length > keep) partial = ''; // a line longer than what is kept is no log line
      for (const text of complete) {
        const line = parseLine(text);
        if (line === undefined) continue;
        if (keepLines > 0) {
          lines.push(line);
          if (lines.length > keepLines) lines.splice(0, lines.length - keepLines);
        }
        for (const listener of [...listeners]) listener(line);
      }
    });
    child.stderr!.setEncoding('utf8').on('data', (chunk: string) => stderr.add(chunk));
  }
  if (child.pid === undefined) throw new Error(`${options.name}: could not start ${options.command}`);
  const pid = child.pid;
  running.add(child);

  let exitReason: ExitReason | undefined;
  const fileText = () => (options.logFile === undefined ? '' : readFileSync(options.logFile, 'utf8'));
  const stdoutText = () => (options.logFile === undefined ? stdout.value : fileText());
  const finished = new Promise<Finished>((resolve) => {
    const end = (reason: ExitReason, code: number | null, signal: NodeJS.Signals | null) => {
      exitReason ??= reason;
      running.delete(child);
      resolve({ code, signal, stdout: stdoutText(), stderr: stderr.value });
    };
    child.once('close', (code, signal) => end(signal === null ? `exit ${code}` : signal, code, signal));
    child.once('error', (error) => end(`spawn failed: ${error.message}`, null, null));
  });

  const output = () => (options.logFile === undefined ? stdout.value + stderr.value : fileText());
  const outputTail = (length = 4_000) => output().slice(-length);
  const logLines = (): LogLine[] => {
    if (options.logFile === undefined) return [...lines];
    const all = fileText().split('\n');
    all.pop(); // only complete lines: the last may be half written
    return all.map(parseLine).filter((line): line is LogLine => line !== undefined);
  };
  const onLogLine = (listener: (line: LogLine) => void): (() => void) => {
    if (options.logFile !== undefined) throw new Error(`${options.name}: onLogLine needs piped output`);
    listeners.add(listener);
    return () => listeners.delete(listener);
  };
  const pipedStdout = () => {
    if (child.stdout === null) throw new Error(`${options.name}: its stdout goes to a file, not a pipe`);
    return child.stdout;
  };
  const failure = (problem: string, what: string) =>
    new Error(`${options.name}: ${problem} before ${what}:\n${outputTail()}`);

  /** Resolves with the first line `match` accepts: printed from now on, or also earlier unless `fromNow`. */
  const awaitLine = (
    match: (line: LogLine) => boolean,
    what: string,
    timeoutMs: number,
    fromNow: boolean,
  ): Promise<LogLine> => {
    if (options.logFile !== undefined) {
      const skip = fromNow ? logLines().length : 0;
      const probe = () => logLines().slice(skip).find(match);
      return waitFor(options.name, probe, what, timeoutMs, () => exitReason, outputTail);
    }
    if (!fromNow) {
      const seen = lines.find(match);
      if (seen !== undefined) return Promise.resolve(seen);
    }
    return new Promise((resolve, reject) => {
      let settled = false;
      const settle = (error: Error | undefined, line?: LogLine) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        unsubscribe();
        if (error === undefined) resolve(line!);
        else reject(error);
      };
      const unsubscribe = onLogLine((line) => {
        if (match(line)) settle(undefined, line);
      });
      const timer = setTimeout(() => settle(failure(`${timeoutMs} ms passed`, what)), timeoutMs);
      // A line printed just before the exit has been delivered by then: the pipe closes after it.
      void finished.then(() => settle(failure(`exited (${exitReason})`, what)));
    });
  };

  let stopping: Promise<Finished> | undefined;
  return {
    name: options.name,
    pid,
    stdout: stdoutText,
    stderr: () => stderr.value,
    output,
    outputTail,
    logLines,
    onLogLine,
    logLine: (match, what, timeoutMs = LOG_LINE_TIMEOUT_MS) => awaitLine(match, what, timeoutMs, false),
    nextLogLine: (match, what, timeoutMs = NEXT_LINE_TIMEOUT_MS) => awaitLine(match, what, timeoutMs, true),
    exitReason: () => exitReason,
    finished,
    rssKib: () => {
      const found = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
      if (found === null) throw new Error(`${options.name}: no VmRSS in /proc/${pid}/status`);
      return Number(found[1]);
    },
    openFds: () => readdirSync(`/proc/${pid}/fd`).length,
    cpuSeconds: () => {
      // After the command name (in parentheses, and it may hold spaces): utime and stime are fields 14
      // and 15 of the line, in clock ticks (proc(5)).
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      return (Number(fields[11]) + Number(fields[12])) / clockTicksPerSecond();
    },
    signal: (signal) => {
      if (exitReason === undefined) child.kill(signal);
    },
    pauseStdout: () => pipedStdout().pause(),
    resumeStdout: () => pipedStdout().resume(),
    stop: (killAfterMs = DEFAULT_KILL_AFTER_MS) =>
      (stopping ??= (async () => {
        if (exitReason === undefined) {
          child.kill('SIGTERM');
          const killer = setTimeout(() => child.kill('SIGKILL'), killAfterMs);
          const result = await finished;
          clearTimeout(killer);
          return result;
        }
        return finished;
      })()),
  };
}

/** Polls `probe` every 50 ms until it returns a value; fails when the process exits or time runs out. */
async function waitFor<T>(
  name: string,
  probe: () => T | undefined | Promise<T | undefined>,
  what: string,
  timeoutMs: number,
  exitReason: () => ExitReason | undefined,
  outputTail: () => string,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    const exit = exitReason();
    if (exit !== undefined) throw new Error(`${name} exited (${exit}) before ${what}:\n${outputTail()}`);
    if (Date.now() > deadline) {
      throw new Error(`${name}: no ${what} within ${timeoutMs / 1000} s:\n${outputTail()}`);
    }
    await delay(50);
  }
}

/**
 * Polls `ready` every 50 ms until it is true (a port answers, an admin endpoint says LIVE).
 * @throws Error with the process's output when it exits first or `timeoutMs` (default 20 s) passes
 */
export async function waitUntilReady(
  process: KitProcess,
  what: string,
  ready: () => boolean | Promise<boolean>,
  timeoutMs = 20_000,
): Promise<void> {
  await waitFor(
    process.name,
    async () => ((await ready()) ? true : undefined),
    what,
    timeoutMs,
    () => process.exitReason(),
    () => process.outputTail(),
  );
}

// ---- Cores ------------------------------------------------------------------------------------------

/** Which core the load generators use and which the measured servers use. */
export interface CpuPlan {
  /** This process, and the load generators it spawns (ghz, h2load). */
  readonly load: number;
  /** The servers under test: Envoy, authz, the bank. */
  readonly server: number;
}

let plan: CpuPlan | null | undefined;

/**
 * Load on CPU 0 and servers on CPU 1 when this process may use at least 2 cores and `taskset` exists;
 * undefined otherwise (everything shares the cores, and the figures say less).
 */
export function planCpus(): CpuPlan | undefined {
  if (plan === undefined) {
    plan = null;
    if (availableParallelism() >= 2) {
      try {
        execFileSync('taskset', ['--version'], { stdio: 'ignore' });
        plan = { load: 0, server: 1 };
      } catch {
        // no taskset: everything shares the cores
      }
    }
  }
  return plan ?? undefined;
}

/**
 * Pins every thread of this process to `cpu` (`taskset -a`): threads started later inherit it, and so do
 * the processes it spawns.
 */
export function pinThisProcess(cpu: number): void {
  execFileSync('taskset', ['-a', '-p', '-c', String(cpu), String(process.pid)], { stdio: 'ignore' });
}

// ---- The authz command line -----------------------------------------------------------------------

/** `authz` as built from all of src/ (`dist/`), and from the sidecar wing alone (`dist-sidecar/`). */
export const CLI_BUILDS = Object.freeze({
  full: path.join(repoRoot, 'dist', 'cli', 'main.js'),
  sidecar: path.join(repoRoot, 'dist-sidecar', 'cli', 'main.js'),
});

/** The message for a build that is not there: a failure, never a skip. */
export function missingBuild(entry: string): string {
  return `${entry} is missing: run "npm run build" first (npm test does so in pretest)`;
}

/**
 * Fails (never skips) when `entry` is not built.
 * @throws Error saying to run `npm run build`
 */
export function requireBuild(entry: string = CLI_BUILDS.full): void {
  if (!existsSync(entry)) throw new Error(missingBuild(entry));
}

/**
 * This process's environment without any AUTHZ_*, BANK_* or OTEL_* setting of the machine running the tests
 * (an OTEL_* variable there would turn tracing on in every server a test starts).
 */
export function cleanEnv(extra: Readonly<Record<string, string>> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(process.env)) {
    if (!/^(AUTHZ|BANK|OTEL)_/.test(name)) env[name] = value;
  }
  return { ...env, ...extra };
}

export interface CliOptions {
  /** Working directory (default: the repository root). */
  readonly cwd?: string;
  /** Variables added to the cleaned environment (see {@link cleanEnv}). */
  readonly env?: Readonly<Record<string, string>>;
  /** Which build to run (default: the full one). */
  readonly entry?: string;
  /** Node options before the script, e.g. `['--import', hook]`. */
  readonly nodeArgs?: readonly string[];
  /** Pin to this core. */
  readonly cpu?: number;
  /** Output to a file instead of pipes (see {@link ProcessOptions.logFile}). */
  readonly logFile?: string;
  /** How much of stdout and of stderr is kept (see {@link ProcessOptions.keepBytes}). */
  readonly keepBytes?: number;
  /** How many parsed log lines are kept (see {@link ProcessOptions.keepLogLines}). */
  readonly keepLogLines?: number;
  /** Name in error messages (default: `authz ARGS[0]`). */
  readonly name?: string;
}

/** Starts `node [nodeArgs] ENTRY ARGS`, the built `authz`, with a cleaned environment; returns at once. */
export function startCli(args: readonly string[], options: CliOptions = {}): KitProcess {
  const entry = options.entry ?? CLI_BUILDS.full;
  requireBuild(entry);
  return startProcess({
    name: options.name ?? `authz ${args[0] ?? ''}`.trim(),
    command: process.execPath,
    args: [...(options.nodeArgs ?? []), entry, ...args],
    cwd: options.cwd ?? repoRoot,
    env: cleanEnv(options.env),
    ...(options.cpu === undefined ? {} : { cpu: options.cpu }),
    ...(options.logFile === undefined ? {} : { logFile: options.logFile }),
    ...(options.keepBytes === undefined ? {} : { keepBytes: options.keepBytes }),
    ...(options.keepLogLines === undefined ? {} : { keepLogLines: options.keepLogLines }),
  });
}

/**
 * Runs an `authz` command that ends by itself and resolves with what it printed (killed after 30 s: a
 * guard, on a loaded machine).
 */
export async function runCli(args: readonly string[], options: CliOptions = {}): Promise<Finished> {
  const run = startCli(args, options);
  const guard = setTimeout(() => run.signal('SIGKILL'), 30_000);
  const result = await run.finished;
  clearTimeout(guard);
  return result;
}

/** The `started` log line of a long-running command (`serve`, `bank`, `dev-idp`). */
export function startedLine(run: KitProcess, timeoutMs?: number): Promise<LogLine> {
  return run.logLine((line) => line['event'] === 'started', 'the "started" log line', timeoutMs);
}

/**
 * Starts a long-running `authz` command and waits for its `started` line.
 * @throws Error with its output when it exits first or does not start within 30 s (it is stopped)
 */
export async function startCliAndWait(
  args: readonly string[],
  options: CliOptions = {},
): Promise<{ process: KitProcess; started: LogLine }> {
  const run = startCli(args, options);
  try {
    return { process: run, started: await startedLine(run) };
  } catch (error) {
    await run.stop(1_000);
    throw error;
  }
}
