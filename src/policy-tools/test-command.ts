import { randomBytes } from 'node:crypto';
import { readdir, rename, unlink, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { PolicyError, formatPolicyProblem } from '../policy/policy-error.js';
import type { CommandIo } from '../command/command-io.js';
import { formatEpochSeconds } from './instant.js';
import { loadPolicy } from '../policy/load-policy.js';
import { parseOpsArgs } from '../args/parse-command-args.js';
import { UsageError } from '../args/usage-error.js';
import { parsePolicyTestFile, type PolicyTestCase, type PolicyTestFile } from './policy-test-file.js';
import { readTextFile } from '../policy/read-text-file.js';
import { isPolicyDirectory } from '../policy/read-policy-directory.js';
import { runPolicyTests } from './run-policy-tests.js';
import { junitReport } from './test-junit.js';
import {
  formatFileRun,
  formatSummary,
  testRunReport,
  testTotals,
  type TestFileRun,
  type TestRunOptions,
} from './test-report.js';

/** A policy test file larger than this is refused (10 000 cases fit easily). */
export const MAX_POLICY_TEST_BYTES = 4 * 1024 * 1024; // 4 MiB

/**
 * `authz test FILE... [--strict] [--json] [--junit FILE] [--run PATTERN]`: runs policy test files (format
 * and flags: docs/policy-tests.md) and prints a table of passes and failures per file, the warnings
 * (claims of a test token that nothing reads), then `N passed, M failed`; `--json` prints the results as
 * JSON instead, and `--junit` also writes them as JUnit XML. Exit 0 when every selected case passed;
 * 1 when one failed, a test file or its policy cannot be used (each problem is printed with file and
 * line), `--run` selected no case, `--strict` was given and there are warnings, or the JUnit file cannot
 * be written.
 *
 * @throws UsageError for bad arguments (a `--run /regex/` that does not compile among them).
 */
export async function testCommand(argv: readonly string[], io: CommandIo): Promise<number> {
  const { values, positionals } = parseOpsArgs(
    argv,
    {
      strict: { type: 'boolean' },
      json: { type: 'boolean' },
      junit: { type: 'string' },
      run: { type: 'string' },
    },
    { min: 1, max: 1000, name: 'a policy test FILE' },
  );
  const json = values['json'] === true;
  const junit = values['junit'];
  if (junit === '') throw new UsageError('--junit needs the FILE to write the JUnit XML report to');
  const run = typeof values['run'] === 'string' ? values['run'] : undefined;
  const options: TestRunOptions = { strict: values['strict'] === true, run };
  const selects = caseSelector(run);

  const runs: TestFileRun[] = [];
  for (const file of await testFiles(positionals)) {
    const fileRun = await runFile(file, selects, io);
    runs.push(fileRun);
    if (json) continue;
    if (fileRun.kind === 'unusable') {
      const what = fileRun.what === 'test_file' ? 'it cannot be used' : 'its policy cannot be used';
      io.err(`authz: ${file}: ${what} (${fileRun.code}):\n`);
      for (const problem of fileRun.problems) io.err(formatPolicyProblem(problem) + '\n');
    } else {
      const previous = runs.slice(0, -1).some((r) => r.kind === 'run');
      io.out((previous ? '\n' : '') + formatFileRun(fileRun, options));
    }
  }

  let totals = testTotals(runs, options);
  if (typeof junit === 'string') {
    try {
      await writeFileAtomically(junit, junitReport(runs, totals, options));
    } catch (error) {
      const why = (error as NodeJS.ErrnoException).code ?? (error as Error).message;
      io.err(`authz: cannot write the JUnit report ${junit}: ${why}\n`);
      totals = { ...totals, ok: false };
    }
  }
  if (json) io.out(JSON.stringify(testRunReport(runs, totals, options), null, 2) + '\n');
  else io.out(formatSummary(totals, options));
  if (!json && run !== undefined && totals.selected === 0 && totals.cases > 0) {
    io.err(`authz: --run ${JSON.stringify(run)} selected none of the ${totals.cases} cases\n`);
  }
  return totals.ok ? 0 : 1;
}

/**
 * Which cases `--run PATTERN` selects: those whose name contains PATTERN, or, for `/regex/` (flags may
 * follow: `/transfer/i`), those whose name the JavaScript regular expression matches. Every case when
 * there is no pattern.
 */
export function caseSelector(pattern: string | undefined): (testCase: PolicyTestCase) => boolean {
  if (pattern === undefined) return () => true;
  if (pattern === '') throw new UsageError('--run needs a PATTERN (part of a case name, or /regex/)');
  const regex = /^\/(.+)\/([a-z]*)$/s.exec(pattern);
  if (regex === null) return (testCase) => testCase.name.includes(pattern);
  let compiled: RegExp;
  try {
    compiled = new RegExp(regex[1]!, regex[2]!.replace(/[gy]/g, ''));
  } catch (error) {
    throw new UsageError(`--run ${JSON.stringify(pattern)}: ${(error as Error).message}`);
  }
  return (testCase) => compiled.test(testCase.name);
}

/**
 * The test files the arguments name: a policy directory (`authz test policy.gateway.d`) stands for its
 * policy test files (`*.test.yaml`, `*.test.yml`, which the directory never serves), in name order; any
 * other argument is a test file. A directory without test files stays itself, so that it is reported as
 * a test file that cannot be read rather than passing with nothing run.
 */
async function testFiles(paths: readonly string[]): Promise<string[]> {
  const files: string[] = [];
  for (const path of paths) {
    if (!(await isPolicyDirectory(path))) {
      files.push(path);
      continue;
    }
    const names = (await readdir(path)).filter((name) => /\.test\.ya?ml$/.test(name)).sort();
    files.push(...(names.length === 0 ? [path] : names.map((name) => join(path, name))));
  }
  return files;
}

/** Runs the selected cases of one file; what is wrong with it when it cannot be run. */
async function runFile(
  file: string,
  selects: (testCase: PolicyTestCase) => boolean,
  io: CommandIo,
): Promise<TestFileRun> {
  try {
    const tests = await readPolicyTestFile(file);
    const policy = await loadPolicy(tests.policyFile, { requireKeyFiles: false });
    const nowMs = tests.nowMs ?? io.now();
    const results = await runPolicyTests(policy, tests.cases.filter(selects), nowMs);
    const clock = tests.nowMs === undefined ? 'the current time' : formatEpochSeconds(nowMs / 1000);
    return { kind: 'run', file, policyFile: tests.policyFile, clock, cases: tests.cases.length, results };
  } catch (error) {
    if (!(error instanceof PolicyError)) throw error;
    const what = error.code.startsWith('ERR_POLICY_TEST_') ? 'test_file' : 'policy';
    return { kind: 'unusable', file, what, code: error.code, problems: error.problems };
  }
}

async function readPolicyTestFile(file: string): Promise<PolicyTestFile> {
  const read = await readTextFile(file, MAX_POLICY_TEST_BYTES);
  if ('problem' in read) {
    throw new PolicyError('ERR_POLICY_TEST_READ', [
      { file, line: 0, column: 0, path: '', message: `the test file ${read.problem}` },
    ]);
  }
  return parsePolicyTestFile(read.text, file);
}

/**
 * Writes a file so that a reader sees the old one or the whole new one, never a part: a temporary file
 * beside it, then rename(2), which replaces the target atomically on one file system.
 */
async function writeFileAtomically(file: string, text: string): Promise<void> {
  const temporary = join(dirname(file), `.${basename(file)}.${randomBytes(6).toString('hex')}.tmp`);
  try {
    await writeFile(temporary, text, { flag: 'wx' });
    await rename(temporary, file);
  } catch (error) {
    await unlink(temporary).catch(() => undefined);
    throw error;
  }
}
