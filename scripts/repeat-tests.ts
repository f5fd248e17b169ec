/*
 * The flake hunt: runs the test suite N times, optionally while busy loops hold every core, and prints per
 * test how many runs it failed and its first error (docs/testing.md, "Hunting flaky tests").
 *
 *   npm run test:repeat -- [--runs N] [--load] [--loops N] [--nice N] [--clone] [--project NAME]...
 *
 * In place (the default), it builds and installs once (`npm run pretest`), then runs `vitest run` N times
 * in this checkout, uncommitted changes included. With --clone, each run is CI's own: a fresh clone of HEAD
 * (committed work only) running `.ci/run`, install included. Each run's vitest JSON report and output are
 * kept in test-results/repeat/. Exit 0 only when every run passed.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile, copyFile } from 'node:fs/promises';
import { availableParallelism, setPriority, tmpdir } from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const repoRoot = fileURLToPath(new URL('../', import.meta.url));
const outDir = path.join(repoRoot, 'test-results', 'repeat');

const USAGE = `usage: npm run test:repeat -- [--runs N] [--load] [--loops N] [--nice N] [--clone] [--project NAME]...
  --runs N        how many runs (default 8)
  --load          busy loops hold every core during each run
  --loops N       how many busy loops with --load (default 3 per core)
  --nice N        the loops' niceness, 0..19 (default 5): lower than the suite's, so it still gets a share
  --clone         each run in a fresh clone of HEAD, through .ci/run (committed work only)
  --project NAME  only this vitest project (repeatable; not with --clone)`;

interface Options {
  readonly runs: number;
  readonly load: boolean;
  readonly loops: number;
  readonly nice: number;
  readonly clone: boolean;
  readonly projects: readonly string[];
}

/** Reads the command line; exits 2 with the usage on anything it does not understand. */
function readOptions(argv: readonly string[]): Options {
  const fail = (message: string): never => {
    console.error(`test:repeat: ${message}\n${USAGE}`);
    process.exit(2);
  };
  let values;
  try {
    ({ values } = parseArgs({
      args: [...argv],
      options: {
        runs: { type: 'string', default: '8' },
        load: { type: 'boolean', default: false },
        loops: { type: 'string' },
        nice: { type: 'string', default: '5' },
        clone: { type: 'boolean', default: false },
        project: { type: 'string', multiple: true, default: [] },
        help: { type: 'boolean', default: false },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (error) {
    return fail((error as Error).message);
  }
  if (values.help) {
    console.log(USAGE);
    process.exit(0);
  }
  const integer = (name: string, text: string, low: number, high: number) => {
    const value = /^\d+$/.test(text) ? Number(text) : NaN;
    return value >= low && value <= high
      ? value
      : fail(`--${name}: "${text}" is not a number from ${low} to ${high}`);
  };
  const cores = availableParallelism();
  if (values.clone && values.project.length > 0)
    fail('--project runs in place only: .ci/run runs every project');
  if (values.loops !== undefined && !values.load) fail('--loops needs --load');
  return {
    runs: integer('runs', values.runs, 1, 100),
    load: values.load,
    loops: values.loops === undefined ? 3 * cores : integer('loops', values.loops, 1, 64),
    nice: integer('nice', values.nice, 0, 19),
    clone: values.clone,
    projects: values.project,
  };
}

/** What vitest's JSON reporter writes (the fields read here). */
interface VitestReport {
  readonly numPassedTests: number;
  readonly numFailedTests: number;
  readonly numPendingTests: number;
  readonly numTodoTests: number;
  readonly testResults: readonly {
    readonly name: string;
    readonly status: string;
    readonly message?: string;
    readonly assertionResults: readonly {
      readonly fullName: string;
      readonly status: string;
      readonly failureMessages?: readonly string[];
    }[];
  }[];
}

/** One failure of one test (or of a whole file, when a hook or the file itself failed). */
interface Failure {
  readonly file: string;
  readonly test: string;
  readonly error: string;
}

interface RunResult {
  readonly run: number;
  readonly seconds: number;
  readonly exitCode: number | null;
  /** Undefined when the run wrote no report (it ended before vitest did: install, build, lint). */
  readonly report: VitestReport | undefined;
  readonly failures: readonly Failure[];
}

/** The failures a report holds: every failed test, and every file that failed outside its tests. */
function failuresOf(report: VitestReport): Failure[] {
  const failures: Failure[] = [];
  for (const file of report.testResults) {
    const name = path.relative(repoRoot, file.name);
    const failedTests = file.assertionResults.filter((test) => test.status === 'failed');
    for (const test of failedTests) {
      failures.push({ file: name, test: test.fullName, error: firstLine(test.failureMessages?.[0] ?? '') });
    }
    if (file.status === 'failed' && failedTests.length === 0) {
      failures.push({
        file: name,
        test: '(the file: a hook, or an error outside tests)',
        error: firstLine(file.message ?? ''),
      });
    }
  }
  return failures;
}

function firstLine(text: string): string {
  const line = text.split('\n').find((candidate) => candidate.trim() !== '') ?? '';
  return line.length > 300 ? `${line.slice(0, 300)}…` : line;
}

/** Runs a command with its output going to `logFile`; resolves with its exit code. */
async function runLogged(
  command: string,
  args: readonly string[],
  cwd: string,
  logFile: string,
  env: NodeJS.ProcessEnv = process.env,
): Promise<number | null> {
  const { open } = await import('node:fs/promises');
  const log = await open(logFile, 'w');
  try {
    const child = spawn(command, args, { cwd, env, stdio: ['ignore', log.fd, log.fd] });
    running.add(child);
    return await new Promise<number | null>((resolve, reject) => {
      child.once('error', reject);
      child.once('exit', (code) => {
        running.delete(child);
        resolve(code);
      });
    });
  } finally {
    await log.close();
  }
}

const running = new Set<ChildProcess>();

/** Starts `count` busy loops at `nice`; returns a function that stops them. */
function startLoad(count: number, nice: number): () => void {
  const loops = Array.from({ length: count }, () => {
    const child = spawn(process.execPath, ['-e', 'for (;;) {}'], { stdio: 'ignore' });
    if (child.pid !== undefined) setPriority(child.pid, nice);
    return child;
  });
  loops.forEach((loop) => running.add(loop));
  return () => {
    for (const loop of loops) {
      loop.kill('SIGKILL');
      running.delete(loop);
    }
  };
}

async function readReport(file: string): Promise<VitestReport | undefined> {
  try {
    return JSON.parse(await readFile(file, 'utf8')) as VitestReport;
  } catch {
    return undefined;
  }
}

/** One run in this checkout: `vitest run` with the JSON reporter. */
async function runInPlace(run: number, options: Options): Promise<RunResult> {
  const reportFile = path.join(outDir, `run-${run}.json`);
  await rm(reportFile, { force: true });
  const started = performance.now();
  const projects = options.projects.flatMap((project) => ['--project', project]);
  const vitest = path.join(repoRoot, 'node_modules', 'vitest', 'vitest.mjs');
  const exitCode = await runLogged(
    process.execPath,
    [vitest, 'run', ...projects, '--reporter=default', '--reporter=json', `--outputFile.json=${reportFile}`],
    repoRoot,
    path.join(outDir, `run-${run}.log`),
  );
  return resultOf(run, started, exitCode, reportFile);
}

/** A run's result, from its exit code and the report it left (if any) in `reportFile`. */
async function resultOf(
  run: number,
  started: number,
  exitCode: number | null,
  reportFile: string,
): Promise<RunResult> {
  const report = await readReport(reportFile);
  return {
    run,
    seconds: (performance.now() - started) / 1000,
    exitCode,
    report,
    failures: report ? failuresOf(report) : [],
  };
}

/** One run as CI makes it: a fresh clone of HEAD running `.ci/run` (npm ci, npm test). */
async function runInClone(run: number): Promise<RunResult> {
  const clone = await mkdtemp(path.join(tmpdir(), 'authz-repeat-'));
  const started = performance.now();
  try {
    const logFile = path.join(outDir, `run-${run}.log`);
    const cloned = await runLogged('git', ['clone', '--quiet', repoRoot, clone], repoRoot, logFile);
    if (cloned !== 0) throw new Error(`git clone failed (exit ${cloned}): see ${logFile}`);
    const exitCode = await runLogged('bash', ['.ci/run'], clone, logFile, { ...process.env, CI: 'true' });
    const reportFile = path.join(outDir, `run-${run}.json`);
    await copyFile(path.join(clone, 'test-results', 'vitest.json'), reportFile).catch(() =>
      rm(reportFile, { force: true }),
    );
    return await resultOf(run, started, exitCode, reportFile);
  } finally {
    await rm(clone, { recursive: true, force: true });
  }
}

function describeRun(result: RunResult): string {
  const seconds = `${result.seconds.toFixed(0)} s`;
  if (result.report === undefined)
    return `run ${result.run}: no test report (exit ${result.exitCode}), ${seconds}: see test-results/repeat/run-${result.run}.log`;
  const { numPassedTests: passed, numFailedTests: failed } = result.report;
  const skipped = result.report.numPendingTests + result.report.numTodoTests;
  const verdict = result.exitCode === 0 ? 'passed' : `FAILED (exit ${result.exitCode})`;
  return `run ${result.run}: ${verdict}, ${passed} passed, ${failed} failed${skipped > 0 ? `, ${skipped} skipped` : ''}, ${seconds}`;
}

/** Per failing test: in how many runs it failed, and the first error seen. */
function summarise(results: readonly RunResult[]): string {
  const byTest = new Map<string, { file: string; test: string; runs: number[]; error: string }>();
  for (const result of results) {
    for (const failure of result.failures) {
      const key = `${failure.file}\u0000${failure.test}`;
      const entry = byTest.get(key) ?? { ...failure, runs: [] };
      entry.runs.push(result.run);
      byTest.set(key, entry);
    }
  }
  if (byTest.size === 0) return 'no test failed in any run';
  const rows = [...byTest.values()].sort((a, b) => b.runs.length - a.runs.length);
  return rows
    .map(
      (row) =>
        `${row.runs.length}/${results.length} runs (${row.runs.join(', ')})  ${row.file} › ${row.test}\n    first error: ${row.error}`,
    )
    .join('\n');
}

const options = readOptions(process.argv.slice(2));
await mkdir(outDir, { recursive: true });
const stopEverything = () => {
  for (const child of running) child.kill('SIGKILL');
};
process.once('SIGINT', () => {
  stopEverything();
  process.exit(130);
});

if (!options.clone) {
  console.log('test:repeat: building and installing once (npm run pretest)');
  const built = await runLogged('npm', ['run', 'pretest'], repoRoot, path.join(outDir, 'pretest.log'));
  if (built !== 0) {
    console.error(`test:repeat: npm run pretest failed (exit ${built}): see test-results/repeat/pretest.log`);
    process.exit(1);
  }
}
const where = options.clone ? 'each in a fresh clone of HEAD through .ci/run' : 'in place';
const load = options.load
  ? `, ${options.loops} busy loops at nice ${options.nice} on ${availableParallelism()} cores`
  : '';
console.log(`test:repeat: ${options.runs} runs ${where}${load}`);

const results: RunResult[] = [];
for (let run = 1; run <= options.runs; run++) {
  const stopLoad = options.load ? startLoad(options.loops, options.nice) : () => undefined;
  try {
    results.push(options.clone ? await runInClone(run) : await runInPlace(run, options));
  } finally {
    stopLoad();
  }
  console.log(describeRun(results.at(-1)!));
}

const summary = [
  `test:repeat: ${results.filter((result) => result.exitCode === 0).length} of ${results.length} runs passed (${where}${load})`,
  ...results.map(describeRun),
  summarise(results),
].join('\n');
await writeFile(path.join(outDir, 'summary.txt'), `${summary}\n`);
console.log(`\n${summary}`);
process.exit(results.every((result) => result.exitCode === 0) ? 0 : 1);
