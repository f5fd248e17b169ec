import { PolicyError, formatPolicyProblem } from '../policy/policy-error.js';
import type { CommandIo } from './command-io.js';
import { formatEpochSeconds } from './instant.js';
import { loadPolicy } from '../policy/load-policy.js';
import { parseOpsArgs } from '../args/parse-command-args.js';
import { parsePolicyTestFile, type PolicyTestFile } from './policy-test-file.js';
import { readTextFile } from '../policy/read-text-file.js';
import { runPolicyTests, type PolicyTestResult } from './run-policy-tests.js';
import { formatTable, printable } from './terminal-text.js';

/** A policy test file larger than this is refused (10 000 cases fit easily). */
export const MAX_POLICY_TEST_BYTES = 4 * 1024 * 1024; // 4 MiB

/**
 * `authz test FILE...`: runs policy test files (format: docs/policy-tests.md) and prints a table of
 * passes and failures per file, then `N passed, M failed`. Exit 0 when every case passed; 1 when one
 * failed or a test file or its policy cannot be used (each problem is printed with file and line).
 *
 * @throws UsageError for bad arguments.
 */
export async function testCommand(argv: readonly string[], io: CommandIo): Promise<number> {
  const { positionals } = parseOpsArgs(argv, {}, { min: 1, max: 1000, name: 'a policy test FILE' });
  let passed = 0;
  let failed = 0;
  let broken = 0;
  let tables = 0;
  for (const file of positionals) {
    const results = await runFile(file, io, tables > 0 ? '\n' : '');
    if (results === undefined) {
      broken++;
      continue;
    }
    tables++;
    passed += results.filter((r) => r.passed).length;
    failed += results.filter((r) => !r.passed).length;
  }
  const unrun = broken === 0 ? '' : `, ${broken} test file${broken === 1 ? '' : 's'} could not be run`;
  io.out(`${passed} passed, ${failed} failed${unrun}\n`);
  return failed === 0 && broken === 0 ? 0 : 1;
}

/** Runs one file and prints its table; undefined (after printing why) when it cannot be run. */
async function runFile(
  file: string,
  io: CommandIo,
  separator: string,
): Promise<PolicyTestResult[] | undefined> {
  let tests: PolicyTestFile;
  let results: PolicyTestResult[];
  let nowMs: number;
  try {
    tests = await readPolicyTestFile(file);
    const policy = await loadPolicy(tests.policyFile, { requireKeyFiles: false });
    nowMs = tests.nowMs ?? io.now();
    results = await runPolicyTests(policy, tests.cases, nowMs);
  } catch (error) {
    if (!(error instanceof PolicyError)) throw error;
    const what = error.code.startsWith('ERR_POLICY_TEST_')
      ? 'it cannot be used'
      : 'its policy cannot be used';
    io.err(`authz: ${file}: ${what} (${error.code}):\n`);
    for (const problem of error.problems) io.err(formatPolicyProblem(problem) + '\n');
    return undefined;
  }

  const clock = tests.nowMs === undefined ? 'the current time' : formatEpochSeconds(nowMs / 1000);
  io.out(`${separator}${file}: ${results.length} cases against ${tests.policyFile}, clock ${clock}\n`);
  io.out(
    formatTable(
      ['CASE', 'EXPECTED', 'ACTUAL', 'RESULT'],
      results.map((r) => [printable(r.testCase.name), r.expected, r.actual, r.passed ? 'PASS' : 'FAIL']),
    ),
  );
  for (const r of results.filter((result) => !result.passed)) {
    io.out(
      `${file}:${r.testCase.line}: FAIL ${printable(r.testCase.name)}: expected ${r.expected}, got ${r.actual}\n`,
    );
  }
  return results;
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
