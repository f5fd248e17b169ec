import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { availableParallelism, cpus as cpuList, loadavg } from 'node:os';
import * as path from 'node:path';
import { envoyBinary } from '../test/kit/envoy.js';
import { repoRoot, type CpuPlan } from '../test/kit/process.js';

/** The load generators and the proxy. */
export interface Tools {
  readonly ghz: string;
  readonly h2load: string;
  readonly envoy: string;
}

/** What every part of the bench shares: where things are, which cores, and where to report. */
export interface BenchContext {
  readonly tools: Tools;
  /** Cores for load and servers; undefined when not pinned. */
  readonly cpus: CpuPlan | undefined;
  /** The checkout whose built `dist/` is measured. */
  readonly target: string;
  /** `TARGET/dist/cli/main.js`. */
  readonly cli: string;
  /** A temporary folder for data files, logs and reports, removed at the end. */
  readonly dir: string;
  /** A fresh log file path in `dir` for a process called `name`. */
  logFile(name: string): string;
  /** Prints a progress line (stderr; the table goes to stdout). */
  progress(message: string): void;
  /** Adds a line to the notes printed under the table. */
  note(message: string): void;
  /** Runs `stop` when the bench ends, however it ends (last registered, first run). */
  onCleanup(stop: () => Promise<unknown>): void;
}

function commandOutput(command: string, args: readonly string[], cwd?: string): string {
  return execFileSync(command, args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();
}

/** The first line a tool prints for `--version`, wherever it prints it (ghz writes it to stderr). */
function toolVersion(command: string): string {
  const { stdout, stderr } = spawnSync(command, ['--version'], { encoding: 'utf8' });
  return `${stdout}${stderr}`.trim().split('\n')[0] ?? '?';
}

/**
 * ghz, h2load and Envoy: GHZ_BIN, H2LOAD_BIN and ENVOY_BIN, else where scripts/install-*.sh put them.
 * @throws Error naming the script that installs a missing tool
 */
export function findTools(): Tools {
  const ghz = process.env['GHZ_BIN'] ?? path.join(repoRoot, '.tools', 'bin', 'ghz');
  if (!existsSync(ghz)) throw new Error(`ghz is not installed (${ghz}): run scripts/install-ghz.sh`);
  let h2load = process.env['H2LOAD_BIN'];
  if (h2load === undefined) {
    try {
      h2load = commandOutput('sh', ['-c', 'command -v h2load']);
    } catch {
      throw new Error('h2load is not on PATH: run scripts/install-h2load.sh');
    }
  }
  return { ghz, h2load, envoy: envoyBinary() };
}

/** The measured build, the machine and the tools, as Markdown list items for the report's heading. */
export function describeRun(target: string, tools: Tools, cpus: CpuPlan | undefined): string[] {
  const model =
    /^model name\s*:\s*(.+)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1] ?? cpuList()[0]?.model;
  const envoyVersion = /\/(\d+\.\d+\.\d+)\//.exec(commandOutput(tools.envoy, ['--version']))?.[1] ?? '?';
  let commit = 'not a git checkout';
  try {
    const head = commandOutput('git', ['rev-parse', '--short', 'HEAD'], target);
    const dirty = commandOutput('git', ['status', '--porcelain', '--untracked-files=no'], target) !== '';
    commit = `${head}${dirty ? ' plus uncommitted changes' : ''}`;
  } catch {
    // not a git checkout: say so
  }
  return [
    `- measured: ${target} (${commit}), its built dist/`,
    `- machine: ${availableParallelism()} cores, ${model ?? 'unknown CPU'}; ` +
      (cpus === undefined
        ? 'NOT pinned (fewer than 2 cores or no taskset): load and servers share the cores'
        : `load generators pinned to CPU ${cpus.load}, servers to CPU ${cpus.server} (taskset)`),
    `- load average as the bench started: ${loadavg()
      .map((value) => value.toFixed(2))
      .join(', ')} (other work on the machine shows as noise)`,
    `- Node ${process.version}, Envoy ${envoyVersion}, ghz ${toolVersion(tools.ghz)}, ` +
      toolVersion(tools.h2load),
  ];
}
